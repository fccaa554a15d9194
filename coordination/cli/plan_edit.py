"""`coord plan create|update|delete`: plans as catalog edits (plan.py holds the reads
and sweeps). Parse, call the manager, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from coordination.cli.context import Context
from coordination.cli.editing import deleting, due_value, given, updated
from coordination.cli.options import criteria_options
from coordination.cli.render import SELECTS, emit, esc, json_and_context, say
from coordination.cli.criteria_flags import paired_criteria
from coordination.errors import UsageError

if TYPE_CHECKING:  # the manager's types: off `coord plan list`
    from coordination.catalog.edits.plan_edits import PlanChanges, PlanDeleted

PLAN_STATUSES = ("draft", "active", "completed", "cancelled")
_WAVE_EXAMPLE = "name=canary,repos=api,max_parallel=1,soak=10m"
_PACE_EXAMPLE = "key=repo,rate=10/hour,burst=2"
_WAVE_HELP = ("A rollout wave, in order; repeat for more (they replace the plan's waves): "
              "name, repos, tags, max_parallel, soak, require.success_rate; as KEY=VALUE "
              f"pairs joined by commas, a list's items by '+' ({_WAVE_EXAMPLE}), or a YAML "
              "flow mapping {name: rest, tags: [service], max_parallel: 4}.")
_PACE_HELP = ("How fast its todos may start: key (repo, tag, host), rate, burst; "
              f"{_PACE_EXAMPLE} or a flow mapping {{rate: 10/hour}}.")


def change_options(f: Callable[..., None]) -> Callable[..., None]:
    """--change-branch, --change-base, --change-remote, --land, --wave, --pace (and on
    update their removals): the plan's 0.3 fields."""
    for option in reversed((
        click.option("--change-branch", metavar="BRANCH",
                     help="Make it a change landed from this branch (change: {branch}); "
                     "'' removes the change."),
        click.option("--change-base", metavar="BRANCH",
                     help="The change's base in every repo (default: each repo's "
                     "default_branch, else main; '' removes it)."),
        click.option("--change-remote", metavar="REMOTE",
                     help="The remote the change lands on in every repo ('' removes it)."),
        click.option("--land", metavar="push|command|per-wave",
                     help="How the change lands (as the catalog's Change accepts it; "
                     "'' for the default, push)."),
        click.option("--wave", "waves", multiple=True, metavar="SPEC", help=_WAVE_HELP),
        click.option("--no-waves", "no_waves", is_flag=True, help="Remove its waves."),
        click.option("--pace", metavar="SPEC", help=_PACE_HELP + " '' removes it."),
        click.option("--no-pace", "no_pace", is_flag=True, help="Remove its pace."),
    )):
        f = option(f)
    return f


def _change_fields(change_branch: str | None, change_base: str | None,
                   change_remote: str | None, land: str | None, waves: tuple[str, ...],
                   no_waves: bool, pace: str | None, no_pace: bool) -> dict[str, object]:
    """The plan's 0.3 fields given, parsed; the loader checks the values. ``change``:
    its entries (None removes one), or None to remove it (``--change-branch ''``)."""
    from coordination.catalog.governance import Wave  # lazy: pydantic models, plan edits only
    from coordination.catalog.models import Pace  # lazy: pydantic models, plan edits only
    from coordination.cli.fieldspec import parse_spec, spec_or_off  # lazy: pydantic models, plan edits only

    out: dict[str, object] = {}
    entries = {k: (v or None) for k, v in (("branch", change_branch), ("base", change_base),
                                          ("remote", change_remote), ("land", land))
               if v is not None}
    if entries:
        out["change"] = None if change_branch == "" else entries
    if no_waves and waves:
        raise UsageError("--wave and --no-waves both given", hint="give one of them")
    if no_waves or (waves and all(not w.strip() for w in waves)):
        out["waves"] = None
    elif waves:
        out["waves"] = [parse_spec(w, Wave, "--wave", _WAVE_EXAMPLE) for w in waves]
    out.update(spec_or_off("pace", pace, no_pace, Pace, _PACE_EXAMPLE))
    return out


def start_options(f: Callable[..., None]) -> Callable[..., None]:
    """--schedule, --timezone, --catchup, --on-push, --on-push-branch, --due (and their
    removals): the plan's 0.6 fields, `schedule:`, `on:` and `due:`."""
    for option in reversed((
        click.option("--schedule", metavar="CRON",
                     help="When `coord beat` starts a sweep of it: five cron fields "
                     "(\"0 3 * * 1-5\") or a nickname (@daily); '' removes its schedule."),
        click.option("--no-schedule", "no_schedule", is_flag=True, help="Remove its schedule."),
        click.option("--timezone", metavar="TZ",
                     help="The IANA time zone its cron is read in (Europe/Berlin; "
                     "default UTC; '' for the default)."),
        click.option("--catchup/--no-catchup", "catchup", default=None,
                     help="A firing missed while no beat ran starts it once later "
                     "(default: skipped)."),
        click.option("--on-push", "on_push", metavar="SELECTOR",
                     help="A push to a repo this selects starts a sweep of it "
                     "(on: {push: {repos}}); '' removes it."),
        click.option("--on-push-branch", "on_push_branch", metavar="BRANCH",
                     help="With --on-push: the branch whose pushes count (default: each "
                     "repo's default_branch)."),
        click.option("--due", metavar="WHEN",
                     help="When it must be finished: 2026-12-01T12:00Z, "
                     "2026-12-01T13:00+01:00 or a day (its end, UTC); '' removes it."),
    )):
        f = option(f)
    return f


def start_fields(schedule: str | None, no_schedule: bool, timezone: str | None,
                 catchup: bool | None, on_push: str | None, on_push_branch: str | None,
                 due: str | None, *, new: bool) -> dict[str, object]:
    """The plan's 0.6 fields given: ``schedule``'s and ``on``'s entries (None removes
    one; None for the whole removes the field), ``due`` (None removes it); the loader
    checks the values (:class:`~coordination.catalog.models.Schedule`, ``Due``)."""
    out: dict[str, object] = {}
    if no_schedule and schedule is not None:
        raise UsageError("--schedule and --no-schedule both given", hint="give one of them")
    removed = no_schedule or (schedule is not None and not schedule.strip())
    if removed and (timezone is not None or catchup is not None):
        raise UsageError("--timezone and --catchup belong to a schedule, and this removes it",
                         hint="leave them out, or give --schedule CRON")
    if removed:
        out["schedule"] = None
    else:
        entries: dict[str, object | None] = {}
        if schedule is not None:
            entries["cron"] = schedule.strip()
        if timezone is not None:
            entries["timezone"] = timezone.strip() or None
        if catchup is not None:
            entries["catchup"] = catchup or None  # false: the default, no key
        if entries:
            if new and "cron" not in entries:
                raise UsageError("--timezone and --catchup belong to a schedule",
                                 hint="add --schedule CRON (e.g. --schedule '0 3 * * 1-5')")
            out["schedule"] = entries
    if on_push_branch is not None and on_push is None:
        raise UsageError("--on-push-branch needs --on-push",
                         hint="e.g. --on-push 'tag:python' --on-push-branch main")
    if on_push is not None:
        if not on_push.strip():
            if on_push_branch:
                raise UsageError("--on-push '' removes the trigger; --on-push-branch has "
                                 "nothing to belong to", hint="leave one of them out")
            out["on"] = None
        else:
            push: dict[str, object] = {"repos": on_push.strip()}
            if on_push_branch:
                push["branch"] = on_push_branch.strip()
            out["on"] = {"push": push}
    if due is not None:
        out["due"] = due_value(due)
    return out


#: --check of `plan create` and `plan update`.
CHECK_HELP = ("The command that checks the criterion given at the same position "
              "(exit 0: it holds; '' for none); one per criterion.")


def _plan_options(repos_help: str,
                  criterion_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """What create and update both take, after their own --title, --description and
    --status: --repos (``repos_help`` then the selector's), --criterion and --check,
    the 0.3 and 0.6 fields, --json, and the CLI's context."""

    def declare(f: Callable[..., None]) -> Callable[..., None]:
        for option in reversed((
            click.option("--repos", multiple=True, metavar="SELECTOR", help=repos_help + SELECTS),
            criteria_options("criterion", criterion_help, CHECK_HELP),
            change_options, start_options, json_and_context,
        )):
            f = option(f)
        return f

    return declare


@click.command("create")
@click.option("--title", required=True, help="One-line summary.")
@click.option("--description", default="", help="Longer text.")
@click.option("--status", type=click.Choice(PLAN_STATUSES), default="draft", show_default=True,
              help="The new plan's status (active: ready to sweep).")
@_plan_options("Repos it touches, ", "A completion criterion; repeat for more.")
def create_cmd(obj: Context, title: str, description: str, status: str,
               repos: tuple[str, ...], criteria: tuple[str, ...], checks: tuple[str, ...],
               change_branch: str | None,
               change_base: str | None, change_remote: str | None, land: str | None,
               waves: tuple[str, ...], no_waves: bool, pace: str | None, no_pace: bool,
               schedule: str | None, no_schedule: bool, timezone: str | None,
               catchup: bool | None, on_push: str | None, on_push_branch: str | None,
               due: str | None, as_json: bool) -> None:
    """Create a plan; prints its new id (never one a deleted plan had). --land, --wave
    and --pace values are checked as the catalog's loader checks them (its message,
    exit 2, nothing written).

    \b
    Example:
      coord plan create --title "Python 3.14" --repos libcore,api \\
          --criterion "every service on 3.14"
      coord plan create --title "libcore 2.0" --change-branch bump-libcore-2.0 \\
          --wave name=canary,repos=api,max_parallel=1,soak=10m \\
          --wave '{name: rest, tags: [service]}' --pace rate=10/hour,burst=2
      coord plan create --title "Nightly" --status active --schedule "0 3 * * 1-5" \\
          --timezone Europe/Berlin --on-push 'tag:python' --due 2026-12-01
    """
    extra = _change_fields(change_branch, change_base, change_remote, land, waves, no_waves,
                           pace, no_pace)
    extra.update({k: v for k, v in start_fields(
        schedule, no_schedule, timezone, catchup, on_push, on_push_branch, due,
        new=True).items() if v is not None})
    created = obj.manager.plans.create(title, description=description, status=status,
                                       repos=obj.select_repos(repos),
                                       criteria=paired_criteria(criteria, checks, "criterion"),
                                       **extra)  # type: ignore[arg-type]
    emit(as_json, created, lambda p: say(esc(p.id)))


@click.command("update")
@click.argument("plan_id", metavar="PLAN")
@click.option("--title", help="New title.")
@click.option("--description", help="New description ('' to clear).")
@click.option("--status", type=click.Choice(PLAN_STATUSES), help="New status.")
@_plan_options("Replace the repos ('' for none), ",
               "Replace the completion criteria; repeat for more.")
def update_cmd(obj: Context, plan_id: str, title: str | None, description: str | None,
               status: str | None, repos: tuple[str, ...], criteria: tuple[str, ...],
               checks: tuple[str, ...], change_branch: str | None, change_base: str | None, change_remote: str | None,
               land: str | None, waves: tuple[str, ...], no_waves: bool, pace: str | None,
               no_pace: bool, schedule: str | None, no_schedule: bool, timezone: str | None,
               catchup: bool | None, on_push: str | None, on_push_branch: str | None,
               due: str | None, as_json: bool) -> None:
    """Change fields of a plan (only those given). The --change-* and --land flags
    change those entries of its change: and keep the others; --wave replaces every
    wave. Values are checked as the catalog's loader checks them (its message, exit 2,
    nothing written).

    \b
    Example:
      coord plan update PLAN-002 --status active --repos libcore,api,web
      coord plan update PLAN-004 --land command --no-pace
      coord plan update PLAN-005 --wave '' --change-branch ''
      coord plan update PLAN-006 --schedule @daily --no-catchup --due ''
      coord plan update PLAN-007 --no-schedule --on-push ''
      coord plan update PLAN-002 --criterion "p95 latency < 100ms" \\
          --check "./bench/p95.sh --max 100"
    """
    changes: PlanChanges = given(
        title=title, description=description, status=status,
        repos=obj.select_repos(repos) if repos else None,
        completion_criteria=(paired_criteria(criteria, checks, "criterion")
                             if criteria or checks else None))
    changes.update(_change_fields(  # type: ignore[typeddict-item]
        change_branch, change_base, change_remote, land, waves, no_waves, pace, no_pace))
    changes.update(start_fields(  # type: ignore[typeddict-item]
        schedule, no_schedule, timezone, catchup, on_push, on_push_branch, due, new=False))
    updated(as_json, changes, lambda: obj.manager.plans.update(plan_id, **changes))


@deleting(click.command("delete"), "plan_id", "PLAN",
          "Delete it even when todos belong to it: they stay, in no plan.")
def delete_cmd(obj: Context, plan_id: str, force: bool) -> PlanDeleted:
    """Delete a plan and its milestones. Refused (exit 2, naming each todo by file and
    line) while todos belong to it, unless --force, which takes them out of the plan
    in the same edit.

    \b
    Example:
      coord plan delete PLAN-003
      coord plan delete PLAN-002 --force --json
    """
    return obj.manager.plans.delete(plan_id, force=force)


COMMANDS = (create_cmd, update_cmd, delete_cmd)
