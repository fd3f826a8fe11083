"""The hostile-input corpus: one small change to a good site per case (issue #11).

Each case is what an attacker (a pull request from a fork) or a careless
admin could commit.  test_hostile.py runs every command on each case in a
subprocess with limits and checks that nothing escapes; the cases live here so
that the table reads as a list of attacks.

A case is a function that edits the site (the imagespec.yaml document and
the files) plus a regex that the `path:line:col: message` line must match.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

Doc = dict[str, Any]
Files = dict[str, str]

SCRIPT = "#!/bin/sh\nexit 0\n"
SECRET = "s3cr3t-canary-7f3a"  # in files outside the site; must never be printed

BASE_PROFILE = """\
packages: [bash, chrony]
exclude: ["./usr/share/doc*"]
sync:
  - {src: etc/motd, dest: /etc/motd}
postinstall: [10-a]
postscripts: [50-site]
"""


def base_doc(install_root: str) -> Doc:
    """imagespec.yaml of the good site: the tests' base site, two images, one local director."""
    from tests.helpers import BASE_SITE

    doc = copy.deepcopy(BASE_SITE)
    doc["site"] = "t"
    doc["directors"] = {"here": {"install_root": install_root, "prefix": "p", "builder": "none"}}
    doc["images"] = {
        "img-a": {"profile": "base", "distro": "rocky8"},
        "img-b": {"profile": "b", "distro": "rocky8", "attributes": {}},
    }
    return doc


def base_files() -> Files:
    return {
        "profiles/base.yaml": BASE_PROFILE,
        "profiles/b.yaml": "inherits: [base]\n",
        "synclists/etc/motd": "welcome\n",
        "postinstall/10-a": SCRIPT,
        "postscripts/50-site": SCRIPT,
    }


Edit = Callable[[Doc, Files], None]


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    expect: str  # regex the message must match (after `path:line:col: `)
    every_command: bool = False  # also render, diff and plan (validate and apply always run)


def distro(key: str, value: Any) -> Edit:
    def edit(doc: Doc, files: Files) -> None:
        doc["distros"]["rocky8"][key] = value

    return edit


def director(key: str, value: Any) -> Edit:
    def edit(doc: Doc, files: Files) -> None:
        doc["directors"]["here"][key] = value

    return edit


def image_attribute(key: str, value: Any, image: str = "img-b") -> Edit:
    def edit(doc: Doc, files: Files) -> None:
        doc["images"][image]["attributes"][key] = value

    return edit


def profile(text: str, name: str = "base") -> Edit:
    """Replace a profile's YAML text (raw, so YAML quirks are what the attacker wrote)."""

    def edit(doc: Doc, files: Files) -> None:
        files[f"profiles/{name}.yaml"] = text

    return edit


def profile_line(line: str) -> Edit:
    """A profile `extra` (inheriting base, used by img-b) holding one line of YAML."""

    def edit(doc: Doc, files: Files) -> None:
        files["profiles/extra.yaml"] = f"inherits: [base]\n{line}\n"
        doc["images"]["img-b"]["profile"] = "extra"

    return edit


def site_text(text: str) -> Edit:
    """Replace imagespec.yaml by raw text."""

    def edit(doc: Doc, files: Files) -> None:
        files["imagespec.yaml"] = text

    return edit


def _laughs() -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level, name in enumerate("bcdefg"):
        previous = "abcdefg"[level]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _deep_chain(doc: Doc, files: Files) -> None:
    for level in range(1, 1500):
        files[f"profiles/p{level}.yaml"] = (
            f"inherits: [{'base' if level == 1 else f'p{level - 1}'}]\n"
        )
    doc["images"]["img-b"]["profile"] = "p1499"


def _rootimgdir_into_store(doc: Doc, files: Files) -> None:
    doc["images"]["img-a"]["attributes"] = {"rootimgdir": "/ROOT/netboot/a"}
    doc["images"]["img-b"]["attributes"]["rootimgdir"] = "/ROOT/netboot/.a.imagespec/1/x"


def _host(value: str) -> Edit:
    def edit(doc: Doc, files: Files) -> None:
        doc["directors"]["here"]["host"] = value
        doc["directors"]["here"]["install_root"] = "/install"

    return edit


CASES = [
    # 1. values that become path segments
    Case(
        "family-dotdot",
        distro("family", "../../../../outside/fam"),
        r"family '.*': use letters",
        every_command=True,
    ),
    Case("osvers-slash", distro("osvers", "rocky8/../../x"), r"osvers '.*': use letters"),
    Case("osarch-dotdot", distro("osarch", ".."), r"osarch '\.\.': use letters"),
    Case(
        "prefix-dotdot", director("prefix", "../../outside"), r"prefix '.*' must be a relative path"
    ),
    Case("prefix-option", director("prefix", "-rf"), r"prefix '-rf' must be a relative path"),
    Case(
        "director-name",
        site_text("site: t\ndirectors:\n  ../x: {install_root: /i}\n"),
        r"director name",
    ),
    Case(
        "distro-name",
        site_text(
            "site: t\ndistros:\n  '-x': {osvers: a, osarch: b, family: c, pkgdir: /p}\ndirectors:\n  d: {install_root: /i}\n"
        ),
        r"distro name '-x'",
    ),
    Case(
        "postinstall-dotdot",
        profile_line("postbootscripts: [../../outside/s]"),
        r"must be a path relative to postscripts/",
    ),
    # 2. control characters reach config files and the stanza
    Case(
        "pkgdir-newline",
        distro("pkgdir", "/install/r\n[main]\nplugins=1\npluginpath=/tmp"),
        r"control character",
        every_command=True,
    ),
    Case(
        "osvers-newline", distro("osvers", "rocky8\nevilobj:\n objtype=site"), r"control character"
    ),
    Case("attribute-newline", image_attribute("kernelver", "4\nx=y"), r"control character"),
    Case(
        "escape-sequence", image_attribute("description", "\x1b]0;pwned\x07"), r"control character"
    ),
    Case("bidi-override", profile_line('packages: ["bash\u202e"]'), r"control character"),
    Case("pkgdir-shell", distro("pkgdir", "http://x/$(id)"), r"pkgdir '.*' must be a URL"),
    # 3./4. sync and litefile paths that leave the image
    Case(
        "sync-dest-dotdot",
        profile_line("sync: [{src: etc/motd, dest: /../../outside/pwn}]"),
        r"dest '.*' must be a normalised absolute path",
        every_command=True,
    ),
    Case(
        "sync-src-dotdot",
        profile_line("sync: [{src: ../imagespec.yaml, dest: /etc/x}]"),
        r"src '.*' must be a path relative to synclists/",
    ),
    Case(
        "litefile-dotdot",
        profile_line("litefile: {/../../outside/: tmpfs}"),
        r"litefile: '.*' must be a normalised absolute path",
        every_command=True,
    ),
    # 5. rootimgdir outside its place
    Case("rootimgdir-slash", image_attribute("rootimgdir", "/"), r"rootimgdir '/' must be"),
    Case(
        "rootimgdir-etc",
        image_attribute("rootimgdir", "/etc"),
        r"must be a directory below the director's install_root",
    ),
    Case(
        "rootimgdir-state",
        image_attribute("rootimgdir", "/ROOT/p/.imagespec/x"),
        r"overlaps .*\.imagespec",
    ),
    Case(
        "rootimgdir-other-store",
        _rootimgdir_into_store,
        r"lies inside image 'img-a''s generation store",
        every_command=True,
    ),
    # 9. hosts that ssh reads as options
    Case(
        "host-option",
        _host("-oProxyCommand=touch${IFS}/tmp/pwned"),
        r"host '.*' is not an ssh destination",
    ),
    Case("host-space", _host("a b"), r"host 'a b' is not an ssh destination"),
    Case(
        "branch-option",
        director("branch", "--upload-pack=touch"),
        r"branch '.*' is not a plain git branch name",
    ),
    # 11. what xCAT passes through a shell
    Case(
        "package-command",
        profile_line("otherpkgs: ['a;touch${IFS}/tmp/pwned']"),
        r"is not a package name",
        every_command=True,
    ),
    Case("package-glob", profile_line("packages: ['dracut*']"), r"is not a package name"),
    Case("package-subst", profile_line("packages: ['$(id)']"), r"is not a package name"),
    Case(
        "environvar-space",
        image_attribute("environvar", "A=1 B=2"),
        r"environvar 'A=1 B=2' must be NAME=value",
    ),
    Case(
        "exclude-quote",
        profile_line("exclude: [\"./x' -o -exec sh -c id ';\"]"),
        r"may not contain spaces",
    ),
    Case(
        "exclude-quote-nospace",
        profile_line("exclude: [\"./x'$(id)'\"]"),
        r"packimage wraps each pattern",
    ),
    Case(
        "postinstall-args",
        profile_line("postinstall: ['10-a $(id)']"),
        r"argument '\$\(id\)' may only use",
    ),
    Case(
        "postinstall-backtick",
        profile_line("postinstall: ['10-a `id`']"),
        r"argument '`id`' may only use",
    ),
    Case("stanza-quote", image_attribute("kernelver", '"4.18'), r"stanza reader strips"),
    Case("attribute-shell", image_attribute("kernelver", "4;id"), r"may only use letters"),
    Case("attribute-name", image_attribute("a=b", "x"), r"is not an attribute name"),
    Case(
        "env-directive",
        profile_line("packages: ['#ENV:A=b,c#']"),
        r"contains a comma|must read #ENV",
    ),
    Case(
        "env-directive-shell",
        profile_line("packages: ['#ENV:A=$(id)#']"),
        r"must read #ENV:NAME=value#",
    ),
    # 12., 16. exhaustion and crashes
    Case(
        "billion-laughs",
        profile(_laughs(), "laughs"),
        r"more than 200000 values",
        every_command=True,
    ),
    Case(
        "deep-nesting",
        profile("packages: " + "[" * 5000 + "]" * 5000 + "\n", "deep"),
        r"nested deeper",
    ),
    Case("deep-chain", _deep_chain, r"inherits through 1499 levels", every_command=True),
    Case(
        "tagged-sequence",
        profile("packages: !foo [a]\n", "tagged"),
        r"YAML tag '!foo' is not supported",
    ),
    # 17. silent reinterpretation
    Case(
        "image-key-true",
        site_text("site: t\nimages:\n  true: {profile: base, distro: rocky8}\n"),
        r"the key 'true' is read by YAML as a boolean",
    ),
    Case("permission-nan", image_attribute("permission", float("nan")), r"floating-point"),
    Case(
        "permission-octal",
        profile_line("attributes: {permission: 0755}"),
        r"not written as plain decimal",
    ),
    Case("exclude-everything", profile_line("exclude: ['*']"), r"matches everything in the image"),
]


def make_site(install_root: str, case: Case) -> dict[str, str]:
    """The good site with the case's change, as {path: text}."""
    from tests.helpers import dump_yaml

    doc = base_doc(install_root)
    files = base_files()
    case.edit(doc, files)
    if "imagespec.yaml" not in files:
        text = dump_yaml(copy.deepcopy(doc)).replace("/ROOT", install_root)
        files["imagespec.yaml"] = text
    return files
