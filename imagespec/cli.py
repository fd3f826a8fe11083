"""The command line: parse options, call one operation, print its result.

Exit codes follow SPEC §8; a user mistake is one line per problem on stderr,
never a traceback.  Usage errors exit 1 (not click's 2, which `diff
--exit-code` reserves for "changes").
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from . import __version__
from .cache import DiskCache
from .completion import complete_directors, complete_images, complete_profiles
from .errors import ConfigError, ImagespecError, UsageError
from .ops.diff import run_diff
from .ops.explain import LiteView, director_litefile
from .ops.explain import explain as explain_entry
from .ops.render import write_tree
from .ops.select import (
    Reconcile,
    check_images,
    choose_one,
    open_targets,
    select_images,
    uncommitted_lines,
)
from .render import RenderedDirector, RenderedImage
from .report import diff as diff_report
from .report import explain as explain_report
from .report import graph as graph_report
from .report import show as show_report
from .runner import Runner
from .site import SiteView, open_site, validate_site
from .source import WorktreeSource, find_site_root

if TYPE_CHECKING:
    from .ops.reconcile import Target
    from .ops.repocheck import PackageCheck
    from .plan import Plan

VERBOSE = re.compile(r"-v+|--verbose")


class GlobalsAnywhere(TyperGroup):
    """`-v` works after the command as before it (`imagespec plan -v`): it is moved in
    front of the command before parsing.  `--json` and `--site` are options of each
    command as well, so they already work on either side."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_verbose(args, self.commands))


def hoist_verbose(args: list[str], commands: Mapping[str, Any]) -> list[str]:
    """args with every -v/--verbose after the command moved before it; the value of a
    command's option (`--only -v`) and anything after `--` are left alone."""
    at = _command_index(args)
    command = commands.get(args[at]) if at < len(args) else None
    if command is None:
        return args
    valued = {
        opt
        for param in command.params
        if getattr(param, "param_type_name", "") == "option"
        and not getattr(param, "is_flag", False)
        and not getattr(param, "count", False)
        for opt in param.opts
    }
    moved: list[str] = []
    rest: list[str] = []
    tail = iter(args[at + 1 :])
    for arg in tail:
        if arg == "--":
            rest.extend([arg, *tail])
        elif arg in valued:
            rest.extend([arg, *(v for v in [next(tail, None)] if v is not None)])
        elif VERBOSE.fullmatch(arg):
            moved.append(arg)
        else:
            rest.append(arg)
    return [*args[:at], *moved, args[at], *rest]


def _command_index(args: list[str]) -> int:
    """Where the command name is: the first word that is not a global option or its value."""
    at = 0
    while at < len(args) and args[at].startswith("-") and args[at] != "--":
        at += 2 if args[at] == "--site" else 1
    return at


app = typer.Typer(
    cls=GlobalsAnywhere,
    add_completion=True,
    no_args_is_help=True,
    help="Declarative GitOps pipeline for xCAT node images.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: flags without a `<bool>` type after them
)

SiteOpt = typer.Option(
    None, "--site", metavar="PATH", help="Site directory (default: walk up to imagespec.yaml)."
)
JsonOpt = typer.Option(False, "--json", help="Print the machine-readable report.")
WaitOpt = typer.Option(False, "--wait", help="Wait for a running apply or rollout to finish.")
DirectorOpt = typer.Option(
    None,
    "--director",
    "-d",
    metavar="NAME",
    help="Director to act on.",
    autocompletion=complete_directors,
)
OnlyOpt = typer.Option(
    [],
    "--only",
    metavar="IMAGE",
    help="Only these images: names or globs ('rocky8-*'; repeatable).",
    autocompletion=complete_images,
)
ProfileOpt = typer.Option(
    [],
    "--profile",
    metavar="PROFILE",
    help="Only the images whose chain includes this profile (repeatable).",
    autocompletion=complete_profiles,
)
RebuildOpt = typer.Option(
    [],
    "--rebuild",
    metavar="IMAGE",
    help="Force genimage + pack (repeatable).",
    autocompletion=complete_images,
)
ImageArg = typer.Argument(..., help="Image name.", autocompletion=complete_images)
BranchOpt = typer.Option(
    None, "--branch", metavar="BRANCH", help="Act on the director following this git branch."
)


@dataclass
class Globals:
    site: Optional[Path] = None
    json: bool = False
    verbose: int = 0


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


def _console() -> Console:
    """Human output; wide tables when stdout is not a terminal (CI logs, pipes)."""
    probe = Console()
    return Console(highlight=False, soft_wrap=True, width=None if probe.is_terminal else 200)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"imagespec {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    ctx: typer.Context,
    site: Optional[Path] = SiteOpt,
    json_out: bool = typer.Option(
        False, "--json", help="Machine-readable output where a command prints a report."
    ),
    verbose: int = typer.Option(
        0, "-v", "--verbose", count=True, help="Log each external command and its duration."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Profiles as YAML -> xCAT osimages, reconciled from git."""
    ctx.obj = Globals(site=site, json=json_out, verbose=verbose)


def _site_root(ctx: typer.Context, site: Optional[Path]) -> Path:
    given = site or _globals(ctx).site
    if given is not None:
        if not (given / "imagespec.yaml").is_file():
            raise UsageError(f"{given}: no imagespec.yaml there; --site must name a site directory")
        return given.resolve()
    found = find_site_root(Path.cwd())
    if found is None:
        raise UsageError(
            "no imagespec.yaml in this directory or any parent; run inside a site or pass --site PATH"
        )
    return found


def _open(ctx: typer.Context, site: Optional[Path], strict: bool = False) -> SiteView:
    return open_site(WorktreeSource(_site_root(ctx, site)), strict=strict, cache=DiskCache())


def _want_json(ctx: typer.Context, local: bool) -> bool:
    return local or _globals(ctx).json


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def _warn(view: SiteView) -> None:
    for problem in view.warnings:
        sys.stderr.write(f"{problem}\n")


def _image(view: SiteView, rendered: RenderedDirector, name: str) -> RenderedImage:
    image = view.docs.site.model.images.get(name)
    if image is not None and not image.on(rendered.name):
        raise UsageError(
            f"image '{name}' is not built on director '{rendered.name}' (its directors:"
            f" {', '.join(image.directors or [])}); choose one with --director"
        )
    check_images(rendered, [name])
    return rendered.images[name]


# ------------------------------------------------------------------ commands


@app.command(short_help="Check the whole site; each problem as file:line:col.")
def validate(
    ctx: typer.Context,
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    repos: bool = typer.Option(
        False,
        "--repos",
        help="Also look up every package in its image's repositories on each director (dnf).",
    ),
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check the whole site: schema, graph, files, merge rules, every director."""
    try:
        view = validate_site(WorktreeSource(_site_root(ctx, site)), strict, DiskCache())
    except ConfigError as exc:
        if _want_json(ctx, json_out):
            _print_json({"ok": False, "problems": [_problem_json(p) for p in exc.problems]})
            raise typer.Exit(1) from None
        raise
    checks = _check_site_packages(ctx, view) if repos else []
    missing = [m for c in checks for m in c.missing]
    if _want_json(ctx, json_out):
        problems = [_problem_json(p) for p in view.warnings]
        problems += [_missing_json(m) for m in missing]
        doc: dict[str, Any] = {"ok": not missing, "problems": problems}
        if repos:
            doc["packages_not_checked"] = [r for c in checks for r in c.not_checked]
        _print_json(doc)
        if missing:
            raise typer.Exit(1)
        return
    _warn(view)
    _print_checks(checks, True)
    if missing:
        raise typer.Exit(1)
    docs = view.docs
    _console().print(
        f"ok: {len(docs.profiles)} profiles, {len(docs.site.model.images)} images, "
        f"{len(docs.site.model.directors)} directors"
        + (
            f", {len(view.warnings)} warning{'s' if len(view.warnings) != 1 else ''}"
            if view.warnings
            else ""
        )
    )


def _check_site_packages(ctx: typer.Context, view: SiteView) -> list[PackageCheck]:
    """validate --repos: the package check on every director of the working tree."""
    from .ops.reconcile import make_target

    runner = _runner(ctx)
    targets = [make_target(view, name, "", runner) for name in view.docs.site.model.directors]
    return _check_packages(targets, {t.name: set() for t in targets})


def _missing_json(missing: Any) -> dict[str, Any]:
    pos = missing.pos
    return {
        "file": pos.path or None,
        "line": pos.line or None,
        "column": pos.col or None,
        "severity": "error",
        "message": missing.detail,
    }


def _problem_json(problem: Any) -> dict[str, Any]:
    pos = problem.pos
    return {
        "file": pos.path,
        "line": pos.line or None,
        "column": pos.col or None,
        "severity": problem.severity,
        "message": problem.message,
    }


class GraphFormat(str, Enum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"
    json = "json"


@app.command(short_help="The profile DAG and the images on it.")
def graph(
    ctx: typer.Context,
    fmt: GraphFormat = typer.Option(GraphFormat.text, "--format", "-f", help="Output format."),
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The profile DAG and the images on it."""
    view = _open(ctx, site)
    if _want_json(ctx, json_out) or fmt is GraphFormat.json:
        _print_json(graph_report.graph_json(view.docs, view.graph))
        return
    render = {
        GraphFormat.text: graph_report.graph_text,
        GraphFormat.dot: graph_report.graph_dot,
        GraphFormat.mermaid: graph_report.graph_mermaid,
    }[fmt]
    sys.stdout.write(render(view.docs, view.graph))


@app.command(short_help="One image merged, with where each entry came from.")
def show(
    ctx: typer.Context,
    image: str = ImageArg,
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
    built: bool = typer.Option(
        False, "--built", help="List the packages really installed in the director's built root."
    ),
) -> None:
    """The merged view of one image, with where every entry came from."""
    view = _open(ctx, site)
    name = choose_one(view.docs.site.model, view.docs.source.root, director, branch, _trace)
    rendered = _image(view, view.render(name), image)
    if built:
        _show_built(ctx, view, name, rendered, json_out)
        return
    if _want_json(ctx, json_out):
        # SPEC §8's shape exactly; `explain IMAGE PATH --json` gives a path's effective row
        _print_json(show_report.show_json(rendered))
        return
    _warn(view)
    show_report.print_show(_console(), rendered, _lite_view(ctx, view, name, rendered))


def _lite_view(
    ctx: typer.Context, view: SiteView, director: str, image: RenderedImage
) -> Optional[LiteView]:
    """A statelite image's litefile rows as liteimg applies them (the director's rows too)."""
    if not image.statelite:
        return None
    from .ops.reconcile import make_target

    target = make_target(view, director, "worktree", _runner(ctx))
    return director_litefile(target, image)


def _show_built(
    ctx: typer.Context, view: SiteView, director: str, image: RenderedImage, json_out: bool
) -> None:
    from .ops.reconcile import make_target
    from .ops.rollback import built_packages
    from .overlap import check_director_root
    from .report.built import print_built

    check_director_root(view.docs.site, director, view.render(director), view.docs.source.root)
    target = make_target(view, director, "worktree", _runner(ctx))
    report = built_packages(target, image)
    if _want_json(ctx, json_out):
        _print_json(report.as_json())
    else:
        print_built(_console(), report)


@app.command(short_help="Where an entry was added, overridden or removed.")
def explain(
    ctx: typer.Context,
    image: str = ImageArg,
    entry: str = typer.Argument(..., help="A package, exclude pattern, path, script or attribute."),
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Where an entry was added, overridden or removed along the image's chain."""
    view = _open(ctx, site)
    name = choose_one(view.docs.site.model, view.docs.source.root, director, branch, _trace)
    rendered = _image(view, view.render(name), image)
    _warn(view)
    result = explain_entry(rendered, entry, _lite_view(ctx, view, name, rendered))
    if result is None:
        raise UsageError(
            f"'{entry}' does not occur in image '{image}' or its chain ({' -> '.join(rendered.resolved.chain)})"
        )
    if _want_json(ctx, json_out):
        _print_json(result.as_json())
        return
    explain_report.print_explain(_console(), result)


@app.command(short_help="Write the director tree as it would land.")
def render(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the director tree into."),
    force: bool = typer.Option(False, "--force", help="Replace the contents of a non-empty --out."),
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Write the director tree exactly as it would land under install_root."""
    from .overlap import checked_out_dir

    view = _open(ctx, site)
    name = choose_one(view.docs.site.model, view.docs.source.root, director, branch, _trace)
    rendered = view.render(name)
    write_tree(rendered, checked_out_dir(out, view.docs.source.root), force, shown=out)
    if _want_json(ctx, json_out):
        _print_json(
            {
                "director": name,
                "out": str(out),
                "files": sorted(rendered.files),
                "images": {n: img.digests for n, img in sorted(rendered.images.items())},
            }
        )
        return
    _warn(view)
    _console().print(
        f"rendered {len(rendered.files)} files for {len(rendered.images)} images of director '{name}' into {out}"
    )


class DiffFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


@app.command(short_help="Per-image changes and actions between two revisions.")
def diff(
    ctx: typer.Context,
    base: Optional[str] = typer.Argument(None, help="BASE revision, or BASE..HEAD (default HEAD)."),
    head: Optional[str] = typer.Argument(None, help="HEAD revision (default: the working tree)."),
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="Output format."),
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 2 when images change, 0 when not."
    ),
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
    built: Optional[str] = typer.Option(
        None,
        "--built",
        metavar="IMAGE",
        help="Compare the packages of two built generations of IMAGE instead (BASE and HEAD"
        " are generation numbers: default the one before the one in use, and the one in use).",
    ),
) -> None:
    """Per-image changes and required actions between two git revisions."""
    if built is not None:
        _diff_built(ctx, built, base, head, fmt, exit_code, director, branch, site, json_out)
        return
    root = _site_root(ctx, site)
    report = run_diff(root, base, head, director, branch)
    if _want_json(ctx, json_out) or fmt is DiffFormat.json:
        _print_json(report.as_json())
    elif fmt is DiffFormat.markdown:
        sys.stdout.write(diff_report.render_markdown(report, _diff_command(base, head)))
    else:
        diff_report.print_text(_console(), report)
    if exit_code and report.changed:
        raise typer.Exit(2)


def _diff_command(base: Optional[str], head: Optional[str]) -> str:
    return " ".join(["imagespec diff", *(r for r in (base, head) if r)])


def _generation_number(text: Optional[str], which: str) -> Optional[int]:
    if text is None:
        return None
    if not text.isdigit():
        raise UsageError(f"diff --built: {which} '{text}' is not a generation number")
    return int(text)


def _diff_built(
    ctx: typer.Context,
    image: str,
    base: Optional[str],
    head: Optional[str],
    fmt: DiffFormat,
    exit_code: bool,
    director: Optional[str],
    branch: Optional[str],
    site: Optional[Path],
    json_out: bool,
) -> None:
    """`diff --built IMAGE [GEN_A [GEN_B]]`: what a rebuild changed in the packages."""
    from .ops.inspect import diff_built
    from .report.inspect import print_built_diff

    if fmt is DiffFormat.markdown:
        raise UsageError("diff --built prints text or json; --format markdown is for revisions")
    old, new = _generation_number(base, "GEN_A"), _generation_number(head, "GEN_B")
    target = _one_target(ctx, site, director, branch, None, False, "diff --built")
    report = diff_built(target, _image(target.view, target.rendered, image), old, new)
    if _want_json(ctx, json_out) or fmt is DiffFormat.json:
        _print_json(report.as_json())
    else:
        print_built_diff(_console(), report)
    if exit_code and report.changes.changed:
        raise typer.Exit(2)


# ------------------------------------------------------------------ directors: plan, apply, status

RevOpt = typer.Option(
    None, "--rev", metavar="REV", help="Commit to reconcile to (default: the branch tip or HEAD)."
)


def _echo(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _trace(line: str) -> None:
    sys.stderr.write(f"imagespec: {line}\n")
    sys.stderr.flush()


def _targets(
    ctx: typer.Context,
    site: Optional[Path],
    director: Optional[str],
    branch: Optional[str],
    rev: Optional[str],
    dry_run: bool,
    connect: bool = True,
) -> Reconcile:
    """The targets of plan, apply, status and rollback; the repository closes with the command.
    `connect=False`: the directors are chosen, but no transport is made (plan --offline)."""
    root = _site_root(ctx, site)
    setup = open_targets(root, director, branch, rev, _runner(ctx, dry_run), connect)
    ctx.call_on_close(setup.repo.close)
    if setup.why:
        _trace(setup.why)
    return setup


def _one_target(
    ctx: typer.Context,
    site: Optional[Path],
    director: Optional[str],
    branch: Optional[str],
    rev: Optional[str],
    dry_run: bool,
    verb: str,
) -> Target:
    """The one director rollback, adopt and rollout act on."""
    setup = _targets(ctx, site, director, branch, rev, dry_run)
    if len(setup.targets) != 1:
        raise UsageError(f"{verb} acts on one director; choose it with --director")
    return setup.targets[0]


def _runner(ctx: typer.Context, dry_run: bool = False) -> Runner:
    """The runner of every external command; -v traces each one to stderr."""
    return Runner(dry_run=dry_run, echo=_echo, trace=_trace if _globals(ctx).verbose else None)


def _say_uncommitted(setup: Reconcile, verb: str) -> None:
    """Edits plan and apply do not see (SPEC §8: a commit, never the working tree)."""
    for line in uncommitted_lines(setup, verb):
        sys.stderr.write(f"warning: {line}\n")


def _print_per_director(docs: list[dict[str, Any]]) -> None:
    """One director's report as it is; several under "directors"."""
    _print_json(docs[0] if len(docs) == 1 else {"directors": docs})


def _no_director(branch: Optional[str]) -> None:
    _console().print(f"no director follows branch '{branch}'; nothing to do")


@app.command(short_help="What apply would do on the director, and why.")
def plan(
    ctx: typer.Context,
    rev: Optional[str] = RevOpt,
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 2 when there is work, 0 when not."
    ),
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="Output format."),
    only: list[str] = OnlyOpt,
    profile: list[str] = ProfileOpt,
    rebuild: list[str] = RebuildOpt,
    offline: bool = typer.Option(
        False, "--offline", help="Plan from --state FILE; never contact the director."
    ),
    state_file: Optional[Path] = typer.Option(
        None,
        "--state",
        metavar="FILE",
        help="The director's state.json, or `status --json` output (implies --offline).",
    ),
    check_packages: bool = typer.Option(
        False,
        "--check-packages",
        help="Look up every package in its image's repositories on the director (dnf).",
    ),
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """What apply would do against the director's real state, with reasons."""
    from .report import apply as apply_report

    if offline and state_file is None:
        raise UsageError(
            "plan --offline needs --state FILE: a copy of the director's .imagespec/state.json,"
            " or the output of `imagespec status --json` saved where the director is reachable"
        )
    if check_packages and state_file is not None:
        raise UsageError(
            "--check-packages asks the director's dnf; it cannot run offline (--state)"
        )
    setup = _targets(ctx, site, director, branch, rev, False, connect=state_file is None)
    _say_uncommitted(setup, "plan")
    if not setup.names:
        _no_director(branch)
        return
    chosen = {name: select_images(_rendered(setup, name), only, profile) for name in setup.names}
    for name in setup.names:
        check_images(_rendered(setup, name), rebuild)
    plans = _plans(setup, state_file, chosen, set(rebuild))
    checks = _check_packages(setup.targets, chosen) if check_packages else []
    if _want_json(ctx, json_out) or fmt is DiffFormat.json:
        docs = [p.as_json() for p in plans]
        for doc, check in zip(docs, checks):
            doc["packages"] = check.as_json()
        _print_per_director(docs)
    elif fmt is DiffFormat.markdown:
        for p in plans:
            sys.stdout.write(diff_report.render_markdown(p.report, "imagespec plan"))
            sys.stdout.write(apply_report.offline_markdown(p))
    else:
        for p in plans:
            apply_report.print_plan(_console(), p)
    _print_checks(checks, not (_want_json(ctx, json_out) or fmt is DiffFormat.json))
    if any(c.missing for c in checks):
        raise typer.Exit(1)
    if exit_code and any(p.work for p in plans):
        raise typer.Exit(2)


def _check_packages(targets: list[Target], chosen: dict[str, set[str]]) -> list[PackageCheck]:
    from .ops.repocheck import check_packages

    return [check_packages(target, chosen[target.name] or None) for target in targets]


def _print_checks(checks: list[PackageCheck], summary: bool) -> None:
    """Missing packages and what was not checked on stderr; the summary for people."""
    from .report.packages import summary as summary_line
    from .report.packages import write_problems

    for check in checks:
        write_problems(sys.stderr, check)
        if summary:
            _console().print(summary_line(check))


def _rendered(setup: Reconcile, name: str) -> RenderedDirector:
    assert setup.view is not None  # open_targets always sets it
    return setup.view.render(name)


def _plans(
    setup: Reconcile,
    state_file: Optional[Path],
    chosen: dict[str, set[str]],
    rebuild: set[str],
) -> list[Plan]:
    """Each director's plan: against the director, or (offline) against the state file."""
    from .ops.reconcile import (
        Wanted,
        make_director_plan,
        make_offline_plan,
        read_state,
        read_state_file,
    )

    if state_file is None:
        return [
            make_director_plan(t, read_state(t), setup.repo, chosen[t.name], rebuild)
            for t in setup.targets
        ]
    assert setup.view is not None
    plans = []
    for name in setup.names:
        wanted = Wanted(setup.view, name, setup.commit, chosen[name], rebuild)
        state = read_state_file(state_file, name)
        plans.append(make_offline_plan(wanted, state, str(state_file), setup.repo))
    return plans


@app.command(short_help="Sync, define and build what changed, from a commit.")
def apply(
    ctx: typer.Context,
    rev: Optional[str] = RevOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", "-j", min=1, help="Images built in parallel."
    ),
    only: list[str] = OnlyOpt,
    profile: list[str] = ProfileOpt,
    rebuild: list[str] = RebuildOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the commands instead of running them."
    ),
    wait: bool = WaitOpt,
    wait_timeout: float = typer.Option(
        1800, "--wait-timeout", help="Seconds --wait waits at most."
    ),
    prune_images: bool = typer.Option(
        False, "--prune-images", help="Remove orphaned osimage definitions."
    ),
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Sync files, define osimages and build what changed, from a commit."""
    from .ops.reconcile import ApplyOptions, apply_director
    from .report import apply as apply_report
    from .report.progress import ApplyProgress

    setup = _targets(ctx, site, director, branch, rev, dry_run)
    _say_uncommitted(setup, "apply")
    if not setup.targets:
        _no_director(branch)
        return
    console = _console()
    as_json = _want_json(ctx, json_out)
    results = []
    for target in setup.targets:
        chosen = select_images(target.rendered, only, profile)
        check_images(target.rendered, rebuild)
        options = ApplyOptions(jobs, chosen, set(rebuild), wait, wait_timeout, prune_images)
        with ApplyProgress(console, enabled=not as_json and not dry_run) as progress:
            plan_, outcome = apply_director(
                target,
                setup.repo,
                options,
                _echo if not as_json else _quiet,
                progress.update if not dry_run else lambda _image, _stage: None,
                lambda p: _confirm(console, p, yes or dry_run),
            )
        results.append((plan_, outcome))
        if not as_json:
            apply_report.print_outcome(console, outcome, _globals(ctx).verbose > 0)
    if as_json:
        docs = [apply_report.outcome_json(p, o) for p, o in results]
        _print_per_director(docs)
    if any(o.any_failed for _, o in results):
        raise typer.Exit(3)


def _quiet(line: str) -> None:
    return None


def _confirm(console: Console, plan_: Any, yes: bool) -> bool:
    from .report import apply as apply_report

    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError("apply changes a director: pass --yes when not running on a terminal")
    apply_report.print_plan(console, plan_)
    return typer.confirm("apply this plan?", default=False)


@app.command(short_help="The director's state, drift, orphans and failures.")
def status(
    ctx: typer.Context,
    rev: Optional[str] = RevOpt,
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The director's recorded state, drift, orphans and failed images."""
    from .ops.reconcile import in_sync, make_director_plan, read_lock, read_state
    from .ops.select import open_status_targets
    from .report.status import print_status, status_json

    setup = open_status_targets(_site_root(ctx, site), director, branch, rev, _runner(ctx))
    ctx.call_on_close(setup.repo.close)
    if not setup.targets:
        _no_director(branch)
        return
    if setup.broken is not None:
        _broken_status(ctx, setup, json_out)
    reports = []
    for target in setup.targets:
        state = read_state(target)
        plan_ = make_director_plan(target, state, setup.repo)
        reports.append((target, state, plan_, read_lock(target)))
    verdicts = [in_sync(state, p) for _, state, p, _ in reports]
    if _want_json(ctx, json_out):
        docs = [status_json(t, s, p, ok, lock) for (t, s, p, lock), ok in zip(reports, verdicts)]
        _print_per_director(docs)
    else:
        for (target, state, p, lock), ok in zip(reports, verdicts):
            print_status(_console(), target, state, p, ok, lock)
    if not all(verdicts):
        raise typer.Exit(2)


def _broken_status(ctx: typer.Context, setup: Reconcile, json_out: bool) -> NoReturn:
    """status when the site at the commit does not load: each director's record and lock
    (reached through the nearest commit whose site loads), the reason, and exit 1."""
    from .ops.reconcile import read_lock, read_state
    from .report.status import broken_status_json, print_broken_status

    why = setup.broken or ""
    docs = [
        broken_status_json(t, read_state(t), setup.commit, why, read_lock(t)) for t in setup.targets
    ]
    if _want_json(ctx, json_out):
        _print_per_director(docs)
    else:
        for target, doc in zip(setup.targets, docs):
            print_broken_status(_console(), target, doc)
    raise typer.Exit(1)


@app.command(short_help="Switch an image back to a kept generation.")
def rollback(
    ctx: typer.Context,
    image: str = ImageArg,
    to: Optional[int] = typer.Option(
        None, "--to", help="Generation to switch to (default: the one before the current)."
    ),
    wait: bool = WaitOpt,
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Switch an image back to a kept generation (native builder), atomically."""
    from .ops.rollback import rollback as do_rollback
    from .report.built import print_rollback

    target = _one_target(ctx, site, director, branch, None, False, "rollback")
    done = do_rollback(target, _image(target.view, target.rendered, image), to, wait, _echo)
    if _want_json(ctx, json_out):
        _print_json(done.as_json())
    else:
        print_rollback(_console(), done)


@app.command(short_help="An image's build logs: the latest, one, or --follow.")
def logs(
    ctx: typer.Context,
    image: str = ImageArg,
    build: Optional[int] = typer.Option(
        None, "--build", min=1, help="The build log N of --list (default: the latest)."
    ),
    list_: bool = typer.Option(False, "--list", help="List the image's build logs."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Follow the running apply's log until it ends."
    ),
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Print an image's latest (or a given) build log from the director."""
    from .ops.inspect import choose_log, follow_log, list_logs, read_log
    from .report.inspect import print_logs

    target = _one_target(ctx, site, director, branch, None, False, "logs")
    name = _image(target.view, target.rendered, image).name
    as_json = _want_json(ctx, json_out)
    if follow:
        if as_json or list_ or build is not None:
            raise UsageError("logs --follow prints the log as it grows: no --json, --list, --build")
        follow_log(target, name, _write_raw, _trace_note)
        return
    found = list_logs(target, name)
    if list_:
        if as_json:
            _print_json(
                {"director": target.name, "image": name, "builds": [log.as_json() for log in found]}
            )
        else:
            print_logs(_console(), target.name, name, found)
        return
    chosen = choose_log(found, name, target.name, build)
    text = read_log(target, name, chosen)
    if as_json:
        _print_json({"director": target.name, "image": name, **chosen.as_json(), "text": text})
        return
    _trace_note(f"build {chosen.number} of {len(found)}, started {chosen.time}: {chosen.path}")
    _write_raw(text)


def _write_raw(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _trace_note(line: str) -> None:
    """A note about the output, on stderr so that stdout is the log alone."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


@app.command(short_help="The generations kept for an image.")
def generations(
    ctx: typer.Context,
    image: str = ImageArg,
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The generations kept for an image: commit, time, digests, and the one in use."""
    from .ops.inspect import list_generations
    from .report.inspect import print_generations

    target = _one_target(ctx, site, director, branch, None, False, "generations")
    found = list_generations(target, _image(target.view, target.rendered, image))
    if _want_json(ctx, json_out):
        _print_json(found.as_json())
    else:
        print_generations(_console(), found)


@app.command(short_help="Record what a director already built as built.")
def adopt(
    ctx: typer.Context,
    rev: Optional[str] = RevOpt,
    only: list[str] = OnlyOpt,
    profile: list[str] = ProfileOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Compare and report; record nothing, move nothing."
    ),
    wait: bool = WaitOpt,
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Record the images a director already built as built, where they mean what git says."""
    from .ops.adopt import adopt as do_adopt
    from .report.adopt import print_adopt

    target = _one_target(ctx, site, director, branch, rev, dry_run, "adopt")
    chosen = select_images(target.rendered, only, profile)
    report = do_adopt(target, chosen, wait, _echo if not _want_json(ctx, json_out) else _quiet)
    if _want_json(ctx, json_out):
        _print_json(report.as_json())
    else:
        print_adopt(_console(), report)


@app.command(short_help="Reboot nodes onto their image's generation, in batches.")
def rollout(
    ctx: typer.Context,
    image: Optional[str] = typer.Argument(
        None, help="Only the nodes of this image (or variant).", autocompletion=complete_images
    ),
    nodes: Optional[str] = typer.Option(
        None, "--nodes", help="Only these nodes (an xCAT noderange: cn[001-004],rack1)."
    ),
    canary: Optional[int] = typer.Option(
        None, "--canary", min=0, help="Nodes in the first batch (default: the director's, 1)."
    ),
    batch: Optional[str] = typer.Option(
        None, "--batch", help="Nodes per batch, or a percentage such as 25% (default 10%)."
    ),
    max_failed: Optional[int] = typer.Option(
        None, "--max-failed", min=0, help="Stop once more nodes failed than this (default 0)."
    ),
    wait_boot: Optional[float] = typer.Option(
        None, "--wait-boot", min=0.1, help="Seconds a batch may take to boot (default 900)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the batches; reboot nothing."),
    wait: bool = WaitOpt,
    director: Optional[str] = DirectorOpt,
    branch: Optional[str] = BranchOpt,
    site: Optional[Path] = SiteOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Reboot nodes onto their image's current generation: canary, then batches (xcat)."""
    from .ops.rollout import RolloutOptions
    from .ops.rollout import rollout as do_rollout
    from .report.rollout import print_rollout

    target = _one_target(ctx, site, director, branch, None, dry_run, "rollout")
    options = RolloutOptions(
        image, nodes, canary, batch, max_failed, wait_boot, dry_run=dry_run, wait=wait
    )
    as_json = _want_json(ctx, json_out)
    done = do_rollout(target, options, _quiet if as_json else _echo)
    if as_json:
        _print_json(done.as_json())
    else:
        what = f" {image}" if image else f" --nodes {nodes}" if nodes else ""
        print_rollout(_console(), done, f"imagespec rollout{what} --director {target.name}")
    if not done.ok:
        raise typer.Exit(3)


# ------------------------------------------------------------------ entry point


@app.command("import", short_help="An existing xCAT site as a new imagespec site.")
def import_(
    ctx: typer.Context,
    stanzas: Optional[Path] = typer.Option(
        None, "--stanzas", help="A file with the output of `lsdef -t osimage -z`."
    ),
    host: Optional[str] = typer.Option(
        None, "--host", help="Read stanzas, litefile rows and files from this director over ssh."
    ),
    install: Optional[Path] = typer.Option(
        None, "--install", help="A local copy of the director's install root."
    ),
    litefile: Optional[Path] = typer.Option(
        None, "--litefile", help="The output of `tabdump litefile` (default over ssh with --host)."
    ),
    install_root: str = typer.Option(
        "/install", "--install-root", help="The install root on the director."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="New site directory (must not exist or be empty)."
    ),
    name: Optional[str] = typer.Option(
        None, "--name", help="The director's name (default: the host, or 'director')."
    ),
    prefix: Optional[str] = typer.Option(
        None,
        "--prefix",
        help="Where rendered files go below install_root (default: the director name).",
    ),
    site_name: str = typer.Option("imported", "--site-name", help="The site's name."),
    allow_loss: bool = typer.Option(
        False, "--allow-loss", help="Exit 0 even when something could not be imported."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Turn an xCAT site's osimages and flat files into a new, factored imagespec site."""
    from .importer.files import LocalInstall
    from .importer.write import SiteSettings
    from .ops.importer import ImportRequest, run_import
    from .report import importer as import_report

    if (stanzas is None) == (host is None):
        raise UsageError("give exactly one of --stanzas FILE or --host HOST")
    if host is None and install is None:
        raise UsageError(
            "--stanzas needs --install DIR, a local copy of the director's install root"
        )
    director = name or (host.split("@")[-1].strip("[]") if host else "director")
    settings = SiteSettings(
        site=site_name,
        director=director,
        host=host,
        install_root=install_root.rstrip("/") or "/",
        prefix=director if prefix is None else prefix.strip("/"),
    )
    lite_text = _read_text(litefile) if litefile else ""
    if host is not None and install is None:
        from .transport import transport_for
        from .transport.files import TransportFiles

        remote = TransportFiles(transport_for(host, settings.install_root, _runner(ctx)))
        request = ImportRequest(
            remote.command(["lsdef", "-t", "osimage", "-z"]),
            f"{host}: lsdef -t osimage -z",
            lite_text or remote.command(["tabdump", "litefile"]),
            str(litefile) if litefile else f"{host}: tabdump litefile",
            remote,
            settings,
        )
    else:
        assert install is not None
        if not install.is_dir():
            raise UsageError(f"--install {install}: not a directory")
        text = _read_text(stanzas) if stanzas else ""
        request = ImportRequest(
            text,
            str(stanzas),
            lite_text,
            str(litefile),
            LocalInstall(install, settings.install_root),
            settings,
        )
    result = run_import(request, out)
    if _want_json(ctx, json_out):
        _print_json(import_report.as_json(result))
    else:
        import_report.print_text(_console(), result, allow_loss)
    if result.losses and not allow_loss:
        raise typer.Exit(1)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _crash_log(exc: BaseException) -> Path:
    log_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imagespec"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        log_dir = Path(tempfile.gettempdir())
    path = log_dir / f"crash-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return path


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        sys.stderr.write(f"{line}\n")
    sys.exit(code)


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """An exception class from click and from the copy of click newer typer releases vendor."""
    modules: list[Any] = [click.exceptions]
    try:
        from typer._click import exceptions as vendored  # type: ignore[import-not-found,unused-ignore]

        modules.append(vendored)
    except ImportError:
        pass
    return tuple(getattr(m, name) for m in modules if hasattr(m, name))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end imagespec as Ctrl-C does: what it started is stopped and
    the director's lock released (the default action would leave both to the reaper
    and the next apply).  An ignored signal (nohup) stays ignored."""
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                previous[signum] = signal.signal(signum, _interrupt)
        except ValueError:  # not the main thread
            break
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: run the app, map every failure to one message and an exit code."""
    with _terminate_like_interrupt():
        _main(argv)


def _main(argv: Optional[list[str]]) -> None:
    exit_types = _click_classes("Exit")
    abort_types = _click_classes("Abort")
    click_errors = _click_classes("ClickException")
    try:
        code = app(args=argv, prog_name="imagespec", standalone_mode=False)
    except exit_types as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except abort_types:
        _fail(["interrupted"], 130)
    except click_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `imagespec`: help was printed
            sys.exit(0)
        _fail([f"error: {exc.format_message()}", *_usage_hint(exc)], 1)  # type: ignore[attr-defined]
    except ImagespecError as exc:
        lines = exc.lines()
        if not isinstance(exc, ConfigError):
            lines = [f"error: {line}" for line in lines]
        _fail(lines, exc.exit_code)
    except KeyboardInterrupt:
        _fail(["interrupted"], 130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        log = _crash_log(exc)
        _fail(
            [
                f"internal error: {type(exc).__name__}: {exc}",
                f"details are in {log}; please report it",
            ],
            1,
        )
    # without standalone mode click returns typer.Exit's code instead of raising it
    sys.exit(code if isinstance(code, int) else 0)


def _usage_hint(exc: BaseException) -> list[str]:
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return [f"try '{ctx.command_path} --help'"]
    return []


if __name__ == "__main__":
    main()
