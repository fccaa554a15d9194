"""Waits you can see and that end: who waits on whom, and the three ways a wait ends
other than by its holder finishing.

A todo whose repo slot or shared-resource slot is taken waits in that line
(``lua/todo_start.lua``): its worker asks again until a slot is free. The *wait-for
graph* has one edge per waiter and line: the waiting todo -> the todos holding the
line's slots (:func:`wait_graph`, ``coord resources --graph``).

- **A holder that is gone.** A holder whose worker stopped beating (SIGKILL, a lost
  machine) keeps its slots until its lease expires (``COORD_LEASE_TTL``). Gone means its
  worker's liveness record expired *and* its lease went two heartbeats unrenewed: the
  record alone is a hint anyone with Redis can delete, the lease's renewal is the
  holder's own. When someone waits on it, the supervision pass does not wait for the
  lease to expire: it frees the holder's
  slots (the release compares the token in Lua) and hands the holder's run to the
  lost-run path at once (``todo.lost``, reason naming the waiters), so the first
  waiter starts at its next ask. A holder whose token names no todo of a live sweep
  (a landing step) is left to its lease's TTL.
- **A cycle.** Grants are all-or-none: a waiting todo holds no slot at all (a start
  that cannot take every slot it needs gives back what it took, in the same script),
  so a waiter has no edge *into* it and the graph of slot waits cannot have a cycle.
  The detector (:func:`wait_cycles`) still runs on every graph the pass builds: should
  a cycle appear (a future kind of wait, or a hand-made key), the youngest waiter of
  each cycle ends ``failed`` with a reason naming the cycle.
- **A wait timeout.** A todo's ``wait_timeout:`` (or ``plan sweep --wait-timeout``)
  bounds how long it waits for a slot: past it, the waiting delivery ends the todo
  ``failed``, naming what it waited for and who held it (:func:`fail_waiter`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TypedDict

from coordination.planner.algorithms import find_cycles
from coordination.planner.digraph import DiGraph
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import Checkpoint
from coordination.runtime.transitions import start_token_todo
from coordination.status import NOT_STARTED, TodoStatus
from coordination.sweeps.lost import lease_lost
from coordination.sweeps.progress import end_todos
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_spec

log = logging.getLogger("coord.supervisor")


class HolderNode(TypedDict):
    sweep_id: str | None
    todo_id: str | None
    worker: str | None
    gone: bool  # its worker stopped beating, and its lease went unrenewed


class WaitEdge(TypedDict):
    """One waiter in one line, and whoever holds that line's slots."""

    sweep_id: str
    todo_id: str
    waiting_for: str  # "repo:api" or "resource:db"
    waiting_since: float
    holders: list[HolderNode]


class WaitGraph(TypedDict):
    """``coord resources --graph --json``."""

    edges: list[WaitEdge]
    cycles: list[list[str]]  # each a list of "sweep/todo", the first again at its end


#: The checkpoint fields of a holder the graph and the breaking read.
HOLDER_FIELDS = ("token", "worker", "started_at", "lease_key", "resource_keys", "lost_runs")


def holders_by_token(rt: Runtime, tokens: set[str]) -> dict[str, tuple[str, str, Checkpoint]]:
    """Token -> (sweep, todo, checkpoint) of the running todos holding ``tokens``: a
    start's token names its sweep's hash and its todo
    (:func:`coordination.runtime.transitions.start_token`), so only those checkpoints
    are read (one command per sweep), and one counts only while it still runs under
    that token. A token that names no todo (a landing step) is left out."""
    wanted: dict[str, dict[str, str]] = {}
    for tok in tokens:
        named = start_token_todo(rt.keys, tok)
        if named is not None:
            wanted.setdefault(named[0], {})[named[1]] = tok
    out: dict[str, tuple[str, str, Checkpoint]] = {}
    for sid, todos in wanted.items():
        cps = rt.checkpoints.get_fields_all(sid, sorted(todos), HOLDER_FIELDS)
        for tid, tok in todos.items():
            cp = cps.get(tid)
            if cp and cp.get("status") == TodoStatus.running and cp.get("token") == tok:
                out[tok] = (sid, tid, cp)
    return out


def _worker_of(token: str, cp: Checkpoint | None) -> str:
    worker = (cp or {}).get("worker")
    return str(worker) if worker else ":".join(token.split(":")[:2])


def wait_graph(rt: Runtime, repos: Mapping[str, int], shared: Mapping[str, int]
               ) -> tuple[WaitGraph, dict[str, tuple[str, str, Checkpoint]]]:
    """The wait-for graph of the lines of ``repos`` (name -> concurrency) and ``shared``
    resources (name -> capacity), and the running todos by token it was built from."""
    repo_lines, res_lines = rt.leases.lines(dict(repos), dict(shared))
    lines = {**{f"repo:{n}": v for n, v in repo_lines.items()},
             **{f"resource:{n}": v for n, v in res_lines.items()}}
    waited = {k: v for k, v in lines.items() if v.waiting}
    if not waited:
        return {"edges": [], "cycles": []}, {}
    tokens = {s.token for v in waited.values() for s in v.slots if s.token}
    held = holders_by_token(rt, tokens)
    # Gone: its liveness record expired (three missed beats), as `coord workers` has it,
    # AND its lease was not renewed for two heartbeats. The liveness record is a hint a
    # Redis writer can delete; the lease is what the holder's heartbeat renews while it
    # runs (deleting a live worker's record must not have its todo run twice at once).
    live = {w.name for w in rt.workers.live()}
    unrenewed = rt.leases.ttl_ms - 2 * rt.settings.heartbeat_interval * 1000
    edges: list[WaitEdge] = []
    for name in sorted(waited):
        line = waited[name]
        holders: list[HolderNode] = []
        for s in line.slots:
            if s.token is None:
                continue
            found = held.get(s.token)
            worker = _worker_of(s.token, found[2] if found else None)
            gone = worker not in live and s.ttl_ms is not None and s.ttl_ms < unrenewed
            holders.append({"sweep_id": found[0] if found else None,
                            "todo_id": found[1] if found else None,
                            "worker": worker, "gone": gone})
        for w in line.waiting:
            edges.append({"sweep_id": w.sweep_id, "todo_id": w.todo_id, "waiting_for": name,
                          "waiting_since": w.since, "holders": holders})
    return {"edges": edges, "cycles": wait_cycles(edges)}, held


def wait_cycles(edges: list[WaitEdge]) -> list[list[str]]:
    """Every cycle among the waits (one per strongly connected tangle), as the todos
    ``sweep/todo`` around it, the first again at the end. With all-or-none grants a
    waiter holds nothing, so none is expected (see the module docs)."""
    g = DiGraph()
    for e in edges:
        me = f"{e['sweep_id']}/{e['todo_id']}"
        g.add_node(me)
        for h in e["holders"]:
            if h["sweep_id"] and h["todo_id"]:
                g.add_edge(me, f"{h['sweep_id']}/{h['todo_id']}")
    return [list(c) + [c[0]] for c in find_cycles(g)[0]]


def youngest(cycle: list[str], edges: list[WaitEdge]) -> str | None:
    """The waiter of ``cycle`` that started waiting last (``sweep/todo``)."""
    since = {f"{e['sweep_id']}/{e['todo_id']}": e["waiting_since"] for e in edges}
    members = [m for m in dict.fromkeys(cycle) if m in since]
    return max(members, key=lambda m: (since[m], m)) if members else None


def fail_waiter(rt: Runtime, spec: SweepSpec, todo_id: str, why: str,
                worker: str | None = None) -> bool:
    """End a todo that waits for a slot ``failed`` with ``why`` (a todo that started
    meanwhile is left alone); its delivery stops waiting at its next ask. True if ended."""
    event: dict[str, object] = {"reason": why}
    if worker:
        event["worker"] = worker
    if not end_todos(rt, spec, [todo_id], TodoStatus.failed, NOT_STARTED, event=event):
        return False
    log.warning("sweep %s: %s failed: %s", spec.sweep_id, todo_id, why)
    return True


def describe_wait(rt: Runtime, spec: SweepSpec, todo_id: str, what: str) -> str:
    """What ``todo_id`` waits for, for a reason: ``repo api (held by TODO-001 of sweep
    S)`` or ``resource db (...)``; who holds it is best effort."""
    t = spec.todos[todo_id]
    if what == "repo":
        name, repos, shared = f"repo {t.repo}", {t.repo: spec.concurrency.get(t.repo, 1)}, {}
    else:
        name, repos, shared = f"resource {what}", {}, {what: int(spec.capacity.get(what, 1))}
    try:
        rl, sl = rt.leases.lines(repos, shared)
        line = (rl or sl)[t.repo if what == "repo" else what]
        tokens = [s.token for s in line.slots if s.token]
        held = holders_by_token(rt, set(tokens))
    except Exception:  # noqa: BLE001 - the reason goes without its holders
        return name
    names = []
    for tok in tokens:
        found = held.get(tok)
        names.append(f"{found[1]} of sweep {found[0]}" if found
                     else f"worker {_worker_of(tok, None)}")
    return f"{name} (held by {', '.join(names)})" if names else name


#: Lines (repos and shared resources of the live sweeps) the look at waits reads per
#: second, on average, at most: a fleet of 10,000 repos is looked at every 10 s.
LINES_RATE = 1000.0


def supervise_waits(rt: Runtime, *, period: float | None = None) -> dict[str, list[str]]:
    """The namespace-wide look at waits (one process at a time, at most every
    ``period`` s): break the waits on holders that are gone and the cycles. Returns
    what it did: ``{"broken": [sweep/todo of freed holders], "failed": [waiters]}``."""
    done: dict[str, list[str]] = {"broken": [], "failed": []}
    specs: dict[str, SweepSpec] = {}
    repos: dict[str, int] = {}
    shared: dict[str, int] = {}
    for sid in rt.checkpoints.active_sweeps():
        spec = load_spec(rt, sid)
        if spec is None:
            continue
        specs[sid] = spec
        for t in spec.todos.values():
            repos[t.repo] = max(repos.get(t.repo, 1), int(spec.concurrency.get(t.repo, 1)))
            for r in t.resources:
                shared[r] = max(shared.get(r, 1), int(spec.capacity.get(r, 1)))
    if not specs:
        return done
    if period is None:  # a fleet's lines are looked at less often (LINES_RATE)
        period = max(2.0, 2 * rt.settings.supervise_interval,
                     (len(repos) + len(shared)) / LINES_RATE)
    if not rt.leases.take_waits_turn(int(period * 900)):
        return done
    waited_repos, waited_shared = rt.leases.waited(list(repos), list(shared))
    if not waited_repos and not waited_shared:
        return done
    graph, held = wait_graph(rt, {r: repos[r] for r in waited_repos},
                             {x: shared[x] for x in waited_shared})
    if not graph["edges"]:
        return done
    now = time.time()
    freed: set[str] = set()
    for e in graph["edges"]:
        for h in e["holders"]:
            key = f"{h['sweep_id']}/{h['todo_id']}"
            if not h["gone"] or not h["sweep_id"] or key in freed:
                continue
            spec = specs.get(h["sweep_id"] or "")
            tok = next((t for t, v in held.items() if v[0] == h["sweep_id"]
                        and v[1] == h["todo_id"]), None)
            if spec is None or tok is None or h["todo_id"] not in spec.todos:
                continue
            waiters = sorted({f"{x['todo_id']} of sweep {x['sweep_id']}"
                              for x in graph["edges"] if h in x["holders"]})
            if break_holder(rt, spec, str(h["todo_id"]), tok, held[tok][2], now,
                            why=f"its worker {h['worker']} is gone while "
                                f"{', '.join(waiters)} waited on it"):
                freed.add(key)
                done["broken"].append(key)
    for cycle in graph["cycles"]:
        victim = youngest(cycle, graph["edges"])
        if victim is None:
            continue
        sid, _, tid = victim.rpartition("/")
        spec = specs.get(sid)
        if spec is None or tid not in spec.todos:
            continue
        if fail_waiter(rt, spec, tid, "wait cycle: " + " -> ".join(cycle)
                       + " (the youngest waiter fails to break it)"):
            done["failed"].append(victim)
    return done


def break_holder(rt: Runtime, spec: SweepSpec, todo_id: str, token: str, cp: Checkpoint,
                 now: float, *, why: str) -> bool:
    """Free the slots a gone holder's run took (only while its token still holds them)
    and hand its run to the lost-run path now, not when its lease would expire."""
    lease_key = cp.get("lease_key")
    if not lease_key:
        return False
    keys = [str(lease_key), *(str(k) for k in (cp.get("resource_keys") or []))]
    if not rt.leases.release_keys(keys, token):
        return False
    log.warning("sweep %s: %s's slots freed: %s", spec.sweep_id, todo_id, why)
    lease_lost(rt, spec, todo_id, cp, now, why=f"holder gone: {why}")
    return True

