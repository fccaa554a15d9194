"""Every event of real sweeps' ledgers carries the fields its kind declares, and no other
(``coordination.status.EVENT_FIELDS``, the events reference; issue #42).

tests/unit/test_event_fields.py reads what each Python ``emit`` and Lua script sets; what
a todo's end carries when a worker's run ends it (``Turn.finish(status, fields, event)``:
the status is known only at run time) is seen here, in the ledgers of sweeps that end
todos each way a run can end: succeeded (with results), failed (after a retry), cached,
compensated and compensation_failed (an --atomic sweep rolled back), cancelled while
running (coord sweep cancel); with a skipped todo, a gate that expires, a rollback and a
cancel besides. Real redis-server, real `coord worker` processes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from coordination.status import EVENT_FIELDS, EventKind
from tests.docs.reference import load_gen_ref
from tests.integration.helpers import Cluster, wait_until

pytestmark = pytest.mark.timeout(240)

#: The kinds a worker's run (or a reused one) ends a todo with.
RUN_ENDS = ("todo.succeeded", "todo.failed", "todo.cached", "todo.compensated",
            "todo.compensation_failed", "todo.cancelled")
ENVELOPE = {"id", "kind", "ts", "sweep_id", "todo_id"}

CATALOG = """\
version: 1
repos:
  - {name: api, path: repos/api}
  - {name: web, path: repos/web}
coordination:
  plans:
    - {id: PLAN-001, title: "run, fail, skip, cache", status: active}
    - {id: PLAN-002, title: "roll back", status: active}
    - {id: PLAN-003, title: "a gate that expires", status: active}
    - {id: PLAN-004, title: "cancelled while it runs", status: active}
  todos:
    - {id: TODO-001, task: results, repo: api, plan: PLAN-001, cache: true,
       run: "echo built=yes >> \\"$COORD_OUTPUT\\""}
    - {id: TODO-002, task: fails, repo: web, plan: PLAN-001, run: "exit 3", retries: 1,
       blocked_by: [TODO-001]}
    - {id: TODO-003, task: skipped, repo: web, plan: PLAN-001, run: "true",
       blocked_by: [TODO-002]}
    - {id: TODO-004, task: undone, repo: api, plan: PLAN-002, run: "true", undo: "true"}
    - {id: TODO-005, task: undo fails, repo: web, plan: PLAN-002, run: "true",
       undo: "exit 1"}
    - {id: TODO-006, task: fails last, repo: api, plan: PLAN-002, run: "exit 1",
       blocked_by: [TODO-004, TODO-005]}
    - {id: TODO-007, task: sign-off, repo: api, plan: PLAN-003,
       gate: {approvals: 1, expires: 1s, on_expiry: cancel}}
    - {id: TODO-008, task: after the gate, repo: api, plan: PLAN-003, run: "true",
       blocked_by: [TODO-007]}
    - {id: TODO-009, task: long, repo: api, plan: PLAN-004, run: "sleep 60"}
"""


def _sweep(cluster: Cluster, *args: str) -> str:
    res = cluster.cli("plan", "sweep", *args, "--wait", "--json", timeout=120)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    return str(json.loads(res.stdout)["sweep_id"])


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                        "HOME": str(path), "PATH": "/usr/bin:/bin"})


def test_every_event_carries_its_kinds_fields(cluster: Cluster) -> None:
    for repo in ("api", "web"):
        d = cluster.repo_dir(repo)
        d.mkdir(parents=True)
        _git(d, "init", "-q", "-b", "main")  # a cache key is read with git
        (d / "README").write_text(repo)
        _git(d, "add", "README")
        _git(d, "commit", "-q", "-m", "start")
    cluster.eco.write_text(CATALOG)
    cluster.start_workers(["api", "web"])

    sweeps = [_sweep(cluster, "PLAN-001"),  # succeeded (results), retrying, failed, skipped
              _sweep(cluster, "PLAN-001", "--again"),  # TODO-001 cached
              _sweep(cluster, "PLAN-002", "--atomic"),  # compensated, compensation_failed
              _sweep(cluster, "PLAN-003")]  # gate.waiting, gate.expired, cancelled
    sid = cluster.start_sweep("PLAN-004")
    cluster.wait_todo(sid, "TODO-009", {"running"})
    res = cluster.cli("sweep", "cancel", sid)
    assert res.returncode == 0, res.stderr
    cluster.wait_sweep(sid)
    wait_until(lambda: any(e["kind"] == "todo.cancelled" for e in cluster.events(sid)), 30,
               "the cancelled run's end in the ledger")
    sweeps.append(sid)

    seen: dict[str, set[str]] = {}
    undeclared = []
    for s in sweeps:
        for e in cluster.events(s):
            fields = set(e) - ENVELOPE
            seen.setdefault(e["kind"], set()).update(fields)
            extra = fields - set(EVENT_FIELDS[EventKind(e["kind"])])
            if extra:
                undeclared.append(f"{e['kind']} carries {sorted(extra)}: {e}")
    assert not undeclared, "fields EVENT_FIELDS does not declare:\n" + "\n".join(undeclared)

    assert set(RUN_ENDS) <= set(seen), f"not every way a run ends was seen: {sorted(seen)}"
    static = load_gen_ref().emitters()
    for kind in RUN_ENDS:
        read = set().union(*static.get(kind, {}).values())
        declared = set(EVENT_FIELDS[EventKind(kind)])
        assert declared <= seen[kind] | read, (
            f"{kind} declares {sorted(declared - seen[kind] - read)}, which no emitter sets "
            "(neither in the code nor in these ledgers)")
    # the ways checked above did what they are here for
    assert "outputs" in seen["todo.succeeded"] and "cached_from" in seen["todo.cached"]
    assert "worker" in seen["todo.cancelled"] and "worker" in seen["todo.compensated"]
    assert {"gate.waiting", "gate.expired", "todo.retrying", "todo.skipped",
            "sweep.rolling_back", "sweep.cancelled"} <= set(seen)
