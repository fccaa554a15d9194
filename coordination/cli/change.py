"""`coord change status|land|queue`: a plan that lands a cross-repo change."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click

from coordination.change.pulls.forges import ChangeForges
from coordination.change.landing import NOT_READY, Lander, Prepared
from coordination.change.model import ChangePlan, change_of
from coordination.change.reading import status_document, summary
from coordination.change.rule import unchecked
from coordination.change.train import run_train
from coordination.cli.change_state import carried, kept
from coordination.cli.change_verify import verify_with_sweep
from coordination.catalog.selection.templates import planned_for
from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context, print_json, say, table
from coordination.errors import ChangeNotReady, LandingFailed
from coordination.runtime.context import Runtime, get_runtime
from coordination.status import CHANGE_ENDED
from coordination.sweeps.governance.forge_reviews import count_reviews, views_for_votes
from coordination.status import ChangeState as CS


def _change(obj: Context, plan_id: str) -> tuple[ChangePlan, dict[str, int]]:
    store = obj.manager.store
    # templates: their instances' repos, as a sweep's (refused for this plan's
    # template that selects nothing now, never for another plan's)
    catalog = planned_for(store.path, plan_id)[1]
    return (change_of(catalog, plan_id, store.base_dir),
            {r.name: r.concurrency for r in catalog.repos})


def _runtime(obj: Context) -> Runtime:
    return get_runtime(Path(obj.file))


@click.group()
def change() -> None:
    """Cross-repo changes: status, publish, land, queue, revert, abandon, prune (a branch
    per repo, verified together, landed all or none; through pull requests with land: pr).

    \b
    Examples:
      coord plan sweep PLAN-004 --wait       # edits, commits and verify todos
      coord change status PLAN-004
      coord change publish PLAN-004          # land: pr: a pull request per repo
      coord change land PLAN-004 --wait
    """


#: The most repos (and blockers) the human status lists without --all.
SHOWN = 50


#: The most verify todos (and gates) the human status lists one a line without --all;
#: more (a template's instances) are counted by verdict.
VERDICTS_SHOWN = 10


def _verdicts(docs: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in docs.values():
        out[v["verdict"]] = out.get(v["verdict"], 0) + 1
    return out


def _counts(states: dict[str, int]) -> str:
    return ", ".join(f"{s} {n}" for s, n in states.items()) or "none"


@change.command()
@click.argument("plan_id", metavar="PLAN")
@click.option("--all", "show_all", is_flag=True,
              help="List every repo (else: counts by state, then the repos that need attention).")
@click.option("--ask-remotes", is_flag=True,
              help="Ask each network remote for its base now (git ls-remote, as land "
              "--dry-run does); a remote on this machine is always read. The change's "
              "freshness anchors on the remotes are read too.")
@json_and_context
def status(obj: Context, plan_id: str, show_all: bool, ask_remotes: bool,
           as_json: bool) -> None:
    """How many repos are in each state (per wave too, for land: per-wave), then the
    repos that need attention (not verified, conflict, revert failed, named by a
    blocker; a wave's repos put back when the landing stopped) with base, candidate
    (its worktree's HEAD now), verified by, landed, state; per verify todo and gate
    its verdict on the current candidates (more than 10, a template's instances:
    counts by verdict); and whether the change may land, with every reason it may
    not, the same as land --dry-run's: landed or reverted already, a base that moved
    on its remote. A remote on this machine is read from its files; a network one
    only with --ask-remotes (else the status says it was not asked). A pull
    request whose base takes no direct merge says "through the merge queue" (GitHub:
    a ruleset's merge_queue rule) or "through the merge train" (GitLab: the project
    runs merge trains), with its entry's state once queued (--json: pr.merge_queue,
    its kind, state and position); an open revert pull request says so too (--json:
    revert_pr.merge_queue). --all lists every repo and verdict; --json gives
    everything.

    \b
    Example:
      coord change status PLAN-004
      coord change status PLAN-004 --all
      coord change status PLAN-004 --json | jq '.repos[] | {repo, state}'
      coord change status PLAN-004 --json | jq '.blockers'
    """
    store = obj.manager.store
    catalog = planned_for(store.path, plan_id)[1]
    rt = _runtime(obj)
    carried(obj, rt, plan_id)
    counted_reviews(obj, rt, change_of(catalog, plan_id, store.base_dir))
    doc = status_document(rt, catalog, store.base_dir, plan_id, ask_remotes=ask_remotes)
    emit(as_json, doc, lambda d: show_status(d, show_all))


def counted_reviews(obj: Context, rt: Runtime, cp: ChangePlan) -> None:
    """A ``gate: {forge_reviews: true}`` waiting in the plan's last sweep: its pull
    request's approvals on the verified head cast as votes (said on stderr)."""
    if not any((cp.gate_specs.get(g) or {}).get("forge_reviews") for g in cp.gates):
        return
    st = rt.changes.read(cp.plan)
    if not st.pulls and not st.refused_pulls:
        return
    views = views_for_votes(rt, cp, st, ChangeForges(cp))
    for c in count_reviews(rt, Path(obj.file), cp, views):
        if not c["who"]:  # a record refused (not sealed by coord): no vote from it
            err_console().print(f"gate {esc(c['gate'])}: {esc(str(c['error']))}")
            continue
        err_console().print(f"gate {esc(c['gate'])}: {esc(c['who'])}'s approval of "
                            f"{esc(c['pr'])} " + (f"counted ({c['status']})" if not c["error"]
                                                  else f"does not count: {esc(c['error'])}"))


def show_status(d: Any, show_all: bool = False) -> None:
    """The human ``change status``: counts by state (per wave), the repos that need
    attention (at most :data:`SHOWN`; ``show_all``: every repo), verdicts, blockers."""
    say(f"{esc(d['plan'])} ({esc(d['branch'])}, land: {d['land']}): {d['state']}"
        + (f" - {esc(d['reason'])}" if d["reason"] else ""))
    if d.get("frozen"):
        f = d["frozen"]
        say(f"[red]the fleet is frozen[/red] by {esc(f['by'])} at {esc(f['at'])}"
            + (f": {esc(f['reason'])}" if f["reason"] else "")
            + " - `change land` is refused until `coord unfreeze`")
    sm = summary(d)
    say(f"repos: {sm['repos']} - {_counts(sm['states'])}")
    for i, w in enumerate(sm["waves"]):
        say(f"  wave {i + 1} {esc(w['name'])} ({w['repos']}): {_counts(w['states'])}")
    rows = list(d["repos"].values()) if show_all else sm["attention"]
    if not show_all:
        say(f"needs attention: {len(rows)}" if rows else "needs attention: none")
    if rows:
        table(None, ["#", "repo", "base", "candidate", "verified by", "landed", "state",
                     "why"],
              [(r["order"], esc(r["repo"]), f"{esc(r['base'])} {(r['base_sha'] or '')[:10]}",
                (r["candidate"] or "")[:10], esc(", ".join(r["verified_by"])),
                (r["landed"] or "")[:10], r["state"], esc(r["why"] or ""))
               for r in (rows if show_all else rows[:SHOWN])])
    if not show_all and len(rows) > SHOWN:
        say(f"... and {len(rows) - SHOWN} more (--all lists every repo, --json gives all)")
    if show_all or len(d["verify"]) <= VERDICTS_SHOWN:
        for tid, v in d["verify"].items():
            say(f"verify {esc(tid)}: {v['verdict']}" + (f" - {esc(v['why'])}" if v["why"] else ""))
    else:  # a verify template's instances: counts (each one not passed is a blocker below)
        say(f"verify: {len(d['verify'])} todos - {_counts(_verdicts(d['verify']))}")
    if show_all or len(d["gates"]) <= VERDICTS_SHOWN:
        for tid, v in d["gates"].items():
            say(f"gate {esc(tid)}: {v['verdict']}"
                + (f" ({esc(', '.join(v['approvals']))})" if v["approvals"] else "")
                + (f" - {esc(v['why'])}" if v["why"] else ""))
    else:
        say(f"gates: {len(d['gates'])} todos - {_counts(_verdicts(d['gates']))}")
    _say_pulls(d)
    unasked = [r["repo"] for r in d["repos"].values()
               if r.get("base_now") and not r["base_now"]["checked"]]
    if unasked:
        say(f"bases not checked on their remotes: {esc(', '.join(unasked[:SHOWN]))}"
            + (f" and {len(unasked) - SHOWN} more" if len(unasked) > SHOWN else "")
            + " (--ask-remotes asks them, as land --dry-run does)")
    _say_unchecked(d.get("unchecked") or [])
    for repo, p in (d.get("prepare") or {}).items():
        tail = [ln for ln in str(p.get("output") or "").splitlines() if ln.strip()]
        say(f"prepare {esc(repo)}: " + ("ok" if p.get("ok") else "failed")
            + (f" (exit {p['exit_code']})" if p.get("exit_code") not in (None, 0) else "")
            + (f" - {esc(tail[-1].strip()[:200])}" if tail else ""))
    say("landable" if d["landable"] else "not landable:")
    _say_blockers(d["blockers"], None if show_all else SHOWN)


def _say_pulls(d: Any) -> None:
    """Each repo's pull request as its forge says it: state, reviews, required checks,
    mergeable (and when it was read)."""
    pulls = [(r["repo"], r["pr"]) for r in d["repos"].values() if r.get("pr")]
    for repo, pr in pulls[:SHOWN]:
        head = f"pull request {esc(repo)}: #{pr['number']} {esc(pr['url'])}"
        if pr.get("error"):
            say(f"{head} - {esc(pr['error'])}")
            continue
        rv, ck = pr.get("reviews") or {}, pr.get("checks") or {}
        approved = rv.get("approved_by") or []
        req = rv.get("required")
        said = [str(pr["state"]) + (" (draft)" if pr.get("draft") else ""),
                f"approvals {len(approved)}" + (f"/{req}" if req is not None else "")
                + (f" ({esc(', '.join(approved))})" if approved else ""),
                f"checks {ck.get('state') or 'none'}",
                "mergeable" if pr.get("mergeable") else "not mergeable"]
        if pr.get("merge_queue") is not None and pr.get("state") == "open":
            said.append(_queue_words(pr["merge_queue"]))  # (merged or closed: past its queue)
        say(f"{head}: " + ", ".join(said)
            + (f" [{pr['source']}{', cached' if pr.get('cached') else ''}]"
               if pr.get("source") else ""))
        for b in pr.get("blockers") or []:
            say(f"  {b['kind']}: {esc(b['detail'])}")
    if len(pulls) > SHOWN:
        say(f"... and {len(pulls) - SHOWN} more pull requests (--json gives all)")
    reverts = [(r["repo"], r["revert_pr"]) for r in d["repos"].values()
               if r.get("revert_pr") and r["state"] == "reverting"]
    for repo, pr in reverts[:SHOWN]:  # (open: coord change revert merges each)
        queue = (pr.get("merge_queue") or {}).get("kind")
        say(f"revert pull request {esc(repo)}: #{pr['number']} {esc(pr['url'])}"
            + (f": {_through(queue)}" if queue else ""))


def _queue_words(q: dict[str, Any]) -> str:
    """A pull request whose base requires a merge queue (GitLab: a merge train):
    ``land`` adds it there (its entry's state and position once it is queued)."""
    name = _through(q.get("kind"))
    if q.get("state"):
        return (f"{name} ({str(q['state']).lower()}"
                + (f", position {q['position']}" if q.get("position") else "") + ")")
    return f"{name} (not queued yet)"


def _through(kind: object) -> str:
    """How a landing through the forge's queue of ``kind`` is said (a manifest of
    before the kind was kept says True: GitHub's queue)."""
    return "through the merge train" if kind == "merge_train" else "through the merge queue"


def _say_unchecked(repos: list[str]) -> None:
    if repos:
        say(f"not checked by a verify todo of its own: {esc(', '.join(repos[:SHOWN]))}"
            + (f" and {len(repos) - SHOWN} more" if len(repos) > SHOWN else "")
            + " (change: {require_own_verify: true} makes each a blocker)")


def _say_blockers(blockers: list[dict[str, str]], most: int | None = None) -> None:
    for b in blockers[:most]:
        say(f"  {b['kind']} {esc(b['id'])}: {esc(b['why'])}")
    if most is not None and len(blockers) > most:
        say(f"  ... and {len(blockers) - most} more (--all, --json)")


@change.command()
@click.argument("plan_id", metavar="PLAN")
@click.option("--dry-run", is_flag=True, help="Say what prepare finds and the order; change nothing.")
@click.option("--wait", is_flag=True,
              help="Return when the landing ended (it always runs in this process).")
@json_and_context
def land(obj: Context, plan_id: str, dry_run: bool, wait: bool, as_json: bool) -> None:
    """Land a verified change: prepare (the landing rule: every verify todo passed on
    the current candidates, every gate approved, nothing of the plan's last sweep
    failed; bases unchanged; a signed manifest), then each repo in dependency order;
    on a failure, revert what landed. A repo whose branch has no commit (a template's run
    changed nothing there) has nothing to land: it is left out and named (unchanged).

    --dry-run lists every blocker (which verify todo, which gate, which repo moved)
    and exits 1 when there is one (--json: a document with "blockers").

    land: pr merges each repo's pull request (coord change publish opens them)
    through its forge, providers first, only when the forge says it is mergeable
    (reviews, required checks, no conflict: --dry-run names each missing review,
    failing check or conflict per pull request) and pinned to the head coord
    verified (a head that moved is refused, never merged). A merge refused mid-way
    stops the landing partially_landed, naming the pull request and the forge's
    reason; coord change revert opens revert pull requests for what merged.

    A base that takes no direct merge lands through its forge's queue: a GitHub merge
    queue (a ruleset's merge_queue rule: the pull request enqueued, pinned to the
    verified head) or a GitLab merge train (the merge request added with auto-merge,
    pinned by sha), a consumer only once its providers merged; land waits for each
    (run it again to carry on), and one the queue removes unmerged stops the landing
    partially_landed. --dry-run says "through the merge queue" or "through the merge
    train" per repo (--json: manifest.repos[].merge_queue, the kind).

    A landing killed half-way is carried on by running this again: each step is
    recognised on the remote by its SHA, nothing is pushed twice. Exit 1 when the
    change is not ready (each reason printed) or the landing was reverted.

    \b
    Examples:
      coord change land PLAN-004 --dry-run
      coord change land PLAN-004 --wait --json
    """
    cp, concurrency = _change(obj, plan_id)
    rt = _runtime(obj)
    carried(obj, rt, plan_id)
    if not dry_run:
        counted_reviews(obj, rt, cp)
    lander = Lander(rt, cp, concurrency=concurrency)
    prep = lander.prepare(dry_run=dry_run)
    own = unchecked(cp, rt.changes.read(plan_id))  # flagged (a blocker when required)
    if not prep.ok:
        _refuse_not_ready(cp, prep, own, dry_run, as_json)
    assert prep.manifest is not None
    if dry_run:
        emit(as_json, {"plan": plan_id, "dry_run": True, "landable": True, "blockers": [],
                       "manifest": prep.manifest, "unchecked": own},
             lambda d: _say_ready(plan_id, d))
        return
    if not as_json:
        _say_landing_starts(plan_id, prep)
    result = lander.commit(prep.manifest).document()
    kept(obj, rt, plan_id)
    _audit_landing(obj, rt, result)
    emit(as_json, result, lambda d: _say_landed(plan_id, d))
    if result["state"] != CS.landed:
        raise LandingFailed(f"{plan_id} {result['state']}: {result['reason']}")


def _refuse_not_ready(cp: ChangePlan, prep: Prepared, own: list[str], dry_run: bool,
                      as_json: bool) -> NoReturn:
    """Prepare found blockers: each said (--json: the document), then exit 1."""
    plan_id = cp.plan
    if as_json:
        print_json({"plan": plan_id, "state": NOT_READY, "dry_run": dry_run,
                    "landable": False, "problems": prep.problems,
                    "blockers": [b.document() for b in prep.blockers], "unchecked": own})
    elif own and not cp.require_own_verify:
        err_console().print(f"not checked by a verify todo of its own: "
                            f"{esc(', '.join(own))}")
    raise ChangeNotReady(f"{plan_id} is not ready to land:\n  " + "\n  ".join(
        f"{b.kind} {b}" for b in prep.blockers))


def _say_ready(plan_id: str, d: dict[str, Any]) -> None:
    """``land --dry-run``: what would land, in which order (a fleet: by wave)."""
    repos, waves = d["manifest"]["repos"], d["manifest"].get("waves", [])
    if len(repos) <= VERDICTS_SHOWN:
        say(f"{esc(plan_id)} is ready: would land " + esc(" -> ".join(
            f"{r['repo']} ({r['candidate'][:10]} on {r['base']} {r['base_sha'][:10]}"
            + (f", {_through(r['merge_queue'])}" if r.get("merge_queue") else "") + ")"
            for r in repos)))
    elif waves:  # a template's fleet: the names, by wave (--json: every SHA)
        say(f"{esc(plan_id)} is ready: would land {len(repos)} repos in {len(waves)} "
            "waves, providers first (--json: each candidate and base)")
    else:
        say(f"{esc(plan_id)} is ready: would land {len(repos)} repos, providers first "
            "(--json: each candidate and base): "
            + esc(", ".join(r["repo"] for r in repos)))
    for kind in ("merge_queue", "merge_train"):
        queued = [r["repo"] for r in repos if r.get("merge_queue")
                  and (r["merge_queue"] == "merge_train") == (kind == "merge_train")]
        if queued and len(repos) > VERDICTS_SHOWN:
            say(f"{_through(kind)} (enqueued, not merged): " + esc(", ".join(queued)))
    for i, w in enumerate(waves):
        say(f"  wave {i + 1} {esc(w['name'])}: {esc(', '.join(w['repos']))}"
            + (f", then soak {w['soak']:g}s" if w["soak"] else ""))
    _say_unchanged(d["manifest"].get("unchanged") or [])
    _say_unchecked(d["unchecked"])


def _say_landing_starts(plan_id: str, prep: Prepared) -> None:
    """On stderr: a landing carried on, and the waves it lands in."""
    assert prep.manifest is not None
    if prep.resumed:
        err_console().print(f"{esc(plan_id)}: carrying on the landing under way")
    if prep.manifest.get("waves"):
        err_console().print(f"{esc(plan_id)}: landing in waves: " + ", then ".join(
            f"{esc(w['name'])} ({len(w['repos'])} repos" + (f", soak {w['soak']:g}s)" if w["soak"]
                                                      else ")")
            for w in prep.manifest["waves"]))


def _say_landed(plan_id: str, d: dict[str, Any]) -> None:
    """How the landing ended: each wave, then the change."""
    for w in d.get("waves", []):
        say(f"wave {esc(w['name'])} ({esc(', '.join(w['repos']))}): {w['state']}")
    say(f"{esc(plan_id)}: {d['state']}" + (f" - {esc(d['reason'])}" if d["reason"] else "")
        + (f" (landed: {esc(', '.join(d['landed']))})" if d["landed"] else ""))
    _say_unchanged(d["unchanged"])


def _audit_landing(obj: Context, rt: Runtime, result: dict[str, Any],
                   via: str = "change land") -> None:
    """A landing that pushed, in the catalog's audit log (and so in `coord history`):
    who, when, the plan, how it ended and each repo's landed SHA (``landed_shas``; for
    one that was reverted, what landed before its undo)."""
    from coordination.catalog.audit import log as audit  # lazy: only a landing writes it

    plan = str(result["plan"])
    steps = rt.changes.read(plan).steps
    shas = {r: str(s.landed) for r, s in steps.items() if s.landed}
    store = obj.manager.store
    try:
        store.record_decision(who=audit.who(Path(obj.file).resolve().parent),
                              op="change.land", ids=[plan],
                              decision={**result, "landed_shas": shas, "via": via})
    except Exception as exc:  # noqa: BLE001 - the landing stands (events, Redis): say it
        err_console().print(f"[yellow]warning:[/yellow] the landing of {esc(plan)} is not "
                            f"in the audit log: {esc(exc)}")


def _say_unchanged(repos: list[str]) -> None:
    if repos:
        say(f"unchanged (no commit on the branch, nothing to land): {esc(', '.join(repos))}")


@change.command()
@click.argument("plan_ids", metavar="[PLAN...]", nargs=-1)
@click.option("--land", "run", is_flag=True,
              help="Run the train: verify each change on those ahead, land it, go on.")
@json_and_context
def queue(obj: Context, plan_ids: tuple[str, ...], run: bool, as_json: bool) -> None:
    """The merge train: queue changes (in the order given), list it, run it.

    Each change verifies on top of the candidates of the changes ahead of it; one
    that fails verification or landing leaves the train, and those behind it
    verify again without it.

    \b
    Examples:
      coord change queue PLAN-004 PLAN-005 PLAN-006
      coord change queue --land --json
    """
    for p in plan_ids:
        _change(obj, p)  # each must be a change: refused before anything is queued
    rt = _runtime(obj)
    train = rt.changes.enqueue(list(plan_ids)) if plan_ids else rt.changes.train()
    if not run:
        emit(as_json, {"train": train}, lambda d: say(
            esc(" -> ".join(d["train"])) if d["train"] else "the train is empty"))
        return
    results = run_train(rt, lambda p: _change(obj, p), verify_with_sweep(obj.file))
    for r in results:
        if r["state"] in CHANGE_ENDED:
            kept(obj, rt, str(r["plan"]))
            _audit_landing(obj, rt, r, via="change queue --land")

    def human(d: dict[str, Any]) -> None:
        for r in d["results"]:
            say(f"{esc(r['plan'])}: {r['state']}"
                + (f" - {esc(r['reason'])}" if r.get("reason") else ""))

    emit(as_json, {"results": results, "train": rt.changes.train()}, human)
    if any(r["state"] != CS.landed for r in results):
        raise SystemExit(1)


@change.command()
@click.argument("plan_id", metavar="[PLAN]", required=False)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--force", is_flag=True,
              help="Also remove a branch with commits on no remote, a worktree with "
                   "uncommitted changes, and a change whose state no sealed landing "
                   "record backs (one landed before 0.7).")
@json_and_context
def prune(obj: Context, plan_id: str | None, dry_run: bool, force: bool,
          as_json: bool) -> None:
    """Remove the worktrees and local branches of finished changes (landed or reverted,
    nothing under way, not in the train): PLAN's, or every change plan's of the
    catalog. An unfinished change's are never removed (each says why). Ended is what
    the change's sealed landing record says, never its state alone; and without
    --force a branch with commits on no head of its remote, or a worktree with
    uncommitted changes, is kept (named). A landed change pruned can still be
    reverted: coord change revert makes the worktrees it needs.

    \b
    Examples:
      coord change prune --dry-run
      coord change prune PLAN-004 --json
      coord change prune PLAN-004 --force
    """
    from coordination.change.prune import prune as prune_change  # lazy: only prune

    from coordination.catalog.selection.templates import load_planned  # lazy: only prune

    store = obj.manager.store
    plans = [plan_id] if plan_id else [p.id for p in load_planned(
        store.path, problems={})[1].coordination.plans if p.change is not None]
    rt = _runtime(obj)
    out = []
    for p in plans:
        carried(obj, rt, p)
        cp, _ = _change(obj, p)
        why, repos = prune_change(rt, cp, dry_run=dry_run, force=force)
        out.append({"plan": p, "finished": why is None, "why": why,
                    "repos": [r.document() for r in repos]})

    def human(d: dict[str, Any]) -> None:
        for c in d["changes"]:
            if c["why"]:
                say(f"{esc(c['plan'])}: kept - {esc(c['why'])}")
                continue
            done = [r["repo"] for r in c["repos"] if r["action"] in ("removed", "would_remove")]
            verb = "would remove" if d["dry_run"] else "removed"
            say(f"{esc(c['plan'])}: " + (f"{verb} the worktree and branch "
                                          f"{esc(c['repos'][0]['branch'])} of "
                                          f"{esc(', '.join(done))}" if done
                                          else "nothing left to remove"))
            for r in c["repos"]:  # each path (git's list of the checkout's worktrees)
                for path in r.get("paths") or []:
                    say(f"  {esc(r['repo'])}: {verb} {esc(path)}")
                if r.get("why"):
                    err_console().print(f"  {esc(r['repo'])}: {esc(r['why'])}")

    emit(as_json, {"dry_run": dry_run, "changes": out}, human)


from coordination.cli.change_abandon import abandon as _abandon  # noqa: E402
from coordination.cli.change_publish import publish as _publish  # noqa: E402
from coordination.cli.change_revert import revert as _revert  # noqa: E402 - `change revert`

change.add_command(_revert)
change.add_command(_abandon)
change.add_command(_publish)
