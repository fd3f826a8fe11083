"""The statelite structure liteimg builds in a root, as a shell script for the director.

For each litefile row (options: blank and `tmpfs,rw` mean `link`):
- a top-level `link*` entry moves the original to `.default/<path>` and
  becomes a relative symlink `<path> -> .statelite/tmpfs/<path>`, which in
  turn points back at `.default/<path>` until the node mounts its overlay;
- a `link*` child of a listed directory only needs `.default/<path>`;
- every other option keeps the original in place and copies it to
  `.default/` for the node's boot-time script to copy or bind-mount.
The rows are recorded in `.statelite/litefile.save`, and every path liteimg
had to create (the image lacked it) in `.statelite/imagespec-created`.  A root
that already has the structure (re-packing an earlier generation) is first
restored from these records: originals back from `.default/`, created paths
removed.  So the result depends only on the current rows, never on earlier
ones, and no file of the image is deleted or emptied.  Pure: rows in, text out.
"""

from __future__ import annotations

import posixpath
import shlex

from ..safe import inside

LINK_PREFIX = "link"
CREATED = ".statelite/imagespec-created"


def normal_options(options: str) -> str:
    """liteimg's rewrite: blank and tmpfs,rw become link."""
    options = options.strip() or "tmpfs,rw"
    return options.replace("tmpfs,rw", "link")


def _rel_up(path: str) -> str:
    """`..` per directory level of the entry's parent; `.` for a top-level entry."""
    parent = posixpath.dirname(path)
    depth = len([p for p in parent.split("/") if p])
    return "/".join([".."] * depth) or "."


def _is_child(path: str, directories: list[str]) -> bool:
    return any(path != d and path.startswith(d) for d in directories)


def _q(text: str) -> str:
    return shlex.quote(text)


def _create(rel: str, is_dir: bool) -> str:
    """Commands creating an empty file or directory at `rel` (under the root)."""
    if is_dir:
        return f"mkdir -p {_q(rel)}"
    return f"mkdir -p {_q(posixpath.dirname(rel) or '.')} && touch {_q(rel)}"


def _record(path: str) -> str:
    """Remember that liteimg created `path`, so undoing the structure removes it again."""
    return f"printf '%s\\n' {_q(path)} >> {CREATED}"


def _link_entry(path: str, is_dir: bool) -> list[str]:
    here, default = "." + path, ".default" + path
    parent = posixpath.dirname(path)
    tmpfs = ".statelite/tmpfs" + path
    up = _rel_up(path)
    return [
        f"if [ -e {_q(here)} ] && [ ! -L {_q(here)} ]; then"
        f" mkdir -p {_q('.default' + parent)} && cp -a {_q(here)} {_q('.default' + parent + '/')}"
        f" && rm -rf {_q(here)}; elif [ ! -e {_q(here)} ] && [ ! -L {_q(here)} ]; then"
        f" {_create(default, is_dir)} && {_record(path)}; fi",
        f"mkdir -p {_q('.' + parent)} {_q('.statelite/tmpfs' + parent)}",
        f"ln -sfn {_q(up + '/' + tmpfs)} {_q(here)}",
        f"ln -sfn {_q('../../' + up + '/' + '.default' + path)} {_q(tmpfs)}",
    ]


def _copy_entry(path: str, is_dir: bool) -> list[str]:
    here, parent = "." + path, posixpath.dirname(path)
    return [
        f"[ -e {_q(here)} ] || {{ {_create(here, is_dir)} && {_record(path)}; }}",
        f"mkdir -p {_q('.default' + parent)} && cp -a {_q(here)} {_q('.default' + parent + '/')}",
    ]


# Undo an earlier liteimg (needs `confined`): link rows back from .default, created
# paths removed.  The records live in the root, so each path is checked again.
UNDO = f"""\
usable() {{ case "$1" in /?*) ;; *) return 1 ;; esac; case "$1/" in */../*) return 1 ;; esac; }}
if [ -f .statelite/litefile.save ]; then
  while read -r _img opts f; do
    case $opts in link*) ;; *) continue ;; esac
    p=${{f%/}}
    usable "$p" || continue
    confined "$(dirname ".$p")"
    if [ -L ".$p" ] && readlink ".$p" | grep -q '\\.statelite/tmpfs'; then
      rm -f ".$p"
      if [ -e ".default$p" ] || [ -L ".default$p" ]; then cp -a ".default$p" "$(dirname ".$p")/"; fi
    fi
  done < .statelite/litefile.save
fi
if [ -f {CREATED} ]; then
  while read -r p; do
    usable "$p" || continue
    confined "$(dirname ".$p")"
    rm -rf ".$p"
  done < {CREATED}
fi
rm -rf .statelite .default .statebackup
mkdir -p .statelite/tmpfs"""


def confine_script(root: str) -> str:
    """Shell lines defining `confined DIR`, which fails unless DIR really lies in root.

    Symlinks in DIR's path are followed (an image may hold absolute symlinks
    that lead to the director's own files), so it runs before anything is
    created in, copied to or removed from DIR.  Only directories are checked:
    an entry may itself be a symlink out of the root (/etc/mtab), which
    `cp -a`, `cp --remove-destination` and `rm -rf` treat as a link.
    """
    return (
        f"ROOT=$(realpath -- {_q(root)})\n"
        "confined() {\n"
        '  case "$(realpath -m -- "$1")" in\n'
        '    "$ROOT"|"$ROOT"/*) ;;\n'
        '    *) echo "imagespec: $1 leads outside the image root $ROOT" >&2; exit 1 ;;\n'
        "  esac\n"
        "}\n"
    )


def restore_script(root: str) -> str:
    """The commands giving a root with the statelite structure its own files back.

    packimage.pm (lines 240-288) does the same before it packs a stateless
    archive from a root liteimg has been run on.
    """
    return "\n".join([f"cd {_q(root)}", confine_script(root), UNDO])


def liteimg_script(root: str, rows: list[tuple[str, str]], image: str = "") -> str:
    """The commands (run with `sh -e`) that give `root` the statelite structure for `rows`.

    Validation refuses litefile paths with '..'; every path is checked again
    here, on the director, against symlinks in the image that lead out of it.
    """
    entries = sorted((file, normal_options(opts)) for file, opts in rows)
    directories = [f for f, _ in entries if f.endswith("/")]
    lines = [f"cd {_q(root)}", confine_script(root), UNDO]
    for file, options in entries:
        is_dir, path = file.endswith("/"), file.rstrip("/") or "/"
        inside(root, path)  # ValueError for a path that leaves the root
        lines.append(f"confined {_q('.' + posixpath.dirname(path))}")
        if path == "/etc/mtab":
            lines.append('[ "$(readlink ./etc/mtab)" = /proc/self/mounts ] || {')
        if not options.startswith(LINK_PREFIX):
            lines += _copy_entry(path, is_dir)
        elif _is_child(file, directories):
            default = ".default" + path
            lines.append(
                f"[ -e {_q(default)} ] || {{ {_create(default, is_dir)} && {_record(path)}; }}"
            )
        else:
            lines += _link_entry(path, is_dir)
        if path == "/etc/mtab":
            lines.append("}")
    record = "".join(f"{image or 'image'}: {opts:<13} {file}\n" for file, opts in entries)
    lines.append(f"printf '%s' {_q(record)} > .statelite/litefile.save")
    return "\n".join(lines)
