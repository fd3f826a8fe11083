"""Property tests (hypothesis) for the merge rules and for deterministic rendering.

Sites are generated as random profile DAGs over a small pool of entries, so
that adds, removals, overrides and drops collide often.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from imagespec.render import render_director
from imagespec.resolve import resolve_director
from imagespec.site import SiteView, open_site
from imagespec.source import MemorySource
from tests.helpers import Files, site_files

# Parsing YAML dominates the run time, so the site-level properties use few examples
# and skip shrinking (which would hit hypothesis' 5-minute shrink limit on a failure;
# the failing example is still printed); the list-merge property, on packages only,
# uses more examples and shrinks.
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.generate],
)

# Profile names whose sorted order differs from any inheritance order drawn below.
NAMES = ("zeta", "base", "mid", "aux", "alpha")
PACKAGES = ("pa", "pb", "pc", "pd")
EXCLUDES = ("./usr/share/doc*", "+./usr/share/doc/bash*", "./boot*")
POSTINSTALL = ("s1", "s2 fast", "s3")
POSTSCRIPTS = ("confignetwork", "ps1", "ps2 arg")
SYNC_DESTS = ("/etc/motd", "/etc/hosts", "/etc/site/", "/etc/passwd", "/etc/site/motd")
SYNC_SOURCES = ("etc/motd", "etc/motd.alt", "etc/hosts.site", "etc/passwd.site")
# Sources into the directory dest /etc/site/: alt/motd and etc/motd write the same path.
DIR_SOURCES = ("etc/motd", "etc/hosts.site", "alt/motd", "etc/motd.alt")
LITE_PATHS = ("/etc/ntp.conf", "/var/log/", "/etc/adjtime")
ATTRIBUTES = {
    "addkcmdline": ("quiet", "console=ttyS0"),
    "kernelver": ("5.14.0", "4.18.0"),
    "rootfstype": ("ramdisk", "tmpfs"),
    "provmethod": ("netboot", "statelite"),
}
SUPPORT_FILES: Files = {
    "postinstall/s1": "#!/bin/sh\necho s1\n",
    "postinstall/s2": "#!/bin/sh\necho s2\n",
    "postinstall/s3": "#!/bin/sh\necho s3\n",
    "postscripts/ps1": "#!/bin/sh\necho ps1\n",
    "postscripts/ps2": "#!/bin/sh\necho ps2\n",
    "synclists/etc/motd": "welcome\n",
    "synclists/etc/motd.alt": "welcome, alt\n",
    "synclists/etc/hosts.site": "10.0.0.1 mn\n",
    "synclists/etc/passwd.site": "svc:x:900:900::/:/sbin/nologin\n",
    "synclists/alt/motd": "welcome, from alt\n",
}


def ops(entries: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    """A list field: adds and `-x` removals drawn from a small pool."""
    one = st.tuples(st.booleans(), st.sampled_from(entries)).map(
        lambda t: f"-{t[1]}" if t[0] else t[1]
    )
    return st.lists(one, max_size=6)


def dir_sources(min_size: int) -> st.SearchStrategy[list[str]]:
    """Sources into a directory, no two with the same file name (validate refuses that)."""
    return st.lists(
        st.sampled_from(DIR_SOURCES),
        min_size=min_size,
        max_size=3,
        unique_by=lambda src: src.rsplit("/", 1)[-1],
    )


@st.composite
def sync_entry(draw: st.DrawFn) -> dict[str, Any]:
    dest = draw(st.sampled_from(SYNC_DESTS))
    if draw(st.booleans()) and draw(st.booleans()):
        names = draw(dir_sources(0)) if dest.endswith("/") else []
        return {"dest": dest, "drop": True, **({"src": names} if names else {})}
    if dest == "/etc/passwd":
        return {"src": "etc/passwd.site", "dest": dest, "mode": "merge"}
    if dest == "/etc/site/":
        return {"src": draw(dir_sources(1)), "dest": dest}
    src = draw(st.sampled_from(SYNC_SOURCES[:3]))
    mode = draw(st.sampled_from(("copy", "append", "executealways")))
    entry: dict[str, Any] = {"src": src, "dest": dest, "mode": mode}
    if mode != "append" and draw(st.booleans()):  # append/merge take no noderange
        entry["nodes"] = "login01,login02"
    return entry


@st.composite
def profile_body(draw: st.DrawFn, parents: list[str], full: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"description": "generated"}
    if parents:
        body["inherits"] = parents
    body["packages"] = draw(ops(PACKAGES))
    if not full:
        return body
    body["exclude"] = draw(ops(EXCLUDES))
    body["postinstall"] = draw(ops(POSTINSTALL))
    body["postscripts"] = draw(ops(POSTSCRIPTS))
    body["sync"] = draw(st.lists(sync_entry(), max_size=3))
    body["litefile"] = draw(
        st.dictionaries(
            st.sampled_from(LITE_PATHS),
            st.sampled_from(("tmpfs", "persistent", None)),
            max_size=2,
        )
    )
    body["attributes"] = {
        name: draw(st.sampled_from((*choices, None)))
        for name, choices in ATTRIBUTES.items()
        if draw(st.booleans())
    }
    return body


@st.composite
def profile_dags(draw: st.DrawFn, full: bool = True) -> dict[str, dict[str, Any]]:
    """Profiles in a random DAG: each inherits (in random order) from profiles drawn before it.

    full=False draws only packages (cheaper, for the list-merge property).
    """
    order = draw(st.permutations(NAMES))[: draw(st.integers(1, len(NAMES)))]
    profiles: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(order):
        parents = (
            draw(st.lists(st.sampled_from(order[:index]), unique=True, max_size=3)) if index else []
        )
        profiles[name] = draw(profile_body(parents, full))
    return profiles


@functools.cache
def site_yaml(names: tuple[str, ...]) -> str | bytes:
    """imagespec.yaml with one image per profile (dumping YAML is slow; do it once per name set)."""
    return site_files(dict.fromkeys(names, ""))["imagespec.yaml"]


def files_of(profiles: dict[str, Any]) -> Files:
    """The site of the given profiles; dict bodies are written as JSON (a subset of YAML)."""
    files: Files = {"imagespec.yaml": site_yaml(tuple(sorted(profiles)))}
    for name, body in profiles.items():
        files[f"profiles/{name}.yaml"] = body if isinstance(body, str) else json.dumps(body)
    return {**files, **SUPPORT_FILES}


def open_files(files: Files) -> SiteView:
    return open_site(MemorySource(files))


def fingerprint(view: SiteView) -> dict[str, Any]:
    """Everything resolution and rendering produce, as comparable values."""
    merges = {
        name: (merge.chain, merge.lists, merge.sync, merge.litefile)
        for name, merge in view.merges.items()
    }
    rendered = {}
    for director in view.directors:
        tree = view.render(director)
        rendered[director] = (
            {path: (f.data, f.mode) for path, f in tree.files.items()},
            {name: (image.digests, image.attributes) for name, image in tree.images.items()},
        )
    return {
        "chains": view.graph.chains,
        "merges": merges,
        "rendered": rendered,
        "warnings": view.warnings,
    }


def digests(view: SiteView) -> dict[str, dict[str, str]]:
    return {name: image.digests for name, image in view.render("main").images.items()}


# ---------------------------------------------------------------- (1) file order


@SETTINGS
@given(profiles=profile_dags(), data=st.data())
def test_resolution_does_not_depend_on_file_order(
    profiles: dict[str, Any], data: st.DataObject
) -> None:
    files = files_of(profiles)
    shuffled_keys = data.draw(st.permutations(list(files)))
    shuffled = {key: files[key] for key in shuffled_keys}
    assert list(shuffled) == shuffled_keys
    assert fingerprint(open_files(shuffled)) == fingerprint(open_files(files))


# ---------------------------------------------------------------- (2) removals


def last_mentions(view: SiteView, profile: str, profiles: dict[str, Any]) -> dict[str, bool]:
    """For each package mentioned in the chain: True when its last mention is a removal."""
    last: dict[str, bool] = {}
    for level in view.graph.chains[profile]:
        for raw in profiles[level]["packages"]:
            removal = raw.startswith("-")
            last[raw[1:] if removal else raw] = removal
    return last


@settings(SETTINGS, max_examples=100, phases=[Phase.explicit, Phase.generate, Phase.shrink])
@given(profiles=profile_dags(full=False))
def test_last_mention_decides_whether_an_entry_survives(profiles: dict[str, Any]) -> None:
    view = open_files(files_of(profiles))
    for profile in profiles:
        chain = view.graph.chains[profile]
        assert chain[-1] == profile
        assert len(chain) == len(set(chain))
        for index, level in enumerate(chain):
            assert set(profiles[level].get("inherits", [])) <= set(chain[:index])
        merged = [e.value for e in view.merges[profile].lists["packages"]]
        for package, removed_last in last_mentions(view, profile, profiles).items():
            if removed_last:
                assert package not in merged, (profile, chain, package)
            else:
                assert merged.count(package) == 1, (profile, chain, package)
        assert set(merged) <= set(last_mentions(view, profile, profiles))


# ---------------------------------------------------------------- (3) determinism


@SETTINGS
@given(profiles=profile_dags())
def test_rendering_twice_gives_identical_bytes_and_digests(profiles: dict[str, Any]) -> None:
    files = files_of(profiles)
    first, second = open_files(files), open_files(dict(files))
    assert fingerprint(first) == fingerprint(second)
    # Render the same resolved view twice more, bypassing the view's cache.
    trees = [
        render_director(first.docs, resolve_director(first.docs, "main", first.merges))
        for _ in range(2)
    ]
    assert [{p: (f.data, f.mode) for p, f in t.files.items()} for t in trees] == [
        {p: (f.data, f.mode) for p, f in first.render("main").files.items()}
    ] * 2
    assert [{n: i.digests for n, i in t.images.items()} for t in trees] == [digests(first)] * 2


# ---------------------------------------------------------------- (4) cosmetic YAML edits


def emit_profile(body: dict[str, Any], rnd: random.Random) -> str:
    """The profile as YAML with keys in random order and comments sprinkled in."""
    lines = ["# a generated profile"]
    keys = list(body)
    rnd.shuffle(keys)
    for key in keys:
        if rnd.random() < 0.5:
            lines.append(f"# about {key}")
        lines += emit_value(key, body[key], rnd)
    return "\n".join(lines) + "\n"


def emit_value(key: str, value: Any, rnd: random.Random) -> list[str]:
    trailing = "  # note" if rnd.random() < 0.5 else ""
    if isinstance(value, dict):
        if not value:
            return [f"{key}: {{}}{trailing}"]
        items = list(value.items())
        rnd.shuffle(items)
        return [f"{key}:{trailing}"] + [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in items]
    if isinstance(value, list) and value and rnd.random() < 0.5:
        out = [f"{key}:{trailing}"]
        for item in value:
            if rnd.random() < 0.3:
                out.append("  # an entry")
            out.append(f"  - {shuffled_json(item, rnd)}")
        return out
    if isinstance(value, list):
        return [f"{key}: [{', '.join(shuffled_json(v, rnd) for v in value)}]{trailing}"]
    return [f"{key}: {json.dumps(value)}{trailing}"]


def shuffled_json(value: Any, rnd: random.Random) -> str:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return json.dumps(dict(items))
    return json.dumps(value)


@SETTINGS
@given(profiles=profile_dags(), rnd=st.randoms(use_true_random=False))
def test_comments_and_key_order_never_change_digests(
    profiles: dict[str, Any], rnd: random.Random
) -> None:
    plain = files_of(profiles)
    edited = files_of({name: emit_profile(body, rnd) for name, body in profiles.items()})
    assert edited != plain
    edited_view, plain_view = open_files(edited), open_files(plain)
    for name in profiles:  # same data, only positions and key order differ
        assert edited_view.docs.profiles[name].model == plain_view.docs.profiles[name].model
    assert digests(edited_view) == digests(plain_view)


# ---------------------------------------------------------------- (5) sync paths


def expected_sync(profiles: dict[str, Any], chain: tuple[str, ...]) -> list[tuple[str, str]]:
    """SPEC §4 read literally: (image path, source) in order of first appearance."""
    paths: dict[str, str] = {}
    for level in chain:
        for entry in profiles[level].get("sync", []):
            src = entry.get("src", [])
            sources = [src] if isinstance(src, str) else src
            dest = entry["dest"]
            named = [dest + s.rsplit("/", 1)[-1] if dest.endswith("/") else dest for s in sources]
            if not entry.get("drop"):
                paths.update(zip(named, sources))
                continue
            if not named:
                named = [p for p in paths if p.rsplit("/", 1)[0] + "/" == dest]
            for path in named or [dest]:
                paths.pop(path, None)
    return list(paths.items())


def rendered_sync(view: SiteView, image: str) -> list[tuple[str, str]]:
    """(image path, source) of every line of the rendered synclist that writes a file."""
    tree = view.render("main")
    path = tree.images[image].attributes.get("synclists", "").removeprefix("/install/")
    if path not in tree.files:
        return []
    prefix = "/install/p/custom/synclists/"
    found = []
    for line in tree.files[path].data.decode().splitlines():
        if " -> " not in line or line.startswith("#"):
            continue
        left, right = line.split(" -> ")
        dest = right.split(") ")[-1]
        for src in (s.removeprefix(prefix) for s in left.split()):
            found.append((dest + src.rsplit("/", 1)[-1] if dest.endswith("/") else dest, src))
    return found


@SETTINGS
@given(profiles=profile_dags())
def test_the_synclist_writes_exactly_the_merged_paths(profiles: dict[str, Any]) -> None:
    """Each path the chain writes last is in the merge once, from its last writer, in order
    of first appearance; the rendered synclist writes exactly those (path, source) pairs."""
    view = open_files(files_of(profiles))
    for name in profiles:
        expected = expected_sync(profiles, view.graph.chains[name])
        merged = [
            (path, src)
            for item in view.merges[name].sync
            for path, src in zip(item.paths, item.sources)
        ]
        assert merged == expected, name
        assert sorted(rendered_sync(view, f"img-{name}")) == sorted(expected), name
