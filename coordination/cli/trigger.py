"""`coord trigger push`: start the plans a push starts (``on: {push: ...}``), for CI
without a forge webhook (the webhook calls the same :func:`coordination.firing.on_push`)."""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context, say
from coordination.errors import UsageError

#: A commit's name as git writes it (abbreviated or whole, SHA-1 or SHA-256).
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


@click.group()
def trigger() -> None:
    """Start the plans an event starts (`on:` on a plan): push.

    \b
    Examples:
      coord trigger push --repo api --ref 3f2c1e9
    """


@trigger.command()
@click.option("--repo", required=True, help="The repo pushed to (a catalog repo's name).")
@click.option("--ref", "sha", required=True, metavar="SHA", help="The commit pushed.")
@click.option("--branch", default=None,
              help="The branch pushed to; default the repo's default_branch (else main).")
@click.option("--wait", is_flag=True, help="Follow the sweeps started to their end; exit 1 "
              "unless each succeeded.")
@click.option("--dry-run", is_flag=True, help="Start nothing: print each plan the push would "
              "start, the todos of its scope by level, or why its start would be refused.")
@json_and_context
def push(obj: Context, repo: str, sha: str, branch: str | None, wait: bool, dry_run: bool,
         as_json: bool) -> None:
    """A push of SHA to REPO's branch: start every plan whose `on: {push: {repos, branch}}`
    matches (its selector selects REPO, on that branch), each as `coord plan sweep PLAN
    --again` would but for the plan's todos of REPO only and, when the selector has a
    dependents form (`...R`), of the repos that depend on REPO (the sweep's scope); named
    `push` (repo, branch, SHA, the scope's repos) in its record and the audit log. A plan
    with no todo in the scope is not started. A push no plan matches starts nothing and
    exits 0, saying which plans did not match and why; an unknown repo exits 2; a start
    refused (a frozen fleet, a todo of the scope waiting for one outside it that is not
    completed) exits 1. --dry-run starts and writes nothing: each plan that would start,
    its scope's todos by level, or why its start would be refused (exit 1, as then).

    \b
    Examples:
      coord trigger push --repo api --ref "$CI_COMMIT_SHA"
      coord trigger push --repo core --ref 3f2c1e9 --branch main --wait --json
      coord trigger push --repo api --ref 3f2c1e9 --dry-run
    """
    if not SHA.match(sha):
        raise UsageError(f"--ref {sha!r} is not a commit's SHA",
                         hint="pass the pushed commit, e.g. --ref \"$(git rev-parse HEAD)\"")
    if dry_run:
        if wait:
            raise UsageError("--dry-run starts nothing to --wait for",
                             hint="drop --wait, or --dry-run")
        _preview(obj, repo, branch, sha, as_json)
        return
    from coordination.firing import on_push  # lazy: the send path

    plans, started = on_push(obj.file, repo, branch, sha)
    doc: dict[str, object] = {
        "repo": repo, "branch": plans.branch, "sha": sha,
        "started": [s.document() for s in started],
        "unmatched": [{"plan": p, "why": why} for p, why in plans.unmatched]}
    failed = any(s.error for s in started)
    if wait and not failed:
        ended = _follow([s.sweep_id for s in started if s.sweep_id], obj, as_json)
        doc["ended"] = ended
        failed = any(e["status"] != "succeeded" for e in ended)
    emit(as_json, doc, _human)
    if failed:
        sys.exit(1)


def _preview(obj: Context, repo: str, branch: str | None, sha: str, as_json: bool) -> None:
    """--dry-run: what the push would start (see :func:`coordination.firing.preview_push`)."""
    from coordination.firing import preview_push  # lazy: the planner

    plans, previews = preview_push(obj.file, repo, branch, sha)
    doc: dict[str, object] = {
        "repo": repo, "branch": plans.branch, "sha": sha, "dry_run": True,
        "would_start": [p.document() for p in previews],
        "unmatched": [{"plan": p, "why": why} for p, why in plans.unmatched]}
    emit(as_json, doc, _preview_human)
    if any(p.error for p in previews):
        sys.exit(1)


def _listed(d: dict[str, object], name: str) -> list[Any]:
    """A list of the document (none when it is not one)."""
    got = d.get(name)
    return got if isinstance(got, list) else []


def _where(d: dict[str, object]) -> str:
    """The push a document is about: ``api main at 3f2c1e9``."""
    return f"{esc(str(d['repo']))} {esc(str(d['branch']))} at {esc(str(d['sha']))}"


def _preview_human(d: dict[str, object]) -> None:
    would, where = _listed(d, "would_start"), _where(d)
    if not would:
        say(f"no plan's push trigger matches a push to {where}: nothing would start")
    for w in would:
        repos = ", ".join(map(str, w["repos"] or []))
        if w.get("error"):
            say(f"{esc(w['plan'])}: would be refused: {esc(w['error'])}")
            continue
        say(f"{esc(w['plan'])}: would start {w['todos']} todo(s) of {esc(repos)} "
            f"(push to {where}), in {len(w['levels'])} level(s):")
        for n, level in enumerate(w["levels"], 1):
            say(f"  {n}. {esc(', '.join(level))}")
    for u in _listed(d, "unmatched"):
        say(f"[dim]{esc(u['plan'])}: would not start: {esc(u['why'])}[/dim]")


def _follow(sweep_ids: list[str], obj: Context, as_json: bool) -> list[dict[str, object]]:
    """Wait for each sweep to end, and write its outcome into the catalog as `plan sweep
    --wait` does (embedded: the `plan sweep` process that ran it did); their ids and end
    statuses."""
    from coordination.runtime.context import get_runtime  # lazy: as above
    from coordination.sweeps import SweepService  # lazy: as above

    svc = SweepService(get_runtime(obj.file), obj.file)
    out: list[dict[str, object]] = []
    for sid in sweep_ids:
        if not as_json:
            err_console().print(f"waiting for {esc(sid)}...")
        st = svc.wait(sid)
        if not svc.rt.settings.embedded and svc.ran_from_here(sid):
            svc.sync(sid, status=st)
        out.append({"sweep_id": sid, "status": st["status"], "reason": st.get("reason")})
    return out


def _human(d: dict[str, object]) -> None:
    started, where = _listed(d, "started"), _where(d)
    if not started:
        say(f"no plan's push trigger matches a push to {where}: nothing started")
    for s in started:
        if s.get("error"):
            say(f"{esc(s['plan'])}: not started: {esc(s['error'])}")
        else:
            say(f"{esc(s['plan'])}: sweep {esc(s['sweep_id'])} started (push to {where})")
    for u in _listed(d, "unmatched"):
        say(f"[dim]{esc(u['plan'])}: not started: {esc(u['why'])}[/dim]")
    for e in _listed(d, "ended"):
        say(f"{esc(e['sweep_id'])}: {esc(e['status'])}"
            + (f" - {esc(e['reason'])}" if e.get("reason") else ""))
