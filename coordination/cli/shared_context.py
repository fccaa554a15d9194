"""`coord context`: values shared between the todos of a sweep (or of a plan's sweeps):
get, set, list, delete, export, import (:mod:`coordination.runtime.shared_context`).
Parse, call the store, render."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from coordination.cli.context import Context
from coordination.cli.context_client import ProxiedContext, from_environment
from coordination.cli.render import emit, err_console, esc, json_and_context, print_json, say, table
from coordination.errors import OperationFailed, UsageError
from coordination.runtime.context import get_runtime
from coordination.runtime.shared_context import (
    MAX_TTL,
    VALUE_CAP,
    ContextRefused,
    ContextStore,
    check_key,
    export_document,
    import_values,
    scope_of,
)

F = TypeVar("F", bound=Callable[..., Any])

#: Where a todo finds its sweep (its worker sets it).
SWEEP_ENV = "COORD_SWEEP_ID"


def scope_options(f: F) -> F:
    """``--sweep ID`` / ``--plan PLAN``: the scope (default: the sweep of the todo this
    runs in, ``$COORD_SWEEP_ID``)."""
    f = click.option("--plan", "plan_id", metavar="PLAN",
                     help="The plan's scope, shared by all its sweeps (inside a todo: "
                     "--plan \"$COORD_PLAN_ID\").")(f)
    f = click.option("--sweep", "sweep_id", metavar="ID",
                     help=f"The sweep's scope (default: ${SWEEP_ENV}, which a todo's "
                     "worker sets).")(f)
    return f


def _scope(sweep_id: str | None, plan_id: str | None) -> str:
    if sweep_id and plan_id:
        raise UsageError("--sweep and --plan together", hint="give one scope")
    if plan_id:
        return scope_of("plan", plan_id)
    sweep_id = sweep_id or os.environ.get(SWEEP_ENV, "").strip()
    if not sweep_id:
        raise UsageError("no context scope: outside a todo there is no $COORD_SWEEP_ID",
                         hint="pass --sweep ID or --plan PLAN (inside a todo the sweep's "
                         "scope is the default)")
    return scope_of("sweep", sweep_id)


def _store(obj: Context) -> ContextStore | ProxiedContext:
    """Inside a todo its worker's (the todo holds no key: cli/context_client.py), else
    this process's, each value's run checked against its sweep's signed spec."""
    proxied = from_environment()
    if proxied is not None:
        return proxied
    from coordination.sweeps.context_runs import run_check  # lazy: only here

    rt = get_runtime(obj.file)
    return rt.shared_context(runs=run_check(rt))


def _key(key: str) -> str:
    bad = check_key(key)
    if bad:
        raise UsageError(bad, hint="e.g. build.version or api-url")
    return key


def _json_text(value: str, where: str) -> str:
    """``value`` checked as JSON and written compactly."""
    return _compact(_loads(value, where), where)


def _loads(text: str, where: str) -> Any:
    """JSON ``text``; a UsageError naming ``where`` for text that is not JSON, or
    nested deeper than Python reads (a 50,000-deep list)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UsageError(f"{where} is nested too deep to read (lists or objects inside "
                         "one another, thousands deep)",
                         hint="a context value is data a todo passes on: flatten it") from None
    except ValueError as exc:
        raise UsageError(f"{where} is not JSON: {exc}",
                         hint="values are JSON: quote a string ('\"text\"'), numbers, "
                         "true/false, null, lists and objects as they are") from None


def _finite_ttl(ctx: click.Context, param: click.Parameter, value: float | None
                ) -> float | None:
    """``--ttl``: click's range lets NaN through (it compares as neither too low nor
    too high)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", ctx, param)
    return value


def _compact(value: object, where: str) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise UsageError(f"{where} holds NaN or Infinity, which JSON has not") from None
    if len(text.encode()) > VALUE_CAP:
        raise UsageError(f"{where} is {len(text.encode()):,} bytes, over the "
                         f"{VALUE_CAP // 1024} KiB cap of a context value",
                         hint="write large data to a file and share its path")
    return text


def _refused(exc: ContextRefused) -> OperationFailed:
    return OperationFailed(f"refused: {exc}")


@click.group()
def context() -> None:
    """Shared context between todos: get, set, list, delete, export, import.

    JSON values by key, in a sweep's scope (the default inside a todo: its worker
    sets $COORD_SWEEP_ID) or a plan's (--plan, shared by all its sweeps). A value
    may have a TTL; a scope holds at most COORD_CONTEXT_MAX_KEYS keys (default
    1000), and one more evicts the least recently used (a get counts as use).
    With COORD_SIGNING_KEY every value is sealed (a todo's with a key derived for its
    run, through its worker), and one that fails its seal, or that a run set before
    its todo ran again, is refused. Hits, misses and evictions are in `coord metrics`.

    \b
    Examples:
      coord context set build '{"version": "1.4.2"}' --ttl 3600
      coord context get build --json
      coord context list --plan PLAN-001
    """


@context.command("get")
@click.argument("key")
@scope_options
@click.option("--raw", is_flag=True, help="A string value as its text, without quotes.")
@json_and_context
def get_cmd(obj: Context, key: str, sweep_id: str | None, plan_id: str | None, raw: bool,
            as_json: bool) -> None:
    """Print a value (JSON). Exit 1 when the scope has none under KEY.

    \b
    Examples:
      coord context get build
      VERSION=$(coord context get version --raw)
    """
    scope = _scope(sweep_id, plan_id)
    try:
        text = _store(obj).get(scope, _key(key))
    except ContextRefused as exc:
        raise _refused(exc) from None
    if text is None:
        if as_json:
            print_json({"scope": scope, "key": key, "found": False, "value": None})
        raise OperationFailed(f"no context value {key!r} in {scope}")
    value = json.loads(text)
    if as_json:
        print_json({"scope": scope, "key": key, "found": True, "value": value})
    elif raw and isinstance(value, str):
        click.echo(value)
    else:
        click.echo(text)


@context.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--ttl", type=click.FloatRange(0, MAX_TTL, min_open=True), callback=_finite_ttl,
              metavar="SECONDS", help="Forget it after this long (default: never).")
@scope_options
@json_and_context
def set_cmd(obj: Context, key: str, value: str, ttl: float | None, sweep_id: str | None,
            plan_id: str | None, as_json: bool) -> None:
    """Store a JSON value under KEY (replacing any); the least recently used keys go
    when the scope is full (named on stderr, and in --json as evicted).

    \b
    Examples:
      coord context set build '{"version": "1.4.2"}'
      coord context set token '"abc"' --ttl 600 --plan PLAN-001
    """
    scope = _scope(sweep_id, plan_id)
    text = _json_text(value, "VALUE")
    evicted = _store(obj).set(scope, _key(key), text, ttl=ttl)

    def human(_: object) -> None:
        if evicted:
            err_console().print(f"[yellow]evicted[/yellow] (least recently used, the scope "
                                f"is full): {esc(', '.join(evicted))}")

    emit(as_json, {"scope": scope, "key": key, "ttl": ttl, "evicted": evicted}, human)


@context.command("list")
@scope_options
@json_and_context
def list_cmd(obj: Context, sweep_id: str | None, plan_id: str | None, as_json: bool) -> None:
    """The scope's values, least recently used first (reading them counts as no use).

    \b
    Example:
      coord context list --plan PLAN-001 --json
    """
    scope = _scope(sweep_id, plan_id)
    try:
        entries = _store(obj).entries(scope)
    except ContextRefused as exc:
        raise _refused(exc) from None
    now = time.time()

    def human(_: object) -> None:
        def short(v: object) -> str:
            text = json.dumps(v, ensure_ascii=False)
            return text if len(text) <= 60 else text[:57] + "..."

        table(f"context of {scope}", ["key", "value", "ttl", "set"],
              [(esc(e["key"]), esc(short(e["value"])),
                "" if e["ttl"] is None else f"{e['ttl']:.0f}s",
                f"{max(0.0, now - e['at']):.0f}s ago") for e in entries],
              empty=f"no values in {scope}")

    emit(as_json, {"scope": scope, "values": entries}, human)


@context.command("delete")
@click.argument("key")
@scope_options
@json_and_context
def delete_cmd(obj: Context, key: str, sweep_id: str | None, plan_id: str | None,
               as_json: bool) -> None:
    """Remove KEY (nothing to do when it is not there).

    \b
    Example:
      coord context delete build
    """
    scope = _scope(sweep_id, plan_id)
    gone = _store(obj).delete(scope, _key(key))
    emit(as_json, {"scope": scope, "key": key, "deleted": gone},
         lambda _: say(f"deleted {esc(key)}" if gone else f"{esc(key)}: not in {esc(scope)}"))


@context.command("export")
@scope_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: stdout).")
@click.pass_obj
def export_cmd(obj: Context, sweep_id: str | None, plan_id: str | None,
               output: Path | None) -> None:
    """Every value of the scope as one JSON document ({"scope", "values": {KEY:
    {"value", "ttl"}}}), for `coord context import`. A value failing its seal stops
    the export (exit 1), naming it.

    \b
    Example:
      coord context export --plan PLAN-001 -o context.json
    """
    scope = _scope(sweep_id, plan_id)
    try:
        doc = export_document(scope, _store(obj).entries(scope))
    except ContextRefused as exc:
        raise _refused(exc) from None
    if output is None:
        print_json(doc)
        return
    try:
        output.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


@context.command("import")
@click.argument("source", metavar="FILE")
@scope_options
@json_and_context
def import_cmd(obj: Context, source: str, sweep_id: str | None, plan_id: str | None,
               as_json: bool) -> None:
    """Set every value of an export (FILE, or - for stdin) in the scope, each with the
    TTL it had left; the document is checked whole first (a bad one: exit 2, nothing
    set). The scope's cap holds: least recently used keys go.

    \b
    Example:
      coord context import context.json --sweep SWEEP_ID
    """
    scope = _scope(sweep_id, plan_id)
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {source}: {exc}") from None
    try:
        rows = import_values(_loads(text, source))
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}",
                         hint="give a file `coord context export` wrote") from None
    values = [(k, _compact(v, f"{source}: values.{k}"), ttl) for k, v, ttl in rows]
    store = _store(obj)
    evicted: list[str] = []
    for k, v, ttl in values:
        evicted += store.set(scope, k, v, ttl=ttl)
    emit(as_json, {"scope": scope, "imported": len(values), "evicted": evicted},
         lambda _: say(f"imported {len(values)} value(s) into {esc(scope)}"
                       + (f"; evicted {esc(', '.join(evicted))}" if evicted else "")))
