"""Cross-repo changes: a branch per repo, verified together, landed all or none.

A plan with ``change:`` runs its todos in a worktree of the change branch of each
repo (never in the user's checkout); its ``commit:`` todos commit there, its
``verify:`` todos run against every repo's candidate (the candidate set).
``coord change land`` lands the candidates in dependency order, and puts back
what it landed when a step fails; it lands only what the landing rule allows.

    model.py      the change of a plan as the catalog says it (pure)
    git.py        the git commands coord runs (subprocess; no state)
    worktrees.py  one worktree per repo and branch, created from the base, reused
    todos.py      a worker's side: the todo's cwd and env, its commit, its candidate,
                  a verify todo's end recorded (sealed) on the set it ran on
    rule.py       the landing rule: landable or not, and every blocker (one function,
                  ``judge``, its checks in one ordered tuple: land, --dry-run, the
                  train and status all call it)
    landing_evidence.py  what the rule reads, read once (the sweep's spec parsed once)
    verify_verdicts.py   each verify todo's verdict on the candidate set judged
    gate_verdicts.py     each gate's verdict in the plan's last sweep
    run_outcomes.py      the plan's last run: every todo it ran ended, and not failed
    blockers.py          a reason a change may not land, as the rule tells it
    reading.py    ``coord change status``: the status document (CLI, web view, MCP)
    anchor.py     which sweep of a plan is the newest, kept outside Redis (beside the
                  catalog, on the remotes): a pointer put back in Redis is a replay
    landing.py    prepare, commit, undo, resume (the manifest in Redis)
    revert.py     ``coord change revert``: a landed change taken back out, consumers first
    train.py      the merge train: changes verified on top of those ahead
    pulls/        a change's pull requests at its forges: land: pr, publish, revert,
                  the forge's webhook events

Layer: above the runtime (its state is in Redis through
:mod:`coordination.runtime.changes`), below dispatch: workers use it.
"""
