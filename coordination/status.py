"""Every runtime status and event kind, and which transitions are allowed.

The one place statuses are spelled. Python imports the enums and sets from
here; the Lua scripts get them from :func:`lua_preamble`, which the script
loader puts in front of every script, so a status is never retyped in Lua.

Adding a status is one edit here: the member, and its row in the transition
table (plus the sets it belongs to). ``tests/unit/status`` checks that every
member has a row, that the Lua tables match, and that no script spells a
status itself.

The values are the strings users and scripts see (``coord sweep status
--json``, event payloads, checkpoints in Redis): the enums are ``StrEnum``,
so ``TodoStatus.failed == "failed"`` and JSON encoding is unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class TodoStatus(StrEnum):
    """A todo's status within one sweep (its checkpoint)."""

    pending = "pending"  # waiting for its predecessors
    queued = "queued"  # a message for it is (or should be) in its repo's queue
    held = "held"  # its repo's circuit breaker is open: it waits, not failed
    awaiting_approval = "awaiting_approval"  # a gate waiting for people (no lease, no slot)
    running = "running"  # a worker holds its repo's lease and runs it
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"  # a predecessor did not succeed
    cancelled = "cancelled"  # the sweep ended (cancel, deadline) before it ran
    compensated = "compensated"  # a rollback ran its undo: command, which succeeded
    compensation_failed = "compensation_failed"  # its undo: command failed
    cached = "cached"  # an earlier successful run with the same cache key was reused


class SweepStatus(StrEnum):
    """A sweep's status (its record)."""

    queued = "queued"  # created; no todo has started yet
    running = "running"
    paused = "paused"  # nothing new starts; running todos finish
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    rolling_back = "rolling_back"  # running the undo: commands of what succeeded
    rolled_back = "rolled_back"  # every undo succeeded
    rollback_failed = "rollback_failed"  # an undo failed (or was skipped or cancelled)


class BreakerState(StrEnum):
    """A repo's circuit breaker (``breaker:`` on a repo in the catalog)."""

    closed = "closed"  # todos run
    open = "open"  # too many consecutive failed or lost todos: its todos are held
    half_open = "half_open"  # the cooldown passed: one todo (the probe) runs


T, S = TodoStatus, SweepStatus

#: Which status each todo status may move to, and who moves it there.
TODO_TRANSITIONS: dict[TodoStatus, frozenset[TodoStatus]] = {
    # dispatch (canvas or supervisor); skip (a predecessor failed); cancel / deadline;
    # a gate opens (its predecessors succeeded)
    T.pending: frozenset({T.queued, T.skipped, T.cancelled, T.awaiting_approval}),
    # a worker claims it; skip; cancel; a lost message is re-queued (queued -> queued);
    # a gate an eager finish queued opens
    T.queued: frozenset({T.queued, T.running, T.held, T.skipped, T.cancelled, T.failed,
                         T.awaiting_approval}),
    # a gate: approved by enough people, rejected, expired (cancelled), or its sweep
    # ended or stopped before anyone decided
    T.awaiting_approval: frozenset({T.succeeded, T.failed, T.cancelled, T.skipped}),
    # its breaker closed or half-opened (re-queued by the supervisor); skip; cancel
    T.held: frozenset({T.queued, T.skipped, T.cancelled}),
    # the holder finishes it; its lease expired (re-queued, or failed as a poison todo);
    # a new holder takes over a dead holder's run (running -> running)
    T.running: frozenset({T.running, T.succeeded, T.failed, T.cancelled, T.queued,
                          T.cached}),
    # a resume sends failed, skipped and cancelled todos again; a rollback sends the
    # succeeded ones again, to run their undo: command; a gate read passed on a
    # decision that fails its check ends failed (sweeps/governance/decisions.py)
    T.succeeded: frozenset({T.pending, T.failed}),
    T.failed: frozenset({T.pending}),
    T.skipped: frozenset({T.pending}),
    T.cancelled: frozenset({T.pending}),
    # a resume with --reapply runs a compensated todo's change again
    T.compensated: frozenset({T.pending}),
    # a rollback of a rollback_failed sweep runs its failed undo again
    T.compensation_failed: frozenset({T.pending}),
    # a resume with --only sends a todo whose run was reused again
    T.cached: frozenset({T.pending}),
}

#: Which status each sweep status may move to.
SWEEP_TRANSITIONS: dict[SweepStatus, frozenset[SweepStatus]] = {
    # an atomic sweep whose todos all ended, one failed, goes straight to its rollback
    S.queued: frozenset({S.running, S.paused, S.succeeded, S.failed, S.cancelled,
                         S.rolling_back}),
    S.running: frozenset({S.paused, S.succeeded, S.failed, S.cancelled, S.rolling_back}),
    S.paused: frozenset({S.queued, S.running, S.rolling_back, S.failed, S.cancelled}),
    # a resume starts the next run of an ended sweep; a rollback compensates it
    S.succeeded: frozenset({S.queued, S.rolling_back}),
    S.failed: frozenset({S.queued, S.rolling_back}),
    S.cancelled: frozenset({S.queued, S.rolling_back}),
    S.rolling_back: frozenset({S.paused, S.rolled_back, S.rollback_failed, S.cancelled}),
    # a resume with --reapply runs the undone changes again
    S.rolled_back: frozenset({S.queued}),
    # a rollback retries the undos that failed or were skipped; or --reapply, as above
    S.rollback_failed: frozenset({S.rolling_back, S.queued}),
}

#: Ended for this run of the sweep: never dispatched or run again in it.
TERMINAL = frozenset({T.succeeded, T.failed, T.skipped, T.cancelled, T.compensated,
                      T.compensation_failed, T.cached})
#: Ended well: what comes after it may start (a todo's run, or its undo in a rollback).
SUCCESSFUL = frozenset({T.succeeded, T.compensated, T.cached})
#: Its command's outcome is in place: ran and succeeded, or an earlier success reused.
DONE = frozenset({T.succeeded, T.cached})
#: Ended without succeeding: dependents are skipped.
UNSUCCESSFUL = TERMINAL - SUCCESSFUL
#: Not started: may still be skipped or cancelled (a gate waiting for people too).
NOT_STARTED = frozenset({T.pending, T.queued, T.held, T.awaiting_approval})
#: Todos a person should look at in a big sweep: all but those waiting their turn
#: (pending, queued) and those done well (succeeded, cached). The transition scripts keep
#: which todos of a sweep are in one of these (its tally, lua/_common.lua), so `sweep
#: status` of 10,000 todos reads those and a count per status, not every checkpoint.
ATTENTION = frozenset(TodoStatus) - {T.pending, T.queued, T.succeeded, T.cached}

#: Sweeps that dispatch and run todos (a rollback runs undo: commands).
SWEEP_ACTIVE = frozenset({S.queued, S.running, S.rolling_back})
#: Sweeps that have not ended (paused dispatches nothing new).
SWEEP_LIVE = SWEEP_ACTIVE | {S.paused}
#: Sweeps that have ended (a resume may start another run).
SWEEP_ENDED = frozenset(S) - SWEEP_LIVE


class EventKind(StrEnum):
    """Every kind of event the runtime appends to the ledger (what each says:
    :data:`EVENT_DESCRIPTIONS`)."""

    sweep_queued = "sweep.queued"
    sweep_started = "sweep.started"
    sweep_paused = "sweep.paused"
    sweep_unpaused = "sweep.unpaused"
    sweep_rolling_back = "sweep.rolling_back"
    sweep_finished = "sweep.finished"
    sweep_cancelled = "sweep.cancelled"
    level_done = "level.done"
    todo_queued = "todo.queued"
    todo_started = "todo.started"
    todo_retrying = "todo.retrying"
    todo_succeeded = "todo.succeeded"
    todo_failed = "todo.failed"
    todo_skipped = "todo.skipped"
    todo_cancelled = "todo.cancelled"
    todo_compensated = "todo.compensated"
    todo_compensation_failed = "todo.compensation_failed"
    todo_cached = "todo.cached"
    todo_lost = "todo.lost"
    todo_held = "todo.held"
    repo_breaker_open = "repo.breaker_open"
    repo_breaker_closed = "repo.breaker_closed"
    repo_unattended = "repo.unattended"
    supervisor_redispatched = "supervisor.redispatched"
    gate_waiting = "gate.waiting"
    gate_approved = "gate.approved"
    gate_rejected = "gate.rejected"
    gate_expired = "gate.expired"
    wave_started = "wave.started"
    wave_soaking = "wave.soaking"
    wave_done = "wave.done"
    wave_halted = "wave.halted"
    change_prepared = "change.prepared"
    change_landing = "change.landing"
    repo_landed = "repo.landed"
    repo_reverted = "repo.reverted"
    change_landed = "change.landed"
    change_reverted = "change.reverted"
    change_wave_landing = "change.wave_landing"
    change_wave_soaking = "change.wave_soaking"
    change_wave_landed = "change.wave_landed"
    milestone_completed = "milestone.completed"
    milestone_reopened = "milestone.reopened"
    todo_overdue = "todo.overdue"
    plan_overdue = "plan.overdue"
    fleet_frozen = "fleet.frozen"
    fleet_unfrozen = "fleet.unfrozen"
    schedule_skipped = "schedule.skipped"
    schedule_refused = "schedule.refused"
    fleet_refrozen = "fleet.refrozen"
    commit_status_failed = "commit_status.failed"


#: What each kind of event says: the generated events reference (docs/hooks/gen_ref.py)
#: shows it, and tests/unit/test_docs_reference.py fails on a kind without one.
EVENT_DESCRIPTIONS: dict[EventKind, str] = {
    EventKind.sweep_queued: "A sweep was created, or resumed (`resumed: true`); its first "
                            "todos are being sent.",
    EventKind.sweep_started: "Reserved: not appended by this version (a sweep moves to "
                             "`running` at its first `todo.started`).",
    EventKind.sweep_paused: "The sweep was paused (`coord sweep pause`, or a wave that missed "
                            "its criteria); running todos finish, no new one starts.",
    EventKind.sweep_unpaused: "A paused sweep goes on (`coord sweep unpause`).",
    EventKind.sweep_rolling_back: "The sweep undoes what it did, newest first (`coord sweep "
                                  "rollback`, a failed `--atomic` sweep, a gate's or wave's "
                                  "`rollback`); `reason` names the trigger.",
    EventKind.sweep_finished: "A run of the sweep ended: `status` (succeeded, failed, "
                              "rolled_back, ...) and `reason`.",
    EventKind.sweep_cancelled: "A run of the sweep ended cancelled (`coord sweep cancel`, "
                               "Ctrl-C, a gate that expired with `on_expiry: cancel`).",
    EventKind.level_done: "Every todo of a level of the plan ended (`level`).",
    EventKind.todo_queued: "The todo's message was sent to its repo's queue.",
    EventKind.todo_started: "A worker took the todo's repo slot and started its command.",
    EventKind.todo_retrying: "An attempt failed and the todo has retries left: it runs again "
                             "after a backoff.",
    EventKind.todo_succeeded: "The todo's command exited 0.",
    EventKind.todo_failed: "The todo failed: its command exited non-zero after its retries, "
                           "timed out, or its worker died too often (`poison`).",
    EventKind.todo_skipped: "The todo will not run: a todo before it failed, was skipped or "
                            "was cancelled (`reason` names it).",
    EventKind.todo_cancelled: "The todo was stopped, or never started, because its sweep was "
                              "cancelled (or an `--atomic=stop` sweep stopped).",
    EventKind.todo_compensated: "In a rollback, the todo's `undo:` ran and succeeded.",
    EventKind.todo_compensation_failed: "In a rollback, the todo's `undo:` failed; the sweep "
                                        "ends `rollback_failed`.",
    EventKind.todo_cached: "Its cache key matched an earlier success, which is reused: the "
                           "todo ends without running.",
    EventKind.todo_lost: "The todo's run was lost (its worker died, its lease expired, or its "
                         "message never arrived): it is sent again, or fails as poison.",
    EventKind.todo_held: "The todo waits without running because its repo's circuit breaker "
                         "is open.",
    EventKind.repo_breaker_open: "A repo's circuit breaker opened after too many failures in a "
                                 "row: its todos are held until the cooldown.",
    EventKind.repo_breaker_closed: "A repo's circuit breaker closed (a probe succeeded, or "
                                   "`coord repo reset`): its held todos go on.",
    EventKind.repo_unattended: "A repo has todos queued and no live worker has served it for "
                               "`COORD_UNATTENDED_AFTER` (`hint` says how to start one).",
    EventKind.supervisor_redispatched: "The supervisor sent a lost todo's message again "
                                       "(`reason`: lease expired, message lost).",
    EventKind.gate_waiting: "A gate opened: what follows it waits for approvals.",
    EventKind.gate_approved: "One approval of a gate (`approvals` of `needed`; `passed` when "
                             "it was the last one needed).",
    EventKind.gate_rejected: "Someone rejected a gate: what follows it will not run.",
    EventKind.gate_expired: "Nobody decided in time: the gate's `on_expiry` (cancel or "
                            "roll back) applies.",
    EventKind.wave_started: "A wave of the plan's todos started (`wave`, `index`).",
    EventKind.wave_soaking: "A wave's todos ended and met its criteria: it soaks until "
                            "`until` before the next wave starts.",
    EventKind.wave_done: "A wave ended, soaked and met its criteria.",
    EventKind.wave_halted: "A wave missed its criteria: the sweep paused, or rolls back if "
                           "`--atomic`.",
    EventKind.change_prepared: "A change's landing recorded its manifest (each repo's "
                               "verified candidate and base).",
    EventKind.change_landing: "A change's first repo is about to land (`order`).",
    EventKind.repo_landed: "One repo of a change landed (`sha`), or landed again after a "
                           "refused revert.",
    EventKind.repo_reverted: "One repo of a change was reverted (`sha`): a landing that "
                             "failed later, or `coord change revert`.",
    EventKind.change_landed: "Every repo of the change landed.",
    EventKind.change_reverted: "What a change had landed was taken out again (also ends a "
                               "`revert_failed` landing: the change's state says which).",
    EventKind.change_wave_landing: "`land: per-wave`: one wave of a change's repos starts "
                                   "landing.",
    EventKind.change_wave_soaking: "`land: per-wave`: a wave landed and soaks until `until` "
                                   "before the next one lands.",
    EventKind.change_wave_landed: "`land: per-wave`: a wave of the change's repos has landed.",
    EventKind.milestone_completed: "A milestone's last todo completed, said once: by the sync "
                                   "of the sweep that completed it, or by `todo complete` / "
                                   "`todo update --status` (no sweep_id).",
    EventKind.milestone_reopened: "A done milestone has a todo that is no longer completed "
                                  "(a rollback undid it, or it ran again and failed).",
    EventKind.todo_overdue: "A todo of a live sweep was not finished by its `due:` time (or "
                            "finished after it), said once per sweep by the supervision pass; "
                            "or a todo past its `due:` that no sweep runs, said once per due "
                            "time by `coord beat` (no sweep_id).",
    EventKind.plan_overdue: "A sweep of a plan with `due:` was still running at that time, "
                            "said once per sweep by the supervision pass.",
    EventKind.fleet_frozen: "`coord freeze`: nothing new starts (sweeps, resumes, triggers, "
                            "schedules' firings, landings) until `coord unfreeze`.",
    EventKind.fleet_unfrozen: "`coord unfreeze`: new sweeps and landings may start again.",
    EventKind.schedule_skipped: "`coord beat` skipped a plan's firing that was missed while no "
                                "beat ran (`catchup: false`).",
    EventKind.schedule_refused: "`coord beat` refused to fire a schedule entry in Redis that "
                                "the catalog does not name as it is (a plan it does not "
                                "schedule, another cron, an entry it cannot read): only the "
                                "catalog's `schedule:` fires.",
    EventKind.fleet_refrozen: "A freeze kept beside the catalog (the freeze file in its "
                              "directory's coord folder) was missing from Redis: it was put "
                              "back (someone removed it without `coord unfreeze`).",
    EventKind.commit_status_failed: "A sweep a push started could not post its commit status "
                                    "(`coord/<PLAN>`) on the pushed commit: the forge was "
                                    "down, refused or too slow. The sweep went on.",
}


_RUN_FIELDS = {
    "worker": "The worker that ran it, as `coord workers` names it.",
    "exit_code": "Its command's exit status (null when it never ran to an end: a timeout, "
                 "a refusal, a missing checkout).",
    "attempts": "Attempts made, retries included.",
    "duration": "Seconds its command ran, over every attempt.",
    "reason": "Why it ended so (null when it succeeded).",
}
_OUTPUTS = {"outputs": "The names of the results it wrote to $COORD_OUTPUT (their values are "
                       "in its checkpoint), when it wrote any."}
_END_REASON = {"reason": "Why (the todo before it that did not succeed, the sweep's end, "
                         "who decided a gate...)."}

#: The fields each kind of event carries besides its envelope (``kind``, ``ts``,
#: ``sweep_id``, ``todo_id``), each with what it says: the generated events reference
#: shows them. tests/unit/test_event_fields.py holds every Python ``emit`` and Lua script
#: to them, and tests/integration/test_event_fields.py every event of real sweeps'
#: ledgers (a worker's run ends with the fields it hands over).
EVENT_FIELDS: dict[EventKind, dict[str, str]] = {
    EventKind.sweep_queued: {
        "plan": "The plan swept.",
        "strategy": "How its todos are sent: levels (a level after the one before) or eager.",
        "todos": "How many todos it runs (a resume: how many run again).",
        "levels": "How many levels the plan has.",
        "resumed": "true: the sweep was resumed (coord sweep resume).",
        "run": "Which run of the sweep this is: 0 first, one more per resume or rollback.",
    },
    EventKind.sweep_started: {},
    EventKind.sweep_paused: {
        "was": "The sweep's status before it paused.",
        "by": "Who paused it (`coord sweep pause`: COORD_USER, else git's user.email, else "
              "the OS user); null when a wave paused it.",
        "reason": "Why a wave paused it (the criteria it missed).",
        "wave": "The wave that paused it.",
    },
    EventKind.sweep_unpaused: {"paused_for": "Seconds it was paused.",
                               "by": "Who unpaused it (as sweep.paused's by)."},
    EventKind.sweep_rolling_back: {
        "run": "The rollback's run of the sweep.",
        "reason": "What triggered it (coord sweep rollback, the first failure of an "
                  "--atomic sweep, a gate or a wave).",
        "compensate": "How many undo: commands it runs.",
        "retry": "true: it retries a rollback that failed.",
        "not_compensable": "Todos that succeeded and have no undo: (left as they are).",
    },
    EventKind.sweep_finished: {
        "status": "How the run ended: succeeded, failed, rolled_back, rollback_failed...",
        "reason": "Why, in a line (which todos failed or were skipped, the deadline...).",
        "counts": "How many of its todos ended in each status.",
        "run": "Which run of the sweep ended.",
    },
    EventKind.sweep_cancelled: {
        "status": "cancelled.",
        "reason": "Who or what cancelled it (coord sweep cancel, Ctrl-C, a gate's expiry).",
        "run": "Which run of the sweep ended.",
    },
    EventKind.level_done: {
        "level": "The level that ended (0 first).",
        "succeeded": "How many of its todos succeeded.",
        "todos": "How many todos it has.",
    },
    EventKind.todo_queued: {
        "queue": "The queue its message was sent to (<namespace>.repo.<repo>).",
        "via": "What sent it: a level done, an eager predecessor, a wave, the supervisor.",
        "reason": "Why it is queued again (a start given back, its pace's turn).",
        "paced_until": "When its pace lets it start (Unix time), when it must wait for it.",
    },
    EventKind.todo_started: {
        "worker": "The worker that took it, as `coord workers` names it.",
        "fence": "The fence of its repo's lease: a stale holder's writes are refused.",
        "resources": "The shared resources it leased besides its repo, when it has any.",
        "probe": "true: the one todo a half-open circuit breaker lets through.",
    },
    EventKind.todo_retrying: {
        "attempt": "The attempt that failed.",
        "delay": "Seconds before the next attempt (backoff with jitter).",
        "reason": "Why the attempt failed (exit 1, timed out...).",
    },
    EventKind.todo_succeeded: {**_RUN_FIELDS, **_OUTPUTS,
                               "reason": "null for a run; for a gate, who approved it."},
    EventKind.todo_failed: {
        **_RUN_FIELDS,
        "reason": "Why (exit 1, timed out, rejected by a gate's approver, its spec or inputs "
                  "refused, lost too often).",
        "refused": "true: a worker refused to run it (its sweep's spec failed its check).",
        "poison": "true: its runs were lost too often (COORD_MAX_LOST_RUNS): it failed "
                  "without an outcome of its own.",
    },
    EventKind.todo_skipped: dict(_END_REASON),
    EventKind.todo_cancelled: {**_RUN_FIELDS, **_END_REASON},
    EventKind.todo_compensated: dict(_RUN_FIELDS),
    EventKind.todo_compensation_failed: dict(_RUN_FIELDS),
    EventKind.todo_cached: {
        **_RUN_FIELDS, **_OUTPUTS,
        "reason": "Which run it reused (sweep, run, todo and worker).",
        "cached_from": "The run it reused: its sweep_id, run, todo_id and worker.",
    },
    EventKind.todo_lost: {
        "worker": "The worker that held it, when known.",
        "reason": "How it was found lost: lease expired, message lost, stale fence...",
        "lost_runs": "How many of its runs were lost so far, this one included.",
        "queued_for": "Seconds its message had been queued when it was found lost.",
    },
    EventKind.todo_held: {
        "repo": "Its repo.",
        "reason": "Why it is held: the breaker of its repo is open.",
    },
    EventKind.repo_breaker_open: {
        "repo": "The repo.",
        "failures": "The failed or lost todos in a row that opened it.",
    },
    EventKind.repo_breaker_closed: {
        "repo": "The repo.",
        "by": "What closed it: probe (a todo succeeded) or reset (coord repo reset).",
        "was": "Its state before a reset.",
        "failures": "The failures in a row it had before a reset.",
    },
    EventKind.repo_unattended: {
        "repo": "The repo no live worker serves.",
        "waiting_for": "Seconds its todos have been waiting.",
        "todos": "The todos waiting (at most 20).",
        "queued": "How many are waiting.",
        "hint": "How to start a worker for it.",
    },
    EventKind.supervisor_redispatched: {
        "reason": "Why its message was sent again: lease expired, message lost.",
    },
    EventKind.gate_waiting: {
        "needed": "Approvals it needs.",
        "approvals": "Approvals it has already (kept from an earlier opening).",
        "from": "Who may approve (empty: anyone).",
        "on_expiry": "What its expiry does: cancel or rollback.",
        "expires_at": "When it expires (Unix time), when it does.",
    },
    EventKind.gate_approved: {
        "by": "Who approved.",
        "comment": "What they said.",
        "approvals": "Approvals it has now.",
        "needed": "Approvals it needs.",
        "passed": "true: this was the last approval needed.",
    },
    EventKind.gate_rejected: {"by": "Who rejected.", "comment": "What they said."},
    EventKind.gate_expired: {
        "on_expiry": "What it does now: cancel or rollback.",
        "reason": "The gate and how long it waited.",
    },
    EventKind.wave_started: {
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves (0 first).",
        "waves": "How many waves the plan has.",
        "todos": "How many todos it has.",
        "max_parallel": "How many may run at once (0: no cap).",
        "reason": "What started it (the sweep's start, the wave before it done).",
    },
    EventKind.wave_soaking: {
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves.",
        "until": "When the soak ends (Unix time).",
        "soak": "How long it soaks, in seconds.",
        "succeeded": "How many of its todos succeeded.",
        "todos": "How many todos it has.",
    },
    EventKind.wave_done: {
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves.",
        "succeeded": "How many of its todos succeeded.",
        "todos": "How many todos it has.",
        "accepted": "true: it had halted, and the sweep was unpaused, accepting it.",
    },
    EventKind.wave_halted: {
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves.",
        "reason": "The criteria it missed.",
        "action": "What the sweep does: pause, or roll back (--atomic).",
    },
    EventKind.change_prepared: {
        "plan": "The change's plan.",
        "order": "Its repos in landing order, providers first.",
        "unchanged": "Repos with nothing to land (no commit on the branch).",
    },
    EventKind.change_landing: {"plan": "The change's plan.",
                               "order": "Its repos in landing order."},
    EventKind.repo_landed: {
        "plan": "The change's plan.",
        "repo": "The repo that landed.",
        "sha": "The commit its base now points at.",
    },
    EventKind.repo_reverted: {
        "plan": "The change's plan.",
        "repo": "The repo reverted.",
        "sha": "The revert commit.",
        "reason": "Why (a later repo failed to land, coord change revert).",
    },
    EventKind.change_landed: {"plan": "The change's plan.",
                              "order": "Its repos, in the order they landed."},
    EventKind.change_reverted: {
        "plan": "The change's plan.",
        "reason": "Why it was taken out.",
        "state": "How it ended: reverted, or revert_failed (some repos stay landed).",
        "left_landed": "Repos still landed.",
        "wave": "The wave whose landing failed (land: per-wave).",
    },
    EventKind.change_wave_landing: {
        "plan": "The change's plan.",
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves.",
        "repos": "Its repos, in landing order.",
    },
    EventKind.change_wave_soaking: {
        "plan": "The change's plan.",
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves.",
        "until": "When the soak ends (Unix time).",
    },
    EventKind.change_wave_landed: {
        "plan": "The change's plan.",
        "wave": "The wave's name.",
        "index": "Its place in the plan's waves.",
        "repos": "Its repos, landed.",
    },
    EventKind.milestone_completed: {
        "plan": "The milestone's plan.",
        "milestone": "The milestone (MS-n).",
        "title": "Its title.",
        "todos": "The todos it covers, all completed now.",
    },
    EventKind.milestone_reopened: {
        "plan": "The milestone's plan.",
        "milestone": "The milestone (MS-n).",
        "title": "Its title.",
        "todos": "The todos it covers (one or more no longer completed).",
    },
    EventKind.todo_overdue: {
        "repo": "The todo's repo.",
        "due": "Its due time (ISO 8601, UTC).",
        "status": "Its status in the sweep when it was found overdue (no sweep: its status "
                  "in the catalog).",
    },
    EventKind.plan_overdue: {
        "plan": "The plan.",
        "due": "Its due time (ISO 8601, UTC).",
        "left": "How many of the sweep's todos had not ended.",
    },
    EventKind.fleet_frozen: {
        "by": "Who froze it.",
        "reason": "Why (`--reason`; may be empty).",
    },
    EventKind.fleet_unfrozen: {
        "by": "Who unfroze it.",
        "frozen_by": "Who had frozen it.",
        "frozen_for": "Seconds it was frozen.",
    },
    EventKind.schedule_skipped: {
        "plan": "The scheduled plan.",
        "firing": "The latest firing time missed (ISO 8601, in the schedule's zone).",
        "reason": "Why it was skipped.",
    },
    EventKind.schedule_refused: {
        "plan": "The plan the entry names (null: it names none).",
        "entry": "The entry's Redis key.",
        "reason": "Why it was not fired.",
    },
    EventKind.fleet_refrozen: {
        "by": "Who froze it (as the file beside the catalog says).",
        "reason": "Why it was frozen.",
        "file": "The file the freeze was read from.",
    },
    EventKind.commit_status_failed: {
        "repo": "The pushed repo.",
        "sha": "The pushed commit.",
        "context": "The status's name (`coord/<PLAN>`).",
        "state": "The state it was to post: pending, success or failure.",
        "reason": "Why it was not posted (the forge's answer, or its absence).",
    },
}


#: The events that end a run of a sweep.
SWEEP_END_EVENTS = frozenset({EventKind.sweep_finished, EventKind.sweep_cancelled})


def todo_event(status: TodoStatus) -> EventKind:
    """The event a todo's move to ``status`` appends (``todo.<status>``)."""
    return EventKind(f"todo.{status}")


class ChangeState(StrEnum):
    """A change's *stored* state: its ``state`` field in Redis (``Keys.change``), moved
    only by :meth:`coordination.runtime.changes.ChangeStore.write_state` along
    :data:`CHANGE_TRANSITIONS`. A landing ends the change ``landed``, ``reverted``,
    ``revert_failed`` or (``land: per-wave``) ``partially_landed``. What ``coord change
    status`` *says* of a change is its :class:`ChangeHeadline`, computed from this and
    the facts read (:func:`coordination.change.reading.headline`)."""

    landing = "landing"  # (with a reason: its undo is under way)
    landed = "landed"
    reverted = "reverted"
    revert_failed = "revert_failed"
    #: a per-wave landing stopped at a wave that was reverted: the waves before it stay
    #: landed (``coord change revert`` takes them out)
    partially_landed = "partially_landed"
    #: the merge train dropped it: a verify todo failed on it
    failed_verification = "failed_verification"
    #: given up (``coord change abandon``): its pull requests closed, coord's branches
    #: deleted; nothing lands it any more
    abandoned = "abandoned"


class ChangeHeadline(StrEnum):
    """What ``coord change status`` headlines a change as (``state`` of its document):
    its stored :class:`ChangeState`, or one computed from the facts read (never
    stored: nothing moves to them)."""

    landing = "landing"
    landed = "landed"
    reverted = "reverted"
    revert_failed = "revert_failed"
    partially_landed = "partially_landed"
    failed_verification = "failed_verification"
    abandoned = "abandoned"
    drafted = "drafted"  # a repo is not verified on its candidate (or none ran)
    verified = "verified"  # every verify todo passed on the current candidates
    conflict = "conflict"  # a repo's base moved and did not merge into the branch
    #: a landing whose process died half-way (``coord change land`` carries it on)
    interrupted = "interrupted"
    #: a ``coord change revert`` whose process died half-way (``coord change revert``
    #: carries it on): some repos put back, others still landed
    revert_interrupted = "revert_interrupted"
    #: a gate of it was rejected: never headlined ``verified``, and the merge train
    #: verifies it no more
    rejected = "rejected"


class RepoState(StrEnum):
    """A repo's state in a change (``coord change status``: ``repos.<R>.state``): its
    landing step's (as shown), else computed from the facts read."""

    drafted = "drafted"  # a candidate, not verified on it (or never)
    verified = "verified"  # a verify todo ran against its current candidate
    landing = "landing"  # (a revert step under way shows so too)
    landed = "landed"
    reverted = "reverted"
    revert_failed = "revert_failed"
    conflict = "conflict"  # its base moved and did not merge into the branch
    #: its revert pull request is open (``land: pr``; ``coord change revert``)
    reverting = "reverting"


#: How a landing ends.
CHANGE_ENDED = frozenset({ChangeState.landed, ChangeState.reverted, ChangeState.revert_failed,
                          ChangeState.partially_landed, ChangeState.abandoned})

_C = ChangeState
#: Which stored state a change's ``state`` may move to (None: never landed nor
#: dropped). Only :meth:`coordination.runtime.changes.ChangeStore.write_state` writes
#: it, checked against this table. A new landing (``landing``) or the train's drop may
#: follow any stored state; ``landing`` with a reason is its undo under way; a revert
#: refused puts back the state it found (``landed``, ``partially_landed``). Headlines
#: (:class:`ChangeHeadline`) are no states of this table.
CHANGE_TRANSITIONS: dict[ChangeState | None, frozenset[ChangeState]] = {
    # abandoned (coord change abandon): from a change nothing of which is landed
    None: frozenset({_C.landing, _C.failed_verification, _C.abandoned}),
    _C.landing: frozenset({_C.landing, _C.landed, _C.reverted, _C.revert_failed,
                           _C.partially_landed, _C.failed_verification}),
    _C.landed: frozenset({_C.landing, _C.landed, _C.reverted, _C.revert_failed,
                          _C.failed_verification}),
    _C.partially_landed: frozenset({_C.landing, _C.partially_landed, _C.reverted,
                                    _C.revert_failed, _C.failed_verification}),
    # (landed: put back so, its revert carried on again: test_change_revert does)
    _C.reverted: frozenset({_C.landing, _C.landed, _C.reverted, _C.failed_verification,
                            _C.abandoned}),
    # its revert refused: landed again as it was
    _C.revert_failed: frozenset({_C.landing, _C.landed, _C.reverted, _C.revert_failed,
                                 _C.failed_verification}),
    _C.failed_verification: frozenset({_C.landing, _C.failed_verification, _C.abandoned}),
    # given up: abandoning it again finishes what a first try left (a forge down)
    _C.abandoned: frozenset({_C.abandoned}),
}
#: The states a change's ``state`` field holds (what the table moves to).
CHANGE_STORED = frozenset().union(*CHANGE_TRANSITIONS.values())


class StepState(StrEnum):
    """A repo's step in the change's last landing or revert (``step:<R>``'s ``state``),
    moved only by :meth:`coordination.runtime.changes.ChangeStore.step` along
    :data:`STEP_TRANSITIONS`."""

    landing = "landing"  # its landing began (or, with ``reland``: its landing again)
    landed = "landed"
    reverting = "reverting"  # its revert is made and being pushed (or its revert PR open)
    reverted = "reverted"
    revert_failed = "revert_failed"  # left landed: its revert refused or not made
    not_landed = "not_landed"  # its landing began but never landed (refused)


_S = StepState
#: Which state a repo's step may move to (None: no step yet: a new landing removes
#: them all). Only :meth:`coordination.runtime.changes.ChangeStore.step` writes one,
#: checked against this table (a step state this version does not know moves as no
#: step does). The moves, as the code makes them:
#:
#: - a landing (push, command, ``land: pr``) and one carried on: none -> landing ->
#:   landed; a step begun before is landed, or begun again; a refused pull request:
#:   not_landed (taken up again when the landing is carried on);
#: - its undo (the landing stopped): landing, landed, reverting or revert_failed ->
#:   reverting -> reverted, or revert_failed (left landed), or not_landed (nothing of
#:   it on the remote);
#: - ``coord change revert`` (push, command, ``land: pr``'s revert pull request):
#:   landed or revert_failed -> reverting -> reverted, or landed again (the revert
#:   refused); a revert made by hand already: reverted; landing it again over a
#:   refused revert: reverted -> landing (``reland``) -> landed, or reverted again.
STEP_TRANSITIONS: dict[StepState | None, frozenset[StepState]] = {
    None: frozenset({_S.landing, _S.not_landed}),
    _S.landing: frozenset({_S.landing, _S.landed, _S.not_landed, _S.reverting, _S.reverted,
                           _S.revert_failed}),
    _S.landed: frozenset({_S.landing, _S.landed, _S.reverting, _S.reverted, _S.revert_failed,
                          _S.not_landed}),
    _S.not_landed: frozenset({_S.landing, _S.landed, _S.not_landed}),
    _S.reverting: frozenset({_S.reverting, _S.reverted, _S.revert_failed, _S.landed,
                             _S.not_landed}),
    _S.reverted: frozenset({_S.landing}),
    _S.revert_failed: frozenset({_S.reverting, _S.reverted, _S.revert_failed, _S.not_landed}),
}


class UnknownStatus(ValueError):
    """A record holds a status this version does not know: an error, never a guess."""


def todo_status(value: object) -> TodoStatus:
    try:
        return TodoStatus(str(value))
    except ValueError:
        raise UnknownStatus(f"unknown todo status {value!r}") from None


def sweep_status(value: object) -> SweepStatus:
    try:
        return SweepStatus(str(value))
    except ValueError:
        raise UnknownStatus(f"unknown sweep status {value!r}") from None


def lua_preamble() -> str:
    """Lua tables of the statuses above, put in front of every script.

    ``TS.<name>`` / ``SS.<name>`` spell a todo / sweep status; ``TERMINAL``,
    ``UNSUCCESSFUL``, ``NOT_STARTED``, ``ATTENTION``, ``SWEEP_ACTIVE``, ``SWEEP_LIVE`` are sets;
    ``TODO_NEXT[old][new]`` is the transition table; ``EV.<name>`` an event kind;
    ``BS.<name>`` a breaker state.
    ``todo_known(s)`` raises a script error naming an unknown status.
    """

    def table(name: str, members: dict[str, str]) -> str:
        body = ", ".join(f"{k} = {_lua_str(v)}" for k, v in sorted(members.items()))
        return f"local {name} = {{{body}}}"

    def members(values: frozenset[TodoStatus] | frozenset[SweepStatus]) -> str:
        return ", ".join(f"[{_lua_str(v)}] = true" for v in sorted(values))

    lines = [
        "-- Generated from coordination/status.py (lua_preamble): do not spell statuses in Lua.",
        table("TS", {s.name: s.value for s in TodoStatus}),
        table("SS", {s.name: s.value for s in SweepStatus}),
        table("EV", {e.name: e.value for e in EventKind}),
        table("BS", {b.name: b.value for b in BreakerState}),
        f"local TERMINAL = {{{members(TERMINAL)}}}",
        f"local SUCCESSFUL = {{{members(SUCCESSFUL)}}}",
        f"local UNSUCCESSFUL = {{{members(UNSUCCESSFUL)}}}",
        f"local NOT_STARTED = {{{members(NOT_STARTED)}}}",
        f"local ATTENTION = {{{members(ATTENTION)}}}",
        f"local SWEEP_ACTIVE = {{{members(SWEEP_ACTIVE)}}}",
        f"local SWEEP_LIVE = {{{members(SWEEP_LIVE)}}}",
        "local TODO_NEXT = {"
        + ", ".join(f"[{_lua_str(old)}] = {{{members(new)}}}" for old, new in TODO_TRANSITIONS.items())
        + "}",
        "local function todo_known(s)",
        "  if s ~= nil and TODO_NEXT[s] == nil then",
        "    error('unknown todo status ' .. tostring(s) .. ' (a newer coord wrote it?)')",
        "  end",
        "  return s",
        "end",
    ]
    return "\n".join(lines) + "\n"


def _lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
