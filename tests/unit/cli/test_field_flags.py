"""Every 0.3 field from the command line (DESIGN.md, Version 0.4 additions): each flag
sets its field (read back through the loader), keeps the comments and key order of the
YAML around it byte for byte, writes one audit entry naming the field; a bad value is
refused with the loader's message, exit 2, the file byte-identical and nothing audited;
the empty value or --no-X takes the field out again (the file back to its bytes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.file.store import CatalogStore
from tests.unit.support.cli import coord_inline
from tests.unit.support.field_flags import (
    CATALOG,
    Case,
    _dumped,
    eco_both_paths,
    entries,
    item,
)

pytestmark = pytest.mark.timeout(120)

__all__ = ["eco_both_paths"]  # the fixture, used by name

CASES = [
    Case("todo", "TODO-001", ("--commit", "Bump libcore to 2.0"), "commit",
         "Bump libcore to 2.0", ("      commit: Bump libcore to 2.0",),
         (("--commit", ""),)),
    Case("todo", "TODO-001", ("--verify",), "verify", True, ("      verify: true",),
         (("--no-verify",),)),
    Case("todo", "TODO-002", ("--gate", "approvals=2,from=ana+bo,expires=24h"), "gate",
         {"approvals": 2, "from": ["ana", "bo"], "starter_may_approve": True,
          "expires": 86400.0, "on_expiry": "cancel", "forge_reviews": False},
         ("      gate: {approvals: 2, from: [ana, bo], expires: 24h}",),
         (("--no-gate",), ("--gate", "")),
         ("--gate", "approvals=3,from=ana+bo"), "approvals: 3 but only 2 distinct people",
         "todos[1].gate"),
    Case("todo", "TODO-002", ("--gate", "{approvals: 1, on_expiry: rollback}"), "gate",
         {"approvals": 1, "from": [], "starter_may_approve": True, "expires": None,
          "on_expiry": "rollback", "forge_reviews": False},
         ("      gate: {approvals: 1, on_expiry: rollback}",), (("--no-gate",),),
         ("--gate", "expires=forever"), "not a duration", "todos[1].gate.expires"),
    Case("todo", "TODO-001", ("--cache",), "cache", True, ("      cache: true",),
         (("--no-cache",),)),
    Case("todo", "TODO-001", ("--cache", "false"), "cache", False, ("      cache: false",),
         (("--no-cache",),)),
    Case("todo", "TODO-001", ("--cache", "env=PYTHON+CI,inputs=.env"), "cache",
         {"env": ["PYTHON", "CI"], "inputs": [".env"], "probes": []},
         ("      cache: {env: [PYTHON, CI], inputs: [.env]}",), (("--no-cache",),),
         ("--cache", "inputs=../secrets"), "a glob relative to the checkout",
         "todos[0].cache"),
    Case("plan", "PLAN-001", ("--change-branch", "bump-libcore-2.0"), "change",
         {"branch": "bump-libcore-2.0", "base": None, "remote": None, "land": "push",
          "merge_method": "merge", "draft": False, "require_own_verify": False},
         ("      change: {branch: bump-libcore-2.0}",), (("--change-branch", ""),),
         ("--change-branch", "bump..2"), "is not a branch name git accepts",
         "plans[0].change.branch"),
    Case("plan", "PLAN-001", ("--change-branch", "b", "--change-base", "develop",
                              "--change-remote", "up", "--land", "command"), "change",
         {"branch": "b", "base": "develop", "remote": "up", "land": "command",
          "merge_method": "merge", "draft": False, "require_own_verify": False},
         ("      change: {branch: b, base: develop, remote: up, land: command}",),
         (("--change-branch", ""),),
         # the Change model decides what --land takes (push, command, per-wave)
         ("--change-branch", "b", "--land", "sideways"),
         "must be 'push', 'command', 'per-wave' or 'pr'",
         "plans[0].change.land"),
    Case("plan", "PLAN-001", ("--wave", "name=canary,repos=api,max_parallel=1,soak=10m",
                              "--wave", "{name: rest, tags: [service], max_parallel: 4}"),
         "waves",
         [{"name": "canary", "repos": ["api"], "tags": [], "max_parallel": 1, "soak": 600.0,
           "require": {"success_rate": 1.0}},
          {"name": "rest", "repos": [], "tags": ["service"], "max_parallel": 4, "soak": 0.0,
           "require": {"success_rate": 1.0}}],
         ("      waves:",
          "        - {name: canary, repos: [api], max_parallel: 1, soak: 10m}",
          "        - {name: rest, tags: [service], max_parallel: 4}"),
         (("--no-waves",), ("--wave", "")),
         ("--wave", "name=canary,max_parallel=1"), "a wave names repos: or tags:",
         "plans[0].waves[0]"),
    Case("plan", "PLAN-001", ("--wave", "repos=api,require.success_rate=0.9"), "waves",
         [{"name": "", "repos": ["api"], "tags": [], "max_parallel": 0, "soak": 0.0,
           "require": {"success_rate": 0.9}}],
         ("      waves:", "        - {repos: [api], require: {success_rate: 0.9}}"),
         (("--no-waves",),),
         ("--wave", "repos=api,require.success_rate=2"), "must be <= 1.0, got 2",
         "plans[0].waves[0].require.success_rate"),
    Case("plan", "PLAN-001", ("--pace", "key=repo,rate=10/hour,burst=2"), "pace",
         {"key": "repo", "rate": "10/hour", "burst": 2},
         ("      pace: {key: repo, rate: 10/hour, burst: 2}",),
         (("--no-pace",), ("--pace", "")),
         ("--pace", "rate=10/fortnight"), "is not COUNT/PERIOD", "plans[0].pace.rate"),
    Case("repo", "api", ("--default-branch", "trunk"), "default_branch", "trunk",
         ("    default_branch: trunk",), (("--default-branch", ""),)),
    Case("repo", "api", ("--remote", "upstream"), "remote", "upstream",
         ("    remote: upstream",), (("--remote", ""),)),
    Case("repo", "api", ("--land-command", "gh pr merge --squash"), "land_command",
         "gh pr merge --squash", ("    land_command: gh pr merge --squash",),
         (("--land-command", ""),)),
    Case("repo", "api", ("--revert-command", "gh pr revert"), "revert_command",
         "gh pr revert", ("    revert_command: gh pr revert",), (("--revert-command", ""),)),
    Case("repo", "api", ("--land-hooks",), "land_hooks", True, ("    land_hooks: true",),
         (("--no-land-hooks",),)),
    Case("repo", "api", ("--breaker", "failures=3,cooldown=300"), "breaker",
         {"failures": 3, "cooldown": 300.0}, ("    breaker: {failures: 3, cooldown: 300}",),
         (("--no-breaker",), ("--breaker", "")),
         ("--breaker", "failures=0"), "must be >= 1, got 0", "repos[0].breaker.failures"),
    Case("repo", "api", ("--cache", "probes=python --version"), "cache",
         {"env": [], "inputs": [], "probes": ["python --version"]},
         ("    cache: {probes: [python --version]}",), (("--no-cache",),),
         ("--cache", "env=1BAD"), "env[0]: must match", "repos[0].cache"),
    Case("repo", "web", ("--pace", "rate=5/m"), "pace",
         {"key": "repo", "rate": "5/m", "burst": 1}, ("    pace: {rate: 5/m}",),
         (("--no-pace",),), ("--pace", "key=planet,rate=5/m"), "'repo', 'tag' or 'host'",
         "repos[1].pace.key"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}:{' '.join(c.args)[:40]}")
def test_a_flag_sets_its_field_keeps_the_file_and_is_audited(eco_both_paths: Path, case: Case) -> None:
    before = eco_both_paths.read_text()
    r = coord_inline(eco_both_paths, *case.command, *case.args, "--json")
    assert r.code == 0, r.err
    doc = r.json()  # the item as `--json` prints it, as the sibling commands do
    assert doc[case.field] == case.value
    assert _dumped(getattr(item(eco_both_paths, case.kind, case.key), case.field)) == case.value

    # The new lines, and every other line as it was, in its place.
    after = eco_both_paths.read_text()
    lines = after.splitlines()
    for line in case.lines:
        assert line in lines, after
    assert [x for x in lines if x not in case.lines] == before.splitlines(), after

    log = entries(eco_both_paths)
    assert len(log) == 1
    (change,) = log[0]["changes"]
    assert change["id"] == case.key and change["action"] == "updated"
    assert case.field in change["fields"], change
    assert "--json" in log[0]["argv"] and case.args[0] in log[0]["argv"]

    # Each way of removing it gives the file back its bytes, audited.
    for clear in case.clear:
        r = coord_inline(eco_both_paths, *case.command, *clear, "--json")
        assert r.code == 0, r.err
        assert eco_both_paths.read_text() == before, clear
        field = getattr(item(eco_both_paths, case.kind, case.key), case.field)
        assert field in (None, False, []), (clear, field)
        assert case.field in entries(eco_both_paths)[-1]["changes"][0]["fields"]
        coord_inline(eco_both_paths, *case.command, *case.args)
    assert len(entries(eco_both_paths)) == 1 + 2 * len(case.clear)


@pytest.mark.parametrize("case", [c for c in CASES if c.bad],
                         ids=lambda c: f"{c.kind}:{' '.join(c.bad or ())[:40]}")
def test_a_bad_value_is_refused_with_the_loaders_message(eco_both_paths: Path, case: Case) -> None:
    assert case.bad is not None
    before = eco_both_paths.read_bytes()
    r = coord_inline(eco_both_paths, *case.command, *case.bad)
    assert r.code == 2, (r.out, r.err)
    assert r.err.startswith(f"error: {eco_both_paths}:"), r.err  # file and line, as the loader says
    assert f"{case.where}" in r.err and case.says in r.err, r.err
    assert "nothing was written" in r.err and "Traceback" not in r.err
    assert eco_both_paths.read_bytes() == before
    assert entries(eco_both_paths) == []


def test_the_loaders_message_is_the_one_a_hand_edit_gets(eco_both_paths: Path) -> None:
    """The same words as loading a catalog edited by hand to the same value."""
    r = coord_inline(eco_both_paths, "repo", "update", "api", "--breaker", "failures=0")
    by_hand = eco_both_paths.parent / "by-hand.yaml"
    by_hand.write_text(CATALOG.replace("    role: service\n",
                                       "    role: service\n    breaker: {failures: 0}\n"))
    with pytest.raises(Exception) as refused:
        CatalogStore(by_hand).load()
    loader_says = str(refused.value).split(": ", 1)[1].splitlines()[0]  # past the file name
    assert loader_says.split(": ", 1)[1] in r.err, (loader_says, r.err)


def test_a_malformed_spec_is_bad_input_naming_the_flag(eco_both_paths: Path) -> None:
    before = eco_both_paths.read_bytes()
    for args, says in (
        (("plan", "update", "PLAN-001", "--pace", "rate"), "'rate' is not KEY=VALUE"),
        (("plan", "update", "PLAN-001", "--wave", "{name: [x"), "bad --wave"),
        (("plan", "update", "PLAN-001", "--wave", "[a, b]"), "bad --wave"),
        (("todo", "update", "TODO-002", "--gate", "{}"), "no fields given"),
        (("todo", "update", "TODO-002", "--gate", "approvals=1,approvals=2"), "given twice"),
        (("todo", "update", "TODO-001", "--cache", "--no-cache"), "both given"),
        (("plan", "update", "PLAN-001", "--wave", "repos=api", "--no-waves"), "both given"),
    ):
        r = coord_inline(eco_both_paths, *args)
        assert r.code == 2 and says in r.err, (args, r.code, r.err)
    assert eco_both_paths.read_bytes() == before and entries(eco_both_paths) == []


def test_compact_values_are_typed_by_the_model(eco_both_paths: Path) -> None:
    """`name=1` stays the text a wave's name is; `max_parallel=2` is the number."""
    r = coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--wave", "name=1,tags=svc,max_parallel=2",
              "--json")
    assert r.code == 0, r.err
    assert r.json()["waves"][0] == {**r.json()["waves"][0], "name": "1", "tags": ["svc"],
                                    "max_parallel": 2}
    assert "        - {name: '1', tags: [svc], max_parallel: 2}" in eco_both_paths.read_text()


def test_partial_change_edits_keep_the_other_entries(eco_both_paths: Path) -> None:
    assert coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--change-branch", "b", "--land",
                 "command").code == 0
    r = coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--change-base", "develop", "--json")
    assert r.code == 0, r.err
    assert r.json()["change"] == {"branch": "b", "base": "develop", "remote": None,
                                  "land": "command", "merge_method": "merge", "draft": False,
                                  "require_own_verify": False}
    r = coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--land", "", "--change-base", "", "--json")
    assert r.json()["change"] == {"branch": "b", "base": None, "remote": None, "land": "push",
                                  "merge_method": "merge", "draft": False,
                                  "require_own_verify": False}
    assert "      change: {branch: b}" in eco_both_paths.read_text().splitlines()
    # A change needs its branch: --land alone on a plan without one is the loader's no.
    assert coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--change-branch", "").code == 0
    r = coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--land", "command")
    assert r.code == 2 and "plans[0].change.branch" in r.err, r.err


def test_create_commands_take_the_fields_in_their_one_edit(eco_both_paths: Path) -> None:
    r = coord_inline(eco_both_paths, "plan", "create", "--title", "Rollout", "--change-branch", "roll",
              "--wave", "repos=api", "--pace", "rate=1/h", "--json")
    assert r.code == 0, r.err
    plan = r.json()
    assert plan["change"]["branch"] == "roll" and plan["waves"][0]["repos"] == ["api"]
    assert plan["pace"]["rate"] == "1/h"
    r = coord_inline(eco_both_paths, "todo", "create", "--task", "Approve", "--repo", "web", "--plan",
              plan["id"], "--gate", "approvals=1,from=ana", "--commit", "msg", "--verify",
              "--cache", "--undo", "git checkout .", "--json")
    assert r.code == 0, r.err
    todo = r.json()
    assert todo["gate"]["from"] == ["ana"] and todo["commit"] == "msg" and todo["verify"]
    assert todo["cache"] is True and todo["undo"] == "git checkout ."
    r = coord_inline(eco_both_paths, "repo", "add", "docs", "--default-branch", "trunk", "--remote", "up",
              "--land-command", "land", "--revert-command", "revert", "--land-hooks",
              "--breaker", "failures=2", "--cache", "env=CI", "--pace", "rate=3/m", "--json")
    assert r.code == 0, r.err
    repo = r.json()
    assert (repo["default_branch"], repo["remote"], repo["land_command"],
            repo["revert_command"], repo["land_hooks"]) == ("trunk", "up", "land", "revert",
                                                            True)
    assert repo["breaker"]["failures"] == 2 and repo["cache"]["env"] == ["CI"]
    cat = CatalogStore(eco_both_paths).load()
    assert cat.plan(plan["id"]) is not None and cat.todo(todo["id"]) is not None
    log = entries(eco_both_paths)
    assert [e["op"] for e in log] == ["create_plan", "create_todo", "add_repo"]
    assert "gate" in log[1]["changes"][0]["fields"] and "breaker" in log[2]["changes"][0]["fields"]
    # A bad value on create: nothing created, no id used up.
    before = eco_both_paths.read_bytes()
    r = coord_inline(eco_both_paths, "todo", "create", "--task", "x", "--repo", "api", "--gate", "approvals=0")
    assert r.code == 2 and "todos[3].gate.approvals: must be >= 1" in r.err, r.err
    assert eco_both_paths.read_bytes() == before and len(entries(eco_both_paths)) == 3


def test_notify_add_list_remove_round_trip(eco_both_paths: Path) -> None:
    assert coord_inline(eco_both_paths, "notify", "list", "--json").json() == []
    r = coord_inline(eco_both_paths, "notify", "add", "https://hooks.example/coord", "--events",
              "sweep.finished,gate.waiting", "--secret-env", "COORD_HOOK_SECRET", "--json")
    assert r.code == 0, r.err
    assert r.json() == {"url": "https://hooks.example/coord",
                        "events": ["sweep.finished", "gate.waiting"],
                        "secret_env": "COORD_HOOK_SECRET", "format": "json"}
    r = coord_inline(eco_both_paths, "notify", "add", "https://bot:hunter2@chat.example/hook", "--format",
              "slack", "--json")
    assert r.code == 0, r.err
    assert "hunter2" not in r.out  # printed as `notify log` prints urls
    listed = coord_inline(eco_both_paths, "notify", "list", "--json").json()
    assert [(t["index"], t["format"]) for t in listed] == [(1, "json"), (2, "slack")]
    assert listed[0]["url"] == "https://hooks.example/coord" and "hunter2" not in str(listed)
    # After `coordination:`, the catalog's last comment still last, the rest as it was.
    end = "# end of the catalog\n"
    assert eco_both_paths.read_text() == CATALOG.removesuffix(end) + (
        "notify:\n"
        "  - url: https://hooks.example/coord\n"
        "    events: [sweep.finished, gate.waiting]\n"
        "    secret_env: COORD_HOOK_SECRET\n"
        "  - url: https://bot:hunter2@chat.example/hook\n"
        "    format: slack\n") + end
    assert [t.url for t in CatalogStore(eco_both_paths).load().notify] == [
        "https://hooks.example/coord", "https://bot:hunter2@chat.example/hook"]

    # Refused: a url listed already, a bad event (the loader's words), an unknown one.
    before = eco_both_paths.read_bytes()
    for args, says in (
        (("notify", "add", "https://hooks.example/coord"), "is in notify: already (#1)"),
        (("notify", "add", "https://x.example", "--events", "sweep.done"),
         "notify[2].events: unknown event 'sweep.done'"),
        (("notify", "add", "ftp://x.example"), "notify[2].url: url must be an http"),
        (("notify", "add", "https://x.example", "--format", "xml"), "notify[2].format"),
        (("notify", "add", "https://x.example", "--secret-env", "s3cr3t value"),
         "is not an environment variable name"),
        (("notify", "remove", "3"), "no webhook #3"),
        (("notify", "remove", "https://nowhere.example"), "no webhook with url"),
    ):
        r = coord_inline(eco_both_paths, *args)
        assert r.code == 2 and says in r.err, (args, r.err)
    assert eco_both_paths.read_bytes() == before

    r = coord_inline(eco_both_paths, "notify", "remove", "2", "--json")
    assert r.code == 0, r.err
    assert r.json()["index"] == 2 and r.json()["removed"]["format"] == "slack"
    r = coord_inline(eco_both_paths, "notify", "remove", "https://hooks.example/coord", "--json")
    assert r.code == 0 and r.json()["removed"]["events"] == ["sweep.finished", "gate.waiting"]
    assert eco_both_paths.read_text() == CATALOG  # the last one takes its key with it
    assert coord_inline(eco_both_paths, "notify", "list", "--json").json() == []

    log = entries(eco_both_paths)
    assert [e["op"] for e in log] == ["add_notify", "add_notify", "remove_notify",
                                      "remove_notify"]
    assert [(c["kind"], c["action"]) for e in log for c in e["changes"]] == [
        ("notify", "created"), ("notify", "created"), ("notify", "deleted"),
        ("notify", "deleted")]
    assert log[0]["changes"][0]["fields"]["events"] == [None, ["sweep.finished", "gate.waiting"]]
    assert "hunter2" not in json.dumps([e["changes"] for e in log])  # the password masked
    # ...in the command lines the log records too (`notify add https://bot:hunter2@...`)
    assert any("chat.example" in a for e in log for a in e["argv"] or []), log
    assert "hunter2" not in audit.log_path(eco_both_paths).read_text()
    assert audit.verify(audit.log_path(eco_both_paths))[1] is None
