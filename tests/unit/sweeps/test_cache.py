"""The result cache, todo by todo: each change a key must see makes a miss that `why`
names, each change it must not see still hits; failures are never reused; two identical
todos at once leave one whole entry; a namespace reads only its own entries.

Real git checkouts in tmp dirs, the runtime on the in-process stand-in, each todo run
by ``workers.runner.run_todo`` as a worker runs it (no Celery).
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.settings import Settings
from coordination.sweeps import SweepService
from coordination.sweeps.planning import new_sweep_id
from coordination.sweeps.why import why
from tests.unit.support.sweeps import PLAN, StubApp, write_catalog
from workers.runner import WorkerInfo, run_todo

SIGNING_KEY = "cache-test-signing-key-0123456789abcdef"
pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True),
              pytest.mark.signed(key=SIGNING_KEY, stub=True)]

W = WorkerInfo(name="test-worker")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def checkouts(cat: Path, repos: tuple[str, ...]) -> None:
    """Each repo a git checkout with two committed files and ``*.local`` ignored."""
    for r in repos:
        d = cat.parent / "repos" / r
        git(d, "init", "-q")
        git(d, "config", "user.email", "t@example.com")
        git(d, "config", "user.name", "t")
        (d / "a.txt").write_text("a\n")
        (d / "b.txt").write_text("b\n")
        (d / ".gitignore").write_text("*.local\n")
        git(d, "add", "-A")
        git(d, "commit", "-qm", "init")


def catalog(tmp_path: Path, todos: list[dict[str, Any]],
            repos: tuple[str, ...] = ("api", "web")) -> Path:
    cat = write_catalog(tmp_path / "eco", todos, repos=repos)
    checkouts(cat, repos)
    return cat


def sweep(rt: Runtime, cat: Path, *, no_cache: bool = False) -> tuple[str, dict[str, str]]:
    """One sweep of the plan, every todo run in level order; (sweep id, statuses)."""
    svc = SweepService(rt, cat)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True, again=True)
    spec.no_cache = no_cache
    sid = svc.start_spec(spec, new_sweep_id(PLAN))
    for level in spec.levels:
        for tid in level:
            run_todo(rt, sid, tid, W)
    st = svc.status(sid)
    return sid, {t: v["status"] for t, v in st["todos"].items()}


def upstream_and_dependent_swept(rt: Runtime, tmp_path: Path) -> tuple[Path, str]:
    """TODO-001 (api, reads a.txt) -> TODO-002 (web), both ``cache: true``, swept once,
    each run and succeeded: the catalog and that sweep's id."""
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "cat a.txt", "cache": True},
        {"id": "TODO-002", "repo": "web", "run": "echo web", "cache": True,
         "blocked_by": ["TODO-001"]},
    ])
    first, st = sweep(rt, cat)
    assert st == {"TODO-001": "succeeded", "TODO-002": "succeeded"}
    return cat, first


def set_run(cat: Path, tid: str, run: str) -> None:
    doc = yaml.safe_load(cat.read_text())
    for t in doc["coordination"]["todos"]:
        if t["id"] == tid:
            t["run"] = run
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))


def repo(cat: Path, name: str = "api") -> Path:
    return cat.parent / "repos" / name


CACHE = {"env": ["FOO"], "inputs": ["*.local"], "probes": ["cat ../../probe.txt"]}


# (what changes, the change, whether the key must see it: the part `why` names and what
# it says there; None: a hit)
Change = Callable[[Path, pytest.MonkeyPatch], None]
SCENARIOS: list[tuple[str, Change, tuple[str, Any] | None]] = [
    ("nothing", lambda cat, mp: None, None),
    ("tracked file changed", lambda cat, mp: (repo(cat) / "a.txt").write_text("A\n"),
     ("paths", ["a.txt"])),
    ("staged change", lambda cat, mp: ((repo(cat) / "b.txt").write_text("B\n"),
                                       git(repo(cat), "add", "b.txt")), ("paths", ["b.txt"])),
    ("committed change", lambda cat, mp: ((repo(cat) / "b.txt").write_text("B\n"),
                                          git(repo(cat), "commit", "-qam", "b")),
     ("paths", ["b.txt"])),
    ("tracked file deleted", lambda cat, mp: (repo(cat) / "a.txt").unlink(), ("paths", ["a.txt"])),
    ("untracked input", lambda cat, mp: (repo(cat) / "token.local").write_text("t"),
     ("inputs", ["token.local"])),
    ("untracked file not an input", lambda cat, mp: (repo(cat) / "notes.txt").write_text("n"),
     None),
    ("listed env", lambda cat, mp: mp.setenv("FOO", "2"), ("env", ["FOO"])),
    ("env not listed", lambda cat, mp: mp.setenv("BAR", "2"), None),
    ("command", lambda cat, mp: set_run(cat, "TODO-001", "echo changed"),
     ("command", ["echo one", "echo changed"])),
    ("probe output", lambda cat, mp: (cat.parent / "probe.txt").write_text("v2\n"),
     ("probes", [{"probe": "cat ../../probe.txt", "old": "v1\n", "new": "v2\n"}])),
]


@pytest.mark.parametrize("what,change,expect", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_a_change_misses_and_why_names_it(rt: Runtime, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, what: str,
                                           change: Change, expect: tuple[str, Any] | None
                                           ) -> None:
    monkeypatch.setenv("FOO", "1")
    monkeypatch.setenv("BAR", "1")
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "echo one",
                              "cache": CACHE}])
    (cat.parent / "probe.txt").write_text("v1\n")
    first, st = sweep(rt, cat)
    assert st == {"TODO-001": "succeeded"}
    doc = why(rt, "TODO-001", catalog_path=cat)
    assert (doc["outcome"], doc["nearest"]) == ("miss", None)  # nothing stored before

    change(cat, monkeypatch)
    second, st = sweep(rt, cat)
    doc = why(rt, "TODO-001", sweep_id=second, catalog_path=cat)
    if expect is None:
        assert st == {"TODO-001": "cached"}, what
        assert doc["outcome"] == "hit" and doc["cached_from"]["sweep_id"] == first
        entry = SweepService(rt, cat).status(second)["todos"]["TODO-001"]
        assert entry["cached_from"]["sweep_id"] == first and entry["exit_code"] == 0
        assert "one" in entry["output_tail"]  # the reused run's output
        return
    assert st == {"TODO-001": "succeeded"}, what
    part, said = expect
    assert doc["outcome"] == "miss" and doc["nearest"]["sweep_id"] == first
    assert doc["changed"].get(part) == said, doc["changed"]
    names = {"tree", "paths", "inputs", "env", "command", "cwd", "probes", "upstream"}
    assert set(doc["changed"]) & names <= {part, "tree"}, doc["changed"]  # nothing else

    # and once it is stored, the same state hits
    third, st = sweep(rt, cat)
    assert st == {"TODO-001": "cached"}
    assert why(rt, "TODO-001")["cached_from"]["sweep_id"] == second


def test_an_upstream_todos_key_changes_its_dependents_key(rt: Runtime, tmp_path: Path) -> None:
    cat, _ = upstream_and_dependent_swept(rt, tmp_path)
    assert sweep(rt, cat)[1] == {"TODO-001": "cached", "TODO-002": "cached"}

    (repo(cat, "api") / "a.txt").write_text("changed\n")  # web's checkout is as it was
    third, st = sweep(rt, cat)
    assert st == {"TODO-001": "succeeded", "TODO-002": "succeeded"}
    doc = why(rt, "TODO-002", sweep_id=third)
    assert doc["outcome"] == "miss" and doc["changed"] == {"upstream": ["TODO-001"]}
    # across repos, by key: the upstream todo's key is what its checkpoint recorded
    up = rt.checkpoints.get(third, "TODO-001") or {}
    assert doc["parts"]["upstream"] == {"TODO-001": up["cache_key"]}


def test_an_upstream_todo_without_cache_counts_as_changed_every_run(
        rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "cache": True,
         "blocked_by": ["TODO-001"]},
    ])
    sweep(rt, cat)
    sid, st = sweep(rt, cat)
    assert st == {"TODO-001": "succeeded", "TODO-002": "succeeded"}
    assert why(rt, "TODO-002", sweep_id=sid)["changed"] == {"upstream": ["TODO-001"]}


def test_a_failed_run_is_never_reused(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "echo no; exit 3",
                              "cache": True}])
    first, st = sweep(rt, cat)
    assert st == {"TODO-001": "failed"}
    key = why(rt, "TODO-001")["key"]
    assert key and rt.results().get(key) is None
    second, st = sweep(rt, cat)
    assert st == {"TODO-001": "failed"}  # ran again: nothing to reuse
    doc = why(rt, "TODO-001", sweep_id=second)
    assert (doc["outcome"], doc["key"], doc["nearest"]) == ("miss", key, None)


def test_no_cache_runs_and_still_stores(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true", "cache": True}])
    sweep(rt, cat)
    second, st = sweep(rt, cat, no_cache=True)
    assert st == {"TODO-001": "succeeded"}
    doc = why(rt, "TODO-001", sweep_id=second)
    assert doc["outcome"] == "bypassed" and doc["changed"] == {}
    assert sweep(rt, cat)[1] == {"TODO-001": "cached"}
    assert why(rt, "TODO-001")["cached_from"]["sweep_id"] == second


def test_a_todo_without_cache_is_not_looked_up(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    sweep(rt, cat)
    assert sweep(rt, cat)[1] == {"TODO-001": "succeeded"}
    doc = why(rt, "TODO-001", catalog_path=cat)
    assert (doc["outcome"], doc["cache"]) == ("no_record", False)


def test_a_repos_cache_covers_its_todos_and_false_opts_one_out(
        rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"},
                             {"id": "TODO-002", "repo": "api", "run": "true", "cache": False}])
    doc = yaml.safe_load(cat.read_text())
    doc["repos"][0]["cache"] = True
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))
    sweep(rt, cat)
    assert sweep(rt, cat)[1] == {"TODO-001": "cached", "TODO-002": "succeeded"}


def test_two_identical_todos_at_once_run_each_and_leave_one_whole_entry(
        rt: Runtime, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # outside the checkout: the key does not see it
    gate.mkdir()
    # each waits until both are running, so both looked up before either stored
    cmd = (f"touch {gate}/$COORD_SWEEP_ID; "
           f"while [ $(ls {gate} | wc -l) -lt 2 ]; do sleep 0.01; done; echo both")
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": cmd, "cache": True}],
                  repos=("api",))
    cat.write_text(cat.read_text().replace("path: repos/api", "path: repos/api\n  concurrency: 2"))
    svc = SweepService(rt, cat)
    sids = [svc.start(PLAN, ignore_blockers=True) for _ in range(2)]
    threads = [threading.Thread(target=run_todo, args=(rt, sid, "TODO-001", W)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = [svc.status(sid)["todos"]["TODO-001"]["status"] for sid in sids]
    assert statuses == ["succeeded", "succeeded"]  # each ran: neither found the other's
    keys = {why(rt, "TODO-001", sweep_id=sid)["key"] for sid in sids}
    assert len(keys) == 1  # the same key
    [key] = keys
    raw = rt.redis.get(rt.keys.cache_entry(key))
    entry = json.loads(raw)  # one whole entry, from one of the two runs
    assert entry["key"] == key and entry["sweep_id"] in sids and "both" in entry["output_tail"]
    assert [e["sweep_id"] for e in rt.results().recent("TODO-001")] == [entry["sweep_id"]]
    # and the next one reuses it
    assert sweep(rt, cat)[1] == {"TODO-001": "cached"}


def test_a_namespace_never_reads_anothers_entries(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true", "cache": True}])
    sweep(rt, cat)
    other = Runtime.create(Settings(namespace="other"), client=rt.redis)
    other.dispatcher = CeleryDispatcher(StubApp(), other.keys)
    sid, st = sweep(other, cat)
    assert st == {"TODO-001": "succeeded"}
    assert why(other, "TODO-001", sweep_id=sid)["nearest"] is None
    assert sweep(rt, cat)[1] == {"TODO-001": "cached"}


def test_env_values_are_never_stored_in_clear(rt: Runtime, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "hunter2-secret")
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true",
                              "cache": {"env": ["FOO"]}, "env": {"TOKEN": "s3cr3t-value"}}])
    sweep(rt, cat)
    dump = b"".join(rt.redis.dump(k) or b"" for k in rt.redis.keys("coord:cache:*"))
    assert dump and b"hunter2-secret" not in dump and b"s3cr3t-value" not in dump
    sid, _ = sweep(rt, cat)
    assert why(rt, "TODO-001", sweep_id=sid)["parts"]["env"] == ["COORD_INPUTS", "FOO", "TOKEN"]
    monkeypatch.setenv("FOO", "other")
    sid, st = sweep(rt, cat)
    assert st == {"TODO-001": "succeeded"}
    assert why(rt, "TODO-001", sweep_id=sid)["changed"] == {"env": ["FOO"]}


def test_a_checkout_that_is_not_git_runs_uncached_and_says_why(
        rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true",
                                            "cache": True}], repos=("api",))
    assert sweep(rt, cat)[1] == {"TODO-001": "succeeded"}
    assert sweep(rt, cat)[1] == {"TODO-001": "succeeded"}
    doc = why(rt, "TODO-001")
    assert doc["outcome"] == "no_key" and "not a git checkout" in (doc["error"] or "")


def test_a_cached_todo_is_kept_by_a_resume_and_synced_completed(rt: Runtime,
                                                                tmp_path: Path) -> None:
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "cache": True},
        {"id": "TODO-002", "repo": "web", "run": "test -f go", "cache": True},
    ])
    sweep(rt, cat)  # TODO-001 stored; TODO-002 failed
    sid, st = sweep(rt, cat)
    assert st == {"TODO-001": "cached", "TODO-002": "failed"}
    svc = SweepService(rt, cat)
    (repo(cat, "web") / "go").write_text("")  # untracked, not an input: a fix outside the key
    out = svc.resume(sid)
    assert out["rerun"] == ["TODO-002"]  # a cached todo succeeded: not run again
    run_todo(rt, sid, "TODO-002", W)
    assert svc.status(sid)["status"] == "succeeded"
    svc.sync(sid)
    todos = {t["id"]: t for t in yaml.safe_load(cat.read_text())["coordination"]["todos"]}
    assert todos["TODO-001"]["status"] == "completed"


def test_a_cached_todo_passes_on_the_results_of_the_run_it_reused(rt: Runtime,
                                                                  tmp_path: Path) -> None:
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": 'echo "V=$(cat a.txt)" > "$COORD_OUTPUT"',
         "cache": True},
        {"id": "TODO-002", "repo": "web", "run": 'test "$COORD_IN_TODO_001_V" = a',
         "blocked_by": ["TODO-001"]},
    ])
    sweep(rt, cat)
    sid, st = sweep(rt, cat)
    assert st == {"TODO-001": "cached", "TODO-002": "succeeded"}  # it got V=a
    assert SweepService(rt, cat).status(sid)["todos"]["TODO-001"]["outputs"] == {"V": "a"}


def test_the_results_a_todo_gets_are_part_of_its_key(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": 'echo "V=$(cat a.txt)" > "$COORD_OUTPUT"'},
        {"id": "TODO-002", "repo": "web", "run": "true", "cache": True,
         "blocked_by": ["TODO-001"]},
    ])
    # TODO-001 has no cache: each of its runs is a change upstream; the values it
    # passes on count too (they would even if its key did not move)
    sweep(rt, cat)
    (repo(cat, "api") / "a.txt").write_text("b\n")
    sid, st = sweep(rt, cat)
    assert st["TODO-002"] == "succeeded"
    changed = why(rt, "TODO-002", sweep_id=sid)["changed"]
    assert changed["env"] == ["COORD_INPUTS", "COORD_IN_TODO_001_V"]


# -- signed entries (issue #38 item 3): never `cached` on an entry whose seal fails ----------



def forged_entry(key: str, todo_id: str) -> dict[str, Any]:
    """What a Redis writer without the key plants: a success of ``todo_id``."""
    return {"key": key, "exit_code": 0, "output_tail": "all good\n", "duration": 1.0,
            "worker": "forger", "sweep_id": "PLAN-001-FORGED", "run": 1, "todo_id": todo_id,
            "finished_at": 1.0, "parts": {}, "outputs": {"V": "evil"}}


def test_with_a_key_an_honest_entry_is_sealed_and_reused(keyed_rt: Runtime,
                                                         tmp_path: Path) -> None:
    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "echo V=ok > $COORD_OUTPUT",
                              "cache": True}], repos=("api",))
    assert sweep(keyed_rt, cat)[1] == {"TODO-001": "succeeded"}
    key = why(keyed_rt, "TODO-001")["key"]
    assert key is not None
    entry = keyed_rt.results().get(key)
    assert entry is not None and str(entry.get("sig", "")).startswith("v1:"), entry
    sid, st = sweep(keyed_rt, cat)
    assert st == {"TODO-001": "cached"}
    assert SweepService(keyed_rt, cat).status(sid)["todos"]["TODO-001"]["outputs"] == {"V": "ok"}


def test_a_forged_entry_for_a_failing_test_is_refused_and_the_test_runs(
        keyed_rt: Runtime, tmp_path: Path) -> None:
    """A keyless writer plants a success under a failing test's key: the worker refuses
    it (unsigned), runs the test, which fails; `why` names the entry and the reason."""
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "test -f never-there", "cache": True},
        {"id": "TODO-002", "repo": "web", "run": 'test -z "$COORD_IN_TODO_001_V"',
         "blocked_by": ["TODO-001"]},
    ])
    assert sweep(keyed_rt, cat)[1] == {"TODO-001": "failed", "TODO-002": "skipped"}
    key = why(keyed_rt, "TODO-001")["key"]
    assert key is not None and keyed_rt.results().get(key) is None  # failures never stored
    keyed_rt.results().put(key, forged_entry(key, "TODO-001"))  # type: ignore[arg-type]
    sid, st = sweep(keyed_rt, cat)
    assert st == {"TODO-001": "failed", "TODO-002": "skipped"}  # what an honest run gives
    doc = why(keyed_rt, "TODO-001", sweep_id=sid)
    assert doc["outcome"] == "refused" and doc["cached_from"] is None, doc
    assert f"cache entry {key[:12]} of TODO-001: unsigned" in (doc["refused"] or ""), doc
    # and `why` never names the planted entry as the nearest earlier success
    assert doc["nearest"] is None, doc


def test_an_entry_copied_from_another_key_is_refused(keyed_rt: Runtime, tmp_path: Path) -> None:
    """A signed entry of a passing todo, copied under a failing todo's key: its seal
    binds it to its own key and todo, so it fails the check."""
    cat = catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "test -f never-there", "cache": True},
        {"id": "TODO-002", "repo": "web", "run": "true", "cache": True},
    ])
    assert sweep(keyed_rt, cat)[1] == {"TODO-001": "failed", "TODO-002": "succeeded"}
    bad, good = why(keyed_rt, "TODO-001")["key"], why(keyed_rt, "TODO-002")["key"]
    assert bad and good
    honest = keyed_rt.results().get(good)
    assert honest is not None and honest.get("sig")
    keyed_rt.results().put(bad, {**honest, "todo_id": "TODO-001"})
    sid, st = sweep(keyed_rt, cat)
    assert st == {"TODO-001": "failed", "TODO-002": "cached"}
    doc = why(keyed_rt, "TODO-001", sweep_id=sid)
    assert doc["outcome"] == "refused" and "signature invalid" in (doc["refused"] or ""), doc


def test_why_says_refused_on_screen(keyed_rt: Runtime, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from coordination.cli.why import _human

    cat = catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "false", "cache": True}],
                  repos=("api",))
    sweep(keyed_rt, cat)
    key = why(keyed_rt, "TODO-001")["key"]
    assert key is not None
    keyed_rt.results().put(key, forged_entry(key, "TODO-001"))  # type: ignore[arg-type]
    sid, st = sweep(keyed_rt, cat)
    assert st == {"TODO-001": "failed"}
    capsys.readouterr()
    _human(why(keyed_rt, "TODO-001", sweep_id=sid))
    text = capsys.readouterr().out
    assert "refused" in text and f"cache entry {key[:12]} of TODO-001: unsigned" in text, text


def run_one(rt: Runtime, cat: Path, tid: str) -> tuple[str, str]:
    """`coord todo run TID` as its sweep is made (a one-todo spec); (sweep id, status)."""
    svc = SweepService(rt, cat)
    spec = svc.todo_spec(tid, ignore_blockers=True)
    sid = svc.start_spec(spec, new_sweep_id(tid), kind="todo")
    run_todo(rt, sid, tid, W)
    return sid, svc.status(sid)["todos"][tid]["status"]


def test_a_dependent_run_alone_and_in_its_plans_sweep_computes_one_key(
        rt: Runtime, tmp_path: Path) -> None:
    """Issue #39 (19): `todo run` of a dependent, then a sweep of its plan (and the other
    way round), with nothing changed: the second finds the first's run; `why` blames no
    upstream todo. Each way counts the todo before it by that todo's key."""
    cat, first = upstream_and_dependent_swept(rt, tmp_path)
    alone, status = run_one(rt, cat, "TODO-002")  # the plan's run of it, reused
    doc = why(rt, "TODO-002", sweep_id=alone)
    assert status == "cached", doc.get("changed")
    assert doc["outcome"] == "hit" and doc["cached_from"]["sweep_id"] == first

    (repo(cat, "web") / "a.txt").write_text("web changed\n")  # TODO-002's own checkout
    alone, status = run_one(rt, cat, "TODO-002")
    assert status == "succeeded"
    assert set(why(rt, "TODO-002", sweep_id=alone)["changed"]) & {"upstream"} == set()
    again, st = sweep(rt, cat)  # TODO-001 unchanged: TODO-002 reuses the run made alone
    assert st == {"TODO-001": "cached", "TODO-002": "cached"}, why(rt, "TODO-002")
    assert why(rt, "TODO-002", sweep_id=again)["cached_from"]["sweep_id"] == alone

    # and a change upstream is still seen by the todo run alone, naming TODO-001
    (repo(cat, "api") / "a.txt").write_text("api changed\n")
    assert sweep(rt, cat)[1] == {"TODO-001": "succeeded", "TODO-002": "succeeded"}
    (repo(cat, "api") / "a.txt").write_text("api changed again\n")
    changed_up, st = sweep(rt, cat)
    alone, status = run_one(rt, cat, "TODO-002")
    assert status == "cached"  # TODO-001's last key is the one this sweep ran it with
    assert why(rt, "TODO-002", sweep_id=alone)["cached_from"]["sweep_id"] == changed_up


FLEET = tuple(f"svc{i:02d}" for i in range(13))


def test_why_of_a_template_explains_every_instance_grouped(rt: Runtime, tmp_path: Path) -> None:
    """`coord why TODO-010` (a template) is every instance's `why`, as `events --todo
    TODO-010` is every instance's events: counted by outcome, grouped by reason, ten
    instances named per group and the rest counted (--json: each instance's document)."""
    from click.testing import CliRunner
    from unittest import mock

    from coordination.cli.context import Context
    from coordination.cli.why import why as why_cmd

    cat = catalog(tmp_path, [{"id": "TODO-010", "for_each": "svc*", "run": "true",
                              "cache": True}], repos=FLEET)
    sweep(rt, cat)
    for r in FLEET[:2]:
        (repo(cat, r) / "a.txt").write_text("changed\n")
    sid, st = sweep(rt, cat)
    assert sorted(st.values()).count("cached") == 11
    doc = why(rt, "TODO-010", sweep_id=sid, catalog_path=cat)
    assert doc["template"] is True and doc["instances"] == 13  # type: ignore[typeddict-item]
    assert doc["outcomes"] == {"hit": 11, "miss": 2}  # type: ignore[typeddict-item]
    groups = [(g["outcome"], g["reason"], g["count"])
              for g in doc["groups"]]  # type: ignore[typeddict-item]
    assert groups == [("hit", "reused an earlier success", 11), ("miss", "files changed", 2)]
    assert doc["groups"][1]["instances"] == [  # type: ignore[typeddict-item]
        "TODO-010[svc00]", "TODO-010[svc01]"]
    each = doc["each"]  # type: ignore[typeddict-item]
    assert each["TODO-010[svc00]"] == why(rt, "TODO-010[svc00]", sweep_id=sid, catalog_path=cat)
    assert each["TODO-010[svc00]"]["changed"]["paths"] == ["a.txt"]
    latest = why(rt, "TODO-010", catalog_path=cat)  # no sweep: what for_each selects now
    assert latest["outcomes"] == {"hit": 11, "miss": 2}  # type: ignore[typeddict-item]

    with mock.patch("coordination.cli.why.get_runtime", lambda _file, **_kw: rt):
        res = CliRunner().invoke(why_cmd, ["TODO-010", "--sweep", sid], obj=Context(cat))
    assert res.exit_code == 0, (res.output, res.exception)
    out = " ".join(res.output.split())
    assert f"TODO-010 in {sid}: a template, 13 instance(s): 11 hit, 2 miss" in out, out
    assert "hit (11): reused an earlier success" in out and "and 1 more" in out
    assert "miss (2): files changed TODO-010[svc00], TODO-010[svc01]" in out
    assert "coord why 'TODO-010[REPO]' --sweep" in out
