"""`from: director` sync entries in the pure core: schema, validation, merge, render,
digests, show/explain/diff, plan reasons and the state record."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

from imagespec.diff import compare
from imagespec.digest import effective_pack_digest
from imagespec.errors import ConfigError
from imagespec.ops.explain import explain
from imagespec.plan import make_plan, with_director_files, with_recorded_director_files
from imagespec.report.diff import change_lines
from imagespec.report.show import show_json
from imagespec.safe import is_director_file
from imagespec.site import SiteView
from imagespec.state import ImageState, State, StateError
from tests.helpers import memory_site, site_files

HOSTS = {"src": "/etc/hosts", "dest": "/etc/hosts", "from": "director"}
IMAGE = "img-base"
SYNCLIST = "p/custom/netboot/rocky/img-base.synclist"
COMMIT = "c" * 40
H1, H2 = "1" * 64, "2" * 64


def site(*entries: dict[str, Any], **more: Any) -> SiteView:
    """One profile `base` (image img-base) with these sync entries."""
    profile = {"packages": ["bash"], "sync": list(entries), **more}
    return memory_site(site_files({"base": profile}, extra={"synclists/etc/motd": "hi\n"}))


def problems(*entries: dict[str, Any], **more: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        site(*entries, **more).render("main")
    return [str(p) for p in caught.value.problems]


def synclist(view: SiteView) -> str:
    return view.render("main").files[SYNCLIST].data.decode()


# ---------------------------------------------------------------- schema and validation


def test_the_yaml_form_import_writes_loads_with_its_position() -> None:
    text = "sync:\n  - {src: /etc/hosts, dest: /etc/hosts, from: director}\n"
    view = memory_site(site_files({"base": text}))
    entry = view.docs.profiles["base"].model.sync[0]
    assert entry.from_director and entry.sources == ["/etc/hosts"]
    assert str(view.docs.profiles["base"].pos("sync", 0, "from")) == "profiles/base.yaml:2:41"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "from",
            "git",
            "profiles/base.yaml:1:26: sync.0.from: 'git' is not a place imagespec reads sync"
            " sources from; write 'from: director' for a file on the director, or leave"
            " 'from' out for a file under synclists/",
        ),
        ("from", 3, "profiles/base.yaml:1:26: sync.0.from: expected a string, got the number 3"),
        ("fro", "director", "profiles/base.yaml:1:26: unknown key 'fro'; did you mean 'from'?"),
        ("from_", "director", "profiles/base.yaml:1:26: unknown key 'from_'; did you mean 'from'?"),
    ],
)
def test_a_bad_from_key_is_an_error_at_its_place(key: str, value: Any, message: str) -> None:
    text = f"sync: [{{src: /etc/hosts, {key}: {json.dumps(value)}, dest: /etc/hosts}}]\n"
    with pytest.raises(ConfigError) as caught:
        memory_site(site_files({"base": text}))
    assert [str(p) for p in caught.value.problems] == [message]


def test_from_with_drop_is_an_error() -> None:
    assert any(
        "a 'drop' removes by image path, wherever the source was; remove 'from'" in p
        for p in problems({"dest": "/etc/hosts", "drop": True, "from": "director"})
    )


@pytest.mark.parametrize(
    "src",
    [
        "../x",
        "etc/hosts",
        "/etc/../etc/shadow",
        "-rf",
        "/etc/-rf",
        "/etc/a b",
        "/a->b",
        "/etc/hosts\n/etc/shadow",
        "/",
        "/etc/",
        "//etc/hosts",
        "/etc//hosts",
        "/etc/./hosts",
        "/etc/a,b",
        "/etc/a;b",
        "/etc/(n1)",
        "/etc/#x",
        "/etc/$HOME",
        "/etc/a\tb",
    ],
)
def test_hostile_director_paths_are_refused(src: str) -> None:
    assert not is_director_file(src)
    found = problems({"src": src, "dest": "/etc/x", "from": "director"})
    assert len(found) == 1
    assert found[0].startswith("profiles/base.yaml:")
    assert "sync:" in found[0] or "control character" in found[0]


@pytest.mark.parametrize(
    "src", ["/etc/hosts", "/root/secrets/munge.key", "/etc/.hidden", "/opt/a=b:c@d%e+f~"]
)
def test_ordinary_director_paths_are_accepted(src: str) -> None:
    assert is_director_file(src)


def test_a_director_file_is_never_looked_up_under_synclists() -> None:
    view = site({"src": "/etc/slurm.conf", "dest": "/etc/slurm.conf", "from": "director",
                 "mode": "execute"})  # fmt: skip
    assert "/etc/slurm.conf.post -> /etc/slurm.conf.post\n" in synclist(view)


def test_a_director_file_under_imagespecs_own_tree_is_refused() -> None:
    entry = {"src": "/install/p/custom/x", "dest": "/etc/x", "from": "director"}
    found = problems(entry)
    assert found == [
        "profiles/base.yaml:4:3: sync: director file '/install/p/custom/x' lies in /install/p,"
        " where imagespec writes its own files on director 'main'; keep the file elsewhere on"
        " the director (e.g. /etc or /root/secrets)"
    ]
    post = problems({**entry, "src": "/install/postscripts/p/x", "mode": "execute"})
    assert "lies in /install/postscripts/p" in post[0]
    # elsewhere under install_root is the admin's (xCAT's custom files, for one)
    assert site({**entry, "src": "/install/custom/syncfiles/hosts"}).render("main")


# ---------------------------------------------------------------- merge and render


def test_rendered_as_its_own_path_and_never_copied() -> None:
    view = site(
        HOSTS,
        {"src": ["/root/secrets/munge.key"], "dest": "/etc/munge/", "from": "director"},
        {"src": "/opt/run.sh", "dest": "/usr/sbin/run.sh", "from": "director", "mode": "execute"},
        {"src": "/etc/issue.n1", "dest": "/etc/issue", "from": "director", "nodes": "n1"},
        {"src": "etc/motd", "dest": "/etc/motd"},
    )
    rendered = view.render("main")
    assert synclist(view).splitlines()[2:] == [
        "# from profile base",
        "/etc/hosts -> /etc/hosts",
        "/root/secrets/munge.key -> /etc/munge/",
        "/opt/run.sh -> /usr/sbin/run.sh",
        "/opt/run.sh.post -> /usr/sbin/run.sh.post",
        "/etc/issue.n1 -> (n1) /etc/issue",
        "/install/p/custom/synclists/etc/motd -> /etc/motd",
        "EXECUTE:",
        "/opt/run.sh.post",
    ]
    assert [p for p in rendered.files if "/synclists/" in p] == ["p/custom/synclists/etc/motd"]
    image = rendered.images[IMAGE]
    assert image.director_files == (
        "/etc/hosts",
        "/opt/run.sh",
        "/opt/run.sh.post",
        "/root/secrets/munge.key",
    ), "build-time ones only: the noderange entry reaches nodes at boot"
    assert image.director_hashes is None, "render never reads the director"


def test_merged_by_the_path_it_writes_like_any_entry() -> None:
    files = site_files(
        {
            "base": {"sync": [{"src": "etc/motd", "dest": "/etc/hosts"}]},
            "login": {"inherits": ["base"], "sync": [HOSTS]},
        },
        extra={"synclists/etc/motd": "x\n"},
    )
    image = memory_site(files).render("main").images["img-login"]
    item = image.resolved.merge.sync[0]
    assert (item.sources, item.director, item.origin.level) == (("/etc/hosts",), True, "login")
    assert "p/custom/synclists/etc/motd" not in image.files


def test_the_pack_digest_follows_the_director_path_and_not_only_git() -> None:
    one = site(HOSTS).render("main").images[IMAGE].digests
    other = site({**HOSTS, "src": "/etc/hosts.site"}).render("main").images[IMAGE].digests
    assert one["pack"] != other["pack"]
    assert one["build"] == other["build"] and one["define"] == other["define"]


def test_effective_pack_digest_is_the_rendered_one_without_director_files() -> None:
    pack = "sha256:" + "a" * 64
    assert effective_pack_digest(pack, {}) == pack
    assert effective_pack_digest(pack, {"/etc/hosts": H1}) != pack
    assert effective_pack_digest(pack, {"/etc/hosts": H1}) != effective_pack_digest(
        pack, {"/etc/hosts": H2}
    )
    assert effective_pack_digest(pack, {"/etc/hosts": None}) != effective_pack_digest(
        pack, {"/etc/hosts": H1}
    )


# ---------------------------------------------------------------- show, explain, diff


def test_show_json_adds_from_only_on_director_entries() -> None:
    image = site(HOSTS, {"src": "etc/motd", "dest": "/etc/motd"}).render("main").images[IMAGE]
    assert show_json(image)["synclist"] == [
        {"src": ["/etc/hosts"], "dest": "/etc/hosts", "mode": "copy", "nodes": None,
         "from": "director"},
        {"src": ["etc/motd"], "dest": "/etc/motd", "mode": "copy", "nodes": None},
    ]  # fmt: skip


def test_explain_names_the_director_file() -> None:
    image = site(HOSTS).render("main").images[IMAGE]
    found = explain(image, "/etc/hosts")
    assert found is not None
    assert found.final == ["synclist: director file /etc/hosts -> /etc/hosts (from base)"]


def test_diff_names_an_added_or_changed_director_entry() -> None:
    old = site({"src": "etc/motd", "dest": "/etc/hosts"})
    new = site(HOSTS, {"src": "/etc/shadow.site", "dest": "/etc/shadow", "from": "director"})
    change = compare(old, new, "main", {"profiles/base.yaml"}, "a", "b").images[IMAGE]
    sync = change.changes["synclist"]
    assert sync["director"] == {"/etc/hosts": "/etc/hosts", "/etc/shadow": "/etc/shadow.site"}
    assert sync["retargeted"][0]["new"] == {
        "src": ["/etc/hosts"],
        "mode": "copy",
        "nodes": None,
        "from": "director",
    }
    assert "content" not in sync, "git holds no content of a director file"
    assert change_lines(change) == [
        "synclist: added /etc/shadow (from director file /etc/shadow.site); /etc/hosts now from"
        " director file /etc/hosts (copy) instead of etc/motd (copy)"
    ]
    assert change.actions == ["sync", "pack"]


# ---------------------------------------------------------------- plan and state


def planned(hashes: dict[str, Optional[str]], recorded: dict[str, str]) -> Any:
    rendered = site(HOSTS).render("main")
    done = with_director_files(rendered, {"/etc/hosts": H1}).images[IMAGE].digests
    state = State("main")
    state.images[IMAGE] = ImageState(
        digests=dict(done), status="ok", generation=1, director_files=recorded
    )
    now = with_director_files(rendered, hashes)
    actual = {p: None for p in now.files}
    return make_plan(now, state, actual, "native", COMMIT), state


def test_unchanged_director_files_owe_nothing() -> None:
    plan, _ = planned({"/etc/hosts": H1}, {"/etc/hosts": H1})
    assert plan.report.images[IMAGE].actions == ["sync"]
    assert plan.director_files == {}


def test_a_changed_director_file_owes_a_pack_naming_only_the_file() -> None:
    plan, _ = planned({"/etc/hosts": H2}, {"/etc/hosts": H1})
    image = plan.report.images[IMAGE]
    assert image.actions == ["sync", "pack"]
    assert image.reasons == ["director file /etc/hosts changed"]
    assert plan.director_files == {IMAGE: ["director file /etc/hosts changed"]}
    assert H1 not in json.dumps(plan.as_json()) and H2 not in json.dumps(plan.as_json())


def test_a_missing_director_file_says_the_image_cannot_be_packed() -> None:
    plan, _ = planned({"/etc/hosts": None}, {"/etc/hosts": H1})
    assert plan.report.images[IMAGE].reasons == [
        "director file /etc/hosts is missing or unreadable on the director, so the image"
        " cannot be packed; create it there (or drop the sync entry), then apply again"
    ]


def offline(recorded: dict[str, str], packed: Optional[dict[str, str]] = None) -> Any:
    """plan --offline's plan: the director files as the last pack recorded them."""
    rendered = site(HOSTS).render("main")
    done = with_director_files(rendered, packed or recorded).images[IMAGE].digests
    state = State("main")
    state.images[IMAGE] = ImageState(
        digests=dict(done), status="ok", generation=1, director_files=recorded
    )
    now = with_recorded_director_files(rendered, state)
    return make_plan(now, state, {p: None for p in now.files}, "native", COMMIT)


def test_offline_director_files_are_taken_as_recorded() -> None:
    plan = offline({"/etc/hosts": H1})
    assert plan.report.images[IMAGE].actions == ["sync"]
    assert plan.director_files == {}


def test_offline_an_image_never_packed_with_its_director_file_owes_a_pack() -> None:
    """The record lacks the file (a new sync entry): a pack is owed, and nothing is said to
    be missing, which only the director could tell."""
    plan = offline({}, packed={"/etc/hosts": H1})
    image = plan.report.images[IMAGE]
    assert image.actions == ["sync", "pack"]
    assert not any("missing" in reason for reason in image.reasons)


def test_state_records_director_files_only_when_there_are_some() -> None:
    state = State("main")
    state.images["a"] = ImageState(status="ok", director_files={"/etc/hosts": H1})
    state.images["b"] = ImageState(status="ok")
    doc = json.loads(state.to_json())
    assert doc["images"]["a"]["director_files"] == {"/etc/hosts": H1}
    assert "director_files" not in doc["images"]["b"], "old state files stay byte-compatible"
    assert State.from_json(state.to_json(), "main", "x").to_json() == state.to_json()


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"etc/hosts": H1}, "director file 'etc/hosts' is not an absolute, normalised safe path"),
        ({"/etc/../shadow": H1}, "is not an absolute, normalised safe path"),
        ({"/etc/hosts": "xyz"}, "is not a sha256"),
    ],
)
def test_a_doctored_director_file_record_is_refused(files: dict[str, str], problem: str) -> None:
    doc = {"version": 1, "images": {"a": {"status": "ok", "director_files": files}}}
    with pytest.raises(StateError) as caught:
        State.from_json(json.dumps(doc).encode(), "main", "state.json")
    assert problem in str(caught.value)
