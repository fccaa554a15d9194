"""`coord todo`: the units of work a sweep runs. Parse, call the manager, render."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, cast

import click

from coordination.catalog.due import from_json, iso, overdue
from coordination.catalog.reads.cached import list_todos as read_todos
from coordination.cli.context import Context
from coordination.cli.editing import deleting, due_value, given, updated
from coordination.cli.issue import PRIORITIES
from coordination.cli.render import (emit, esc, fields, json_and_context, say, shown, split_list,
                                     styled, table)
from coordination.cli.criteria_flags import paired_criteria
from coordination.cli.render import output_lines
from coordination.cli.todo_run import run
from coordination.errors import UsageError
from coordination.jsonable import JSONObject, as_list

if TYPE_CHECKING:  # the models and the manager: `coord todo list` reads without them
    from coordination.catalog.edits.todo_edits import TodoChanges, TodoDeleted, TodoEdited
    from coordination.catalog.models import Todo

TODO_STATUSES = ("pending", "in_progress", "completed", "failed", "skipped", "blocked")
_INT = re.compile(r"[+-]?[0-9]+")


class Number(click.FloatRange):
    """A number within a range, kept as written: ``60`` is the int 60, so the catalog
    says ``timeout: 60`` (not ``60.0``); ``1.5`` stays a float."""

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float | int:
        # click types it as the float it returns; the command line hands over text.
        number: float = super().convert(cast(float, value), param, ctx)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        return number


def _env_pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
               ) -> dict[str, str]:
    """``--env KEY=VALUE`` (repeated) -> ``{KEY: VALUE}``; ``KEY=`` is the empty value.
    Names are checked by the manager (exit 2 and nothing written on a bad one)."""
    out: dict[str, str] = {}
    for v in values:
        name, eq, value = v.partition("=")
        if not eq:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE (KEY= for an empty value)",
                                     ctx, param)
        out[name] = value
    return out


_GATE_EXAMPLE = "approvals=2,from=ana+bo+cy,expires=24h"
_GATE_HELP = ("Wait for people's approval (a todo without --run): approvals, from, "
              "starter_may_approve, expires, on_expiry; as KEY=VALUE pairs joined by commas, "
              f"a list's items by '+' ({_GATE_EXAMPLE}), or a YAML flow mapping "
              "{approvals: 2, from: [ana, bo]}.")
_CACHE_HELP = ("Reuse an earlier success with the same key: --cache alone is `cache: true`; "
               "--cache false turns its repo's cache off for it; or the settings, "
               "env=A+B,inputs=.env,probes=python --version, or a flow mapping "
               "{probes: [\"python -c 'print(1+1)'\"]}.")
_COMMIT_HELP = "In a change's plan: commit what it changed on the change branch, with this message."
_VERIFY_HELP = "In a change's plan: run it against every repo's candidate (verify: true)."


def _todo_fields_given(commit: str | None, verify: bool | None, gate: str | None,
                       no_gate: bool, cache: str | None, no_cache: bool
                       ) -> dict[str, object]:
    """The 0.3 fields given (None: remove one), parsed; the loader checks the values."""
    from coordination.cli.fieldspec import cache_value, spec_or_off  # lazy: pydantic models, off `coord todo list`
    from coordination.catalog.governance import Gate  # lazy: pydantic models, off `coord todo list`

    out: dict[str, object] = {}
    if commit is not None:
        out["commit"] = commit or None
    if verify is not None:
        out["verify"] = verify
    out.update(spec_or_off("gate", gate, no_gate, Gate, _GATE_EXAMPLE))
    if cache is not None or no_cache:
        out["cache"] = cache_value(cache, no_cache)
    return out


_DUE_HELP = ("When it must be finished: 2026-12-01T12:00Z, 2026-12-01T13:00+01:00 or a "
             "day (its end, UTC); one not finished by then is overdue (todo.overdue).")
_MASK_HELP = ("A variable of the worker's environment whose value is masked in its output "
              "(mask_env:); repeat for more.")


def _due_mask_given(due: str | None, mask_env: tuple[str, ...]) -> dict[str, object]:
    """``--due`` (None: removed; checked as the model checks ``due:``) and
    ``--mask-env`` (the list; empty: removed) when given."""
    out: dict[str, object] = {}
    if due is not None:
        out["due"] = due_value(due)
    if mask_env:
        out["mask_env"] = split_list(mask_env)
    return out


_ENV_HELP = ("A variable its command runs with, KEY=VALUE; repeat for more. KEY is "
             "letters, digits and _, not starting with a digit.")


@click.group()
def todo() -> None:
    """Todos: list, show, create, update, complete, delete, run.

    \b
    Examples:
      coord todo list --repo api --status pending
      coord todo run TODO-004 --wait
    """


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _todo_table(items: list[JSONObject]) -> None:
    table(
        "Todos",
        ["id", "status", "repo", "task", "plan", "blocked by", "assignee"],
        [
            (esc(t["id"]), styled(str(t["status"])) + (" [red]overdue[/red]" if t.get("overdue") else ""),
             esc(t["repo"] or f"for_each {t.get('for_each')}"), esc(t["task"]), esc(t.get("plan")),
             esc(", ".join(map(str, as_list(t.get("blocked_by"))))), esc(t.get("assignee")))
            for t in items
        ],
        empty="no todos match",
    )


def _todo_fields(t: Todo) -> None:
    fields(
        f"{esc(t.id)}: {esc(t.task)}",
        shown([
            ("status", t.status.value), ("repo", t.repo), ("for_each", t.for_each),
            ("deps", t.deps), ("plan", t.plan),
            ("priority", t.priority.value), ("run", t.run), ("undo", t.undo),
            ("timeout", f"{t.timeout:g}s"), ("retries", t.retries or None),
            ("env", ", ".join(f"{k}={v}" for k, v in t.env.items())),
            ("outputs", ", ".join(f"{k}={v}" for k, v in t.outputs.items())),
            ("resources", t.resources),
            ("blocked_by", t.blocked_by), ("blocking", t.blocking), ("assignee", t.assignee),
            ("estimated_hours", _hours(t.estimated_hours)),
            ("actual_hours", _hours(t.actual_hours)), ("labels", t.labels),
            ("acceptance_criteria", [c if isinstance(c, str) else f"{c.text} (check: {c.check})"
                                     for c in t.acceptance_criteria]),
            ("description", t.description),
            ("due", iso(t.due) + (" (overdue)" if overdue(t.due, t.status.value == "completed")
                                  else "") if t.due is not None else None),
        ]),
    )


@todo.command("list")
@click.option("--status", type=click.Choice(TODO_STATUSES), help="Only todos with this status.")
@click.option("--repo", help="Only todos of this repo.")
@click.option("--assignee", help="Only todos assigned to this person.")
@click.option("--plan", help="Only the todos of this plan (its own and its milestones').")
@json_and_context
def list_todos(
    obj: Context, status: str | None, repo: str | None, assignee: str | None, plan: str | None,
    as_json: bool,
) -> None:
    """List todos, optionally filtered. A template (for_each) is listed once; with
    --repo, as that repo's instance (TODO-010[api]) and its status.

    \b
    Example:
      coord todo list --plan PLAN-001 --status pending
    """
    # Served from the validated-catalog cache as plain data: no models to build.
    items: list[JSONObject] = read_todos(obj.file, status=status, repo=repo, assignee=assignee, plan=plan)
    now = dt.datetime.now(dt.timezone.utc)
    for t in items:  # due: passed and not completed (coordination.catalog.due)
        due = t.get("due")
        t["overdue"] = isinstance(due, str) and overdue(from_json(due), t.get("status") == "completed", now)
    emit(as_json, items, _todo_table)


@todo.command("show")
@click.argument("todo_id", metavar="ID")
@click.option("--lines", "lines", type=click.IntRange(0, 10_000), default=None, metavar="N",
              help="A failed todo: show its last failure's last N lines of output "
              "(default 5; 0: none).")
@json_and_context
def show_todo(obj: Context, todo_id: str, lines: int | None, as_json: bool) -> None:
    """Show one todo; a failed one (as a sync recorded it) with its last failure from
    the history: sweep, reason and last lines of output (stderr first).

    \b
    Example:
      coord todo show TODO-003
    """
    def human(t: Todo) -> None:
        _todo_fields(t)
        if t.for_each is not None:
            _instances(obj, t)
        elif t.status.value == "failed":
            _last_failure(obj, t, lines)

    emit(as_json, _get_todo(obj, todo_id), human)


def _get_todo(obj: Context, todo_id: str) -> Todo:
    """A todo of the catalog, or a template's instance (``TODO-010[api]``) as a sweep
    would run it."""
    # lazy: templates, off `coord todo list` (which loads this module)
    from coordination.catalog.selection.templates import split_instance

    tid, repo = split_instance(todo_id)
    template = obj.manager.reads.get_todo(tid)
    if repo is None:
        return template
    if template.for_each is None:
        raise UsageError(f"{todo_id}: {tid} is not a template (no for_each:), so it has no "
                         "instances", hint=f"write {tid}")
    from coordination.catalog.selection.templates import expand  # lazy: as split_instance above

    found = expand(obj.manager.reads.catalog(), obj.file.resolve().parent).todo(todo_id)
    if found is None:
        raise UsageError(f"{todo_id}: {tid}'s for_each {template.for_each!r} does not select "
                         f"{repo!r}", hint=f"`coord todo show {tid}` lists its instances")
    # the whole environment it runs with: the worker adds COORD_REPO (as to every todo)
    return found.model_copy(update={"env": {"COORD_REPO": found.repo, **found.env}})


def _instances(obj: Context, t: Todo) -> None:
    """A template's instances: each selected repo's id and status (a sync's record)."""
    # lazy: templates, off `coord todo list` (which loads this module)
    from coordination.catalog.selection.templates import Problems, expand

    problems: Problems = {}  # its for_each selecting nothing: said, not fatal
    cat = expand(obj.manager.reads.catalog(), obj.file.resolve().parent, problems=problems)
    inst = [i for i in cat.coordination.todos if i.id.startswith(t.id + "[")]
    mine = problems.get(t.id)
    table(f"Instances of {esc(t.id)} ({len(inst)})", ["id", "repo", "status"],
          [(esc(i.id), esc(i.repo), styled(i.status.value)) for i in inst],
          empty=esc(mine.line()) if mine else "its for_each selects no repo")


def _last_failure(obj: Context, t: Todo, lines: int | None) -> None:
    """The newest failed run of ``t`` in the history (the run a sync marked it failed
    from) and its last lines of output; the history read costs only a failed todo."""
    # lazy: the runtime and the history, off `coord todo list`: only a failed todo's show
    from coordination.runtime.context import get_runtime
    from coordination.sweeps.reading import (  # lazy: the same
        DEFAULT_LINES, iso, last_failure, last_lines)

    n = DEFAULT_LINES if lines is None else lines
    if n == 0:
        return
    try:
        store = get_runtime(obj.file).history()
        try:
            rec = last_failure(store, t.id, repo=t.repo)
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - `todo show` works without the history
        say(f"[dim]last failure: the history could not be read ({esc(exc)})[/dim]")
        return
    if rec is None:
        say("[dim]last failure: none in the history[/dim]")
        return
    why = rec.get("reason") or ("" if rec.get("exit_code") is None else f"exit {rec['exit_code']}")
    run = f" (run {esc(rec['run'])})" if rec.get("run") else ""
    output_lines(f"[bold]last failure[/bold]: sweep {esc(rec.get('sweep_id'))}{run} at "
                 f"{esc(iso(rec.get('finished_at')))}" + (f", {esc(why)}" if why else "") + ":",
                 last_lines(str(rec.get("output_tail") or ""), n))


@todo.command("create")
@click.option("--task", required=True, help="What to do, one line.")
@click.option("--repo", help="The repo whose worker runs it (or --for-each).")
@click.option("--for-each", "for_each", metavar="SELECTOR",
              help="A template instead of --repo: one instance per repo the selector selects "
              "(a name, tag:T, role:R, api..., ...), at plan time.")
@click.option("--deps", type=click.Choice(["follow"]),
              help="With --for-each: each instance waits for its repo's providers' instances.")
@click.option("--run", help="Shell command run in the repo's checkout (stored in the catalog).")
@click.option("--undo", help="Compensation command, run if a sweep rolls back.")
@click.option("--plan", help="Plan this todo belongs to.")
@click.option("--blocked-by", "blocked_by", multiple=True,
              help="Todos/issues that must finish first, comma-separated (TODO-1,ISSUE-2; "
              "an instance of a template: 'TODO-10[api]', in a template 'TODO-10[same]').")
@click.option("--estimate", type=Number(min=0), help="Estimated hours.")
@click.option("--criteria", "--acceptance", "criteria", multiple=True, metavar="TEXT",
              help="An acceptance criterion; repeat for more.")
@click.option("--check", "checks", multiple=True, metavar="CMD",
              help="The command that checks the --acceptance criterion at the same position, "
                   "in the repo's checkout after the run succeeded (exit 0: it holds, else "
                   "the todo fails; '' for none); one per criterion.")
@click.option("--description", default="", help="Longer text.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Priority (default medium).")
@click.option("--assignee", help="Who owns it.")
@click.option("--label", "labels", multiple=True, help="A label; repeat for more.")
@click.option("--timeout", type=Number(min=0, min_open=True),
              help="Seconds (default 3600).")
@click.option("--retries", type=click.IntRange(min=0), help="Extra attempts (default 0).")
@click.option("--env", "env", multiple=True, callback=_env_pairs, metavar="KEY=VALUE",
              help=_ENV_HELP)
@click.option("--commit", metavar="MSG", help=_COMMIT_HELP)
@click.option("--verify", "verify", is_flag=True, help=_VERIFY_HELP)
@click.option("--gate", metavar="SPEC", help=_GATE_HELP)
@click.option("--cache", "cache", is_flag=False, flag_value="true", default=None,
              metavar="[SPEC]", help=_CACHE_HELP)
@click.option("--due", metavar="WHEN", help=_DUE_HELP)
@click.option("--mask-env", "mask_env", multiple=True, metavar="NAME", help=_MASK_HELP)
@json_and_context
def create_todo(obj: Context, /, task: str, repo: str | None, for_each: str | None,
                deps: str | None, run: str | None, undo: str | None,
                plan: str | None, blocked_by: tuple[str, ...], estimate: float | None,
                criteria: tuple[str, ...], checks: tuple[str, ...], description: str,
                priority: str | None, assignee: str | None, labels: tuple[str, ...],
                timeout: float | None,
                retries: int | None, env: dict[str, str], commit: str | None, verify: bool,
                gate: str | None, cache: str | None, due: str | None,
                mask_env: tuple[str, ...], as_json: bool) -> None:
    """Create a todo (--repo) or a template (--for-each: one instance per selected repo,
    --deps follow: ordered by the repos' dependencies); prints its new id. Blockers get
    it in their `blocking`.
    --gate and --cache values are checked as the catalog's loader checks them (its
    message, exit 2, nothing written).

    \b
    Example:
      coord todo create --task "Bump libcore" --repo api --plan PLAN-001 \\
          --run "make test" --blocked-by TODO-002 --estimate 3 --criteria "tests pass" \\
          --env PYTHON=3.13 --commit "Bump libcore to 2.0" --cache
      coord todo create --task "Sign-off" --repo api --gate approvals=2,from=ana+bo,expires=24h
      coord todo create --task "Rotate keys" --repo api --run ./rotate.sh \\
          --due 2026-12-01T12:00Z --mask-env VAULT_TOKEN
      coord todo create --task "Bump libcore" --for-each 'tag:python' --deps follow \\
          --plan PLAN-002 --run "make bump" --commit "Bump libcore"
    """
    extra = _todo_fields_given(commit, verify or None, gate, False, cache, False)
    extra.update({k: v for k, v in _due_mask_given(due, mask_env).items() if v is not None})
    created = obj.manager.todos.create(
        task, repo or "", for_each=for_each, deps=deps,
        blocked_by=split_list(blocked_by),
        criteria=paired_criteria(criteria, checks, "acceptance"),
        labels=list(labels), run=run, undo=undo, plan=plan, estimate=estimate,
        description=description, priority=priority, assignee=assignee, timeout=timeout,
        retries=retries, env=env, **extra,  # type: ignore[arg-type]
    )
    emit(as_json, created, lambda t: say(esc(t.id)))


@todo.command("complete")
@click.argument("todo_id", metavar="ID")
@click.option("--hours", type=Number(min=0), help="Hours it actually took.")
@json_and_context
def complete_todo(obj: Context, todo_id: str, hours: float | None, as_json: bool) -> None:
    """Mark a todo completed, optionally with the hours it took.

    \b
    Example:
      coord todo complete TODO-001 --hours 1.5
    """
    done = obj.manager.todos.complete(todo_id, hours=hours)
    emit(as_json, done.todo, lambda t: say(f"completed {esc(t.id)}"))
    announce_milestones(obj, done)


def announce_milestones(obj: Context, done: TodoEdited) -> None:
    """The milestones the edit ``done`` made completed (or reopened) by hand: their events,
    as a sweep's sync announces its own (coordination.sweeps.notices.milestones). The edit is
    made either way; a Redis that cannot be reached is said on stderr."""
    completed, reopened = done.completed, done.reopened
    if not (completed or reopened):
        return
    # lazy: the runtime (Redis) only when a milestone moved
    from coordination.runtime.context import get_runtime
    from coordination.sweeps.notices.milestones import announce  # lazy: same

    try:
        announce(get_runtime(obj.file), obj.file, completed, reopened)
    except Exception as exc:  # noqa: BLE001 - the edit stands; say what was not announced
        names = ", ".join(m["milestone"] for m in [*completed, *reopened])
        click.echo(f"note: {names}: the milestone event could not be recorded "
                   f"({type(exc).__name__}: {exc})", err=True)


todo.add_command(run)


@todo.command("update")
@click.argument("todo_id", metavar="ID")
@click.option("--task", help="New task line.")
@click.option("--description", help="New description ('' to clear).")
@click.option("--run", help="New shell command ('' to clear).")
@click.option("--undo", help="New compensation command ('' to clear).")
@click.option("--status", type=click.Choice(TODO_STATUSES), help="New status.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="New priority.")
@click.option("--assignee", help="New assignee ('' to clear).")
@click.option("--blocked-by", "blocked_by", multiple=True,
              help="Replace the blockers, comma-separated (TODO-1,ISSUE-2; '' for none; "
              "instances as in create); the todos' `blocking` follows.")
@click.option("--timeout", type=Number(min=0, min_open=True), help="Seconds.")
@click.option("--retries", type=click.IntRange(min=0), help="Extra attempts.")
@click.option("--resources", multiple=True,
              help="Replace the shared resources it leases, comma-separated ('' for none).")
@click.option("--estimate", "estimated_hours", type=Number(min=0),
              help="Estimated hours.")
@click.option("--label", "labels", multiple=True, help="Replace the labels; repeat for more.")
@click.option("--acceptance", "criteria", multiple=True, metavar="TEXT",
              help="Replace the acceptance criteria; repeat for more ('' for none).")
@click.option("--check", "checks", multiple=True, metavar="CMD",
              help="The command that checks the --acceptance criterion at the same position "
                   "('' for none); one per criterion.")
@click.option("--env", "env", multiple=True, callback=_env_pairs, metavar="KEY=VALUE",
              help="Set a variable its command runs with (the others stay); repeat for more. "
              "KEY= sets it empty.")
@click.option("--unset-env", "unset_env", multiple=True, metavar="KEY",
              help="Remove a variable from its environment; repeat for more.")
@click.option("--commit", metavar="MSG", help=_COMMIT_HELP + " ('' to remove)")
@click.option("--verify/--no-verify", "verify", default=None, help=_VERIFY_HELP)
@click.option("--gate", metavar="SPEC", help=_GATE_HELP + " '' removes it.")
@click.option("--no-gate", "no_gate", is_flag=True, help="Remove its gate.")
@click.option("--cache", "cache", is_flag=False, flag_value="true", default=None,
              metavar="[SPEC]", help=_CACHE_HELP)
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Remove its cache: (it follows its repo's again).")
@click.option("--due", metavar="WHEN", help=_DUE_HELP + " '' removes it.")
@click.option("--mask-env", "mask_env", multiple=True, metavar="NAME",
              help="Replace the variables masked in its output; repeat for more ('' for none).")
@json_and_context
def update_todo(obj: Context, /, todo_id: str, task: str | None, description: str | None,
                run: str | None, undo: str | None, status: str | None, priority: str | None,
                assignee: str | None, blocked_by: tuple[str, ...], timeout: float | None,
                retries: int | None, resources: tuple[str, ...],
                estimated_hours: float | None, labels: tuple[str, ...],
                criteria: tuple[str, ...], checks: tuple[str, ...], env: dict[str, str],
                unset_env: tuple[str, ...], commit: str | None, verify: bool | None,
                gate: str | None, no_gate: bool, cache: str | None, no_cache: bool,
                due: str | None, mask_env: tuple[str, ...], as_json: bool) -> None:
    """Change fields of a todo (only those given). --gate and --cache values are
    checked as the catalog's loader checks them (its message, exit 2, nothing written).

    \b
    Example:
      coord todo update TODO-005 --status in_progress --assignee chloe
      coord todo update TODO-006 --blocked-by TODO-003 --timeout 900 --retries 2
      coord todo update TODO-002 --env PYTHON=3.13 --unset-env DEBUG
      coord todo update TODO-040 --commit "Bump libcore to 2.0" --no-gate
      coord todo update TODO-041 --verify --cache '{probes: [python --version]}'
      coord todo update TODO-007 --acceptance "tests pass" --check "make test"
      coord todo update TODO-008 --due 2026-12-01 --mask-env VAULT_TOKEN
      coord todo update TODO-008 --due '' --mask-env ''
    """
    changes: TodoChanges = given(
        task=task, description=description,  # '' clears it, as for run, undo, assignee
        run=run, undo=undo, status=status, priority=priority, assignee=assignee,
        blocked_by=split_list(blocked_by) if blocked_by else None,  # '' -> [] clears
        timeout=timeout, retries=retries,
        resources=split_list(resources) if resources else None,  # '' -> [] clears
        estimated_hours=estimated_hours, labels=list(labels) if labels else None,
        acceptance_criteria=(paired_criteria(criteria, checks, "acceptance")
                             if criteria or checks else None))
    both = sorted(set(env) & set(unset_env))
    if both:
        raise UsageError(f"--env and --unset-env both name {', '.join(both)}",
                         hint="set a variable or remove it, not both")
    if env or unset_env:
        changes["env"] = {**env, **dict.fromkeys(unset_env)}
    changes.update(_todo_fields_given(  # type: ignore[typeddict-item]
        commit, verify, gate, no_gate, cache, no_cache))
    changes.update(_due_mask_given(due, mask_env))  # type: ignore[typeddict-item]
    edits: list[TodoEdited] = []

    def update() -> Todo:
        edits.append(obj.manager.todos.update(todo_id, **changes))
        return edits[-1].todo

    updated(as_json, changes, update)
    announce_milestones(obj, edits[-1])


@deleting(todo.command("delete"), "todo_id", "ID",
          "Also drop the references to it (other todos' blocked_by/blocking, "
          "milestones' todos) instead of refusing.")
def delete_todo(obj: Context, todo_id: str, force: bool) -> TodoDeleted:
    """Delete a todo. Refused (exit 2, naming every referrer) while other todos wait on
    it or a milestone lists it, unless --force, which drops those references in the same
    edit. The `blocking` entries of its own blockers always go with it. A verify todo of
    a change whose last run failed is refused too unless --force: deleting it does not
    make the change landable (its failure still vetoes the candidates it failed on).

    \b
    Example:
      coord todo delete TODO-008
      coord todo delete TODO-006 --force --json
    """
    if not force:
        _refuse_hiding_a_failure(obj, todo_id)
    return obj.manager.todos.delete(todo_id, force=force)


def _refuse_hiding_a_failure(obj: Context, todo_id: str) -> None:
    """A todo of a change plan whose verify record says it failed: deleting it looks
    like a way past the failure, and is none (the landing rule still vetoes the
    candidates it failed on): refused (exit 2) without --force, saying so."""
    catalog = obj.manager.store.load()
    todo = catalog.todo(todo_id)
    plan = catalog.plan(todo.plan) if todo is not None and todo.plan else None
    if todo is None or plan is None or plan.change is None:
        return
    from coordination.runtime.context import get_runtime  # lazy: only a change's todo

    verifies = get_runtime(obj.file).changes.read(plan.id).verifies
    failed = {t: r for t, r in verifies.items() if (t == todo_id or t.startswith(f"{todo_id}["))
              and not r.ok}
    if not failed:
        return
    said = "; ".join(f"{t} failed" + (f" (exit {r.exit_code})" if r.exit_code is not None
                                      else "")
                     + (f" in sweep {r.sweep}" if r.sweep else "")
                     for t, r in sorted(failed.items()))
    raise UsageError(
        f"{todo_id} is a verify todo of change {plan.id} whose last run failed ({said}): "
        "deleting it does not make the change landable, its failure still vetoes the "
        "candidates it failed on",
        hint=f"fix the change and run it again (coord todo run {todo_id} --wait); "
             f"coord todo delete {todo_id} --force deletes it anyway")
