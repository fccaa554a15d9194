"""Starting a plan's sweep with no person at a terminal: a schedule's firing (`coord
beat`) and a push (`coord trigger push`, a forge's push webhook: :func:`on_push`).

There is no second way to start a sweep: a firing takes `coord plan sweep PLAN --again`'s
path (:func:`coordination.launch.prepare`, then :meth:`Launch.start`), with its trigger
named in the sweep's record and, since no one typed a command, in the catalog's audit log
(``sweep.start``). A freeze refuses it as it refuses the command (exit 1 for `coord
trigger push`; logged by `coord beat`). Every todo of the plan runs, completed ones too
(``--again``): a schedule or a push runs its plan each time; a push only its todos of
the push's scope (the trigger's ``repos``: :mod:`coordination.sweeps.starts.triggers`).

Distributed (``COORD_REDIS_URL``): the sweep is recorded and its first todos sent to the
team's workers, and this returns at once, as `plan sweep` without ``--wait`` does.
Embedded: nothing but a `coord plan sweep` process runs an embedded sweep's workers, so
each firing is one, started detached (its own session: it outlives the beat or the
`coord trigger push` that started it, as a sweep on a team's workers does), and this
returns once it has printed its sweep id; it runs, syncs the catalog and exits as `plan
sweep` does.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.errors import CoordError
from coordination.runtime.context import get_runtime
from coordination.sweeps.starts.triggers import (
    PushPlans,
    Trigger,
    plans_for_push,
    push_trigger,
    trigger_scope,
)

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

log = logging.getLogger("coord.firing")

#: How long an embedded firing's `plan sweep` may take to print its sweep id (planning a
#: big plan, starting the server and the workers) before it is taken for stuck.
EMBEDDED_START_TIMEOUT = 300.0


@dataclass
class Started:
    """One plan a firing started (``sweep_id``), or could not (``error``: a frozen fleet,
    a plan that cannot be swept)."""

    plan: str
    trigger: Trigger
    sweep_id: str | None = None
    error: str | None = None
    pid: int | None = None  # embedded: the `coord plan sweep` process running it

    def document(self) -> dict[str, object]:
        return {"plan": self.plan, "sweep_id": self.sweep_id, "error": self.error,
                "trigger": dict(self.trigger), **({"pid": self.pid} if self.pid else {})}


def start_plan(catalog: Path, plan_id: str, trigger: Trigger) -> Started:
    """Start a sweep of ``plan_id`` for ``trigger`` (see the module); a CoordError (a
    frozen fleet, a plan that cannot be swept) is the result's ``error``, never raised."""
    try:
        if get_runtime(catalog).settings.embedded:
            return _start_embedded(catalog, plan_id, trigger)
        from coordination import launch  # lazy: the send path

        started = launch.prepare(catalog, plan_id=plan_id, again=True, trigger=trigger)
        return Started(plan_id, trigger, sweep_id=started.start())
    except CoordError as exc:
        return Started(plan_id, trigger, error=str(exc))


def push_catalog(catalog: Path) -> Catalog:
    """The catalog as the planner sees it, which a push's triggers are matched against
    (read once by a caller that matches several repos' pushes: the forge's webhook)."""
    from coordination.sweeps import SweepService  # lazy: the catalog's reader

    return SweepService(get_runtime(catalog), catalog).catalog()


def on_push(catalog: Path, repo: str, branch: str | None, sha: str, *,
            read: Catalog | None = None) -> tuple[PushPlans, list[Started]]:
    """A push of ``sha`` to ``repo``'s ``branch`` (None: its default branch): every plan
    whose ``on: {push: ...}`` matches starts (:func:`start_plan`). Returns what matched
    and did not (and why), and each start. An unknown repo is a NotFoundError (exit 2);
    a push nothing matches starts nothing. ``read``: the catalog :func:`push_catalog`
    gave, when the caller has it (else it is read here). The forge's push webhook and
    `coord trigger push` call this."""
    plans = plans_for_push(read if read is not None else push_catalog(catalog), repo, branch,
                           catalog.resolve().parent)
    return plans, [start_plan(catalog, m.plan, push_trigger(repo, plans.branch, sha,
                                                            list(m.repos)))
                   for m in plans.matches]


@dataclass
class Preview:
    """What a push would start of one plan (`coord trigger push --dry-run`): the todos of
    its scope by level, or why its start would be refused."""

    plan: str
    trigger: Trigger
    levels: list[list[str]] = field(default_factory=list)
    error: str | None = None

    def document(self) -> dict[str, object]:
        return {"plan": self.plan, "repos": self.trigger.get("repos"), "levels": self.levels,
                "todos": sum(len(lv) for lv in self.levels), "error": self.error}


def preview_push(catalog: Path, repo: str, branch: str | None, sha: str
                 ) -> tuple[PushPlans, list[Preview]]:
    """:func:`on_push` without starting anything: each matching plan's sweep planned as
    its start would plan it (the push's scope, every todo of it again), or the refusal
    its start would meet (a frozen fleet, a todo of the scope waiting for one outside
    it that is not completed). Nothing is written."""
    from coordination.runtime.freeze import refuse_if_frozen  # lazy: as push_catalog
    from coordination.sweeps import SweepService  # lazy: the catalog's reader, as push_catalog

    svc = SweepService(get_runtime(catalog), catalog)
    plans = plans_for_push(svc.catalog(), repo, branch, catalog.resolve().parent)
    out: list[Preview] = []
    for m in plans.matches:
        trigger = push_trigger(repo, plans.branch, sha, list(m.repos))
        try:
            refuse_if_frozen(svc.rt, f"start a sweep of {m.plan}", catalog)
            spec = svc.plan_spec(m.plan, strategy="levels", ignore_blockers=False, again=True,
                                 repos=trigger_scope(trigger))
        except CoordError as exc:
            out.append(Preview(m.plan, trigger, error=str(exc)))
            continue
        out.append(Preview(m.plan, trigger, levels=[list(lv) for lv in spec.levels]))
    return plans, out


def _start_embedded(catalog: Path, plan_id: str, trigger: Trigger) -> Started:
    """`coord plan sweep PLAN --again` in a detached process (see the module); its sweep
    id is the first line it prints, or its error what it said before it exited."""
    argv = [sys.executable, "-c", "from coordination.cli.main import main; main()",
            "--file", str(catalog), "plan", "sweep", plan_id, "--again",
            "--trigger", json.dumps(dict(trigger))]
    with tempfile.TemporaryDirectory(prefix="coord-firing-") as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, env=os.environ.copy())
        deadline = time.monotonic() + EMBEDDED_START_TIMEOUT
        while True:
            first = out_path.read_text(encoding="utf-8", errors="replace").split("\n", 1)
            if len(first) > 1 and first[0].strip():
                return Started(plan_id, trigger, sweep_id=first[0].strip(), pid=proc.pid)
            if proc.poll() is not None:
                said = err_path.read_text(encoding="utf-8", errors="replace").strip()
                at = said.rfind("error: ")  # the error and its hint, as the command said them
                return Started(plan_id, trigger, error=said[at + 7:] if at >= 0 else (
                    said[-2000:] or f"coord plan sweep exited {proc.returncode} before it "
                                    "started"))
            if time.monotonic() > deadline:
                return Started(plan_id, trigger, pid=proc.pid,
                               error=f"coord plan sweep (pid {proc.pid}) printed no sweep id "
                                     f"in {EMBEDDED_START_TIMEOUT:.0f} s")
            time.sleep(0.05)
