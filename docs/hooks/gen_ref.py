"""Generated reference pages, built from the code at every `mkdocs build` (never copied).

An MkDocs hook (``hooks:`` in mkdocs.yml): ``on_files`` adds ``reference/settings.md``,
``reference/catalog.md``, ``reference/events.md`` and ``reference/metrics.md`` as
generated files, so they are never stale and never committed, and publishes the
catalog's JSON Schema (``coord schema``) at ``schema/ecosystem.schema.json`` for
editors to point at. The CLI's page is
mkdocs-click's (``reference/cli.md``). The same functions back
``tests/unit/test_docs_reference.py``, which fails when a command, option, setting or
catalog field has no description.
"""

from __future__ import annotations

import ast
import enum
import functools
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]

#: Page -> the function that writes it.
PAGES = {
    "reference/settings.md": "settings_page",
    "reference/catalog.md": "catalog_page",
    "reference/events.md": "events_page",
    "reference/metrics.md": "metrics_page",
}
#: Files the site publishes beside its pages -> the function that writes each.
ASSETS = {
    "schema/ecosystem.schema.json": "schema_file",
}


def _cell(text: object) -> str:
    """Text for one cell of a Markdown table: no line break, no bare pipe, and ``<``/``>``
    outside code spans escaped (``TODO-<n>`` is not an HTML tag)."""
    parts = " ".join(str(text).split()).replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _env_default(value: object) -> str:
    """A setting's default as the environment variable would say it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _shown_default(value: object) -> str:
    """A default as the catalog or the environment writes it (``true``, ``"cancel"``)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if isinstance(value, Path):
        value = str(value)
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


# -- CLI -------------------------------------------------------------------------------

def cli_commands() -> Iterator[tuple[str, click.Command]]:
    """Every command of the click app, with its full name (``coord sweep resume``)."""
    from coordination.cli.main import cli

    def walk(cmd: click.Command, name: str, ctx: click.Context) -> Iterator[tuple[str, click.Command]]:
        yield name, cmd
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(ctx):
                child = cmd.get_command(ctx, sub)
                if child is not None:
                    yield from walk(child, f"{name} {sub}", click.Context(child, parent=ctx,
                                                                          info_name=sub))

    yield from walk(cli, "coord", click.Context(cli, info_name="coord"))


def undescribed_cli() -> list[str]:
    """Commands without help and options without help (hidden ones aside)."""
    missing = []
    for name, cmd in cli_commands():
        if not (cmd.help or cmd.short_help):
            missing.append(f"command {name!r}")
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden and not p.help:
                missing.append(f"option {p.opts[0]} of {name!r}")
    return missing


# -- settings --------------------------------------------------------------------------

def _type_name(tp: object) -> str:
    text = getattr(tp, "__name__", None) if isinstance(tp, type) else None
    text = text or str(tp).replace("typing.", "").replace("pydantic.types.", "")
    return text.replace("NoneType", "None").replace("pathlib.", "")


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(variable, type as Markdown, default, description) of every setting."""
    from coordination.settings import Settings
    from coordination.settings_core import ENV_PREFIX

    prefix = ENV_PREFIX
    rows = []
    for name, f in Settings.model_fields.items():
        default = "" if f.is_required() else _env_default(f.get_default(call_default_factory=True))
        rows.append((f"{prefix}{name}".upper(), _shown_type(f.annotation), default,
                     f.description or ""))
    return rows


def settings_page() -> str:
    out = ["# Settings", "",
           "Every setting is an environment variable, read once at start "
           "(`coordination/settings.py`); a bad value stops the command with a message naming "
           "the variable. Generated from the settings model. Besides these, `COORD_USER` "
           "names who the audit log records (default: `git config user.email` in the "
           "catalog's directory, else the OS user); and `COORD_FLOWER_ALLOW_CONTROL`, which "
           "`coord flower --allow-control` sets to `1` for the Flower process it starts "
           "(`0` or unset: Flower's control endpoints are refused; any other value stops "
           "Flower; `coord flower` without the flag removes it, so set by hand it does "
           "nothing there).", "",
           "| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
    for var, tp, default, text in settings_rows():
        shown = f"`{_cell(default)}`" if default not in ("", "unset") else default
        out.append(f"| `{var}` | {tp} | {shown} | {_cell(text)} |")
    return "\n".join(out) + "\n"


# -- catalog ---------------------------------------------------------------------------

def catalog_models() -> list[type[BaseModel]]:
    """Every model reachable from the catalog's root, root first, its fields described."""
    from coordination.catalog.models import Catalog
    from coordination.catalog.rules.schema import describe_fields

    describe_fields()  # the docstrings under the fields, read only when wanted

    seen: list[type[BaseModel]] = []

    def visit(tp: object) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.append(tp)
            for f in tp.model_fields.values():
                visit(f.annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    visit(Catalog)
    return seen


def undescribed_fields() -> list[str]:
    return [f"{m.__name__}.{name}" for m in catalog_models()
            for name, f in m.model_fields.items() if not f.description]


def undescribed_events() -> list[str]:
    """Event kinds without a description in ``coordination.status.EVENT_DESCRIPTIONS``."""
    from coordination.status import EVENT_DESCRIPTIONS, EventKind

    return [k.value for k in EventKind if not EVENT_DESCRIPTIONS.get(k, "").strip()]


def undescribed_settings() -> list[str]:
    return [var for var, _tp, _d, text in settings_rows() if not text.strip()]


def _shown_type(tp: object) -> str:
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is typing.Annotated:
        return _shown_type(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " \\| ".join(_shown_type(a) for a in args)
    if args:
        inner = ", ".join(_shown_type(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return f"`{_type_name(tp)}`"


def catalog_page() -> str:
    out = ["# Catalog fields", "",
           "Every field of `ecosystem.yaml`, from the pydantic models of "
           "`coordination/catalog/` (`coord schema` prints the same as a JSON Schema). "
           "Unknown keys are refused. Generated from the models.", ""]
    for m in catalog_models():
        out += [f"## {m.__name__}", ""]
        doc = (m.__doc__ or "").strip()
        if doc and not doc.startswith(("A base class", "Usage docs")):
            out += [_cell(doc.replace("``", "`")), ""]
        out += ["| Field | Type | Default | Meaning |", "|---|---|---|---|"]
        for name, f in m.model_fields.items():
            key = f.alias or name
            if f.is_required():
                default = "required"
            else:
                default = f"`{_cell(_shown_default(f.get_default(call_default_factory=True)))}`"
            out.append(f"| `{key}` | {_shown_type(f.annotation)} | {default} | "
                       f"{_cell(f.description or '')} |")
        out.append("")
    return "\n".join(out)


# -- events ----------------------------------------------------------------------------

#: The envelope every event carries; an emitter's other fields are its kind's.
ENVELOPE = ("kind", "ts", "sweep_id", "todo_id")


def _python_files() -> list[Path]:
    return sorted([*(ROOT / "coordination").rglob("*.py"), *(ROOT / "workers").rglob("*.py")])


def _kinds_in(node: ast.AST) -> set[str]:
    """The ``EventKind.X`` members ``node`` names (an ``IfExp`` may name two)."""
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "EventKind"}


def _dict_keys(node: ast.AST | None) -> set[str] | None:
    """The keys of a dict literal (its text keys), or None if ``node`` is not one."""
    if not isinstance(node, ast.Dict):
        return None
    return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


class _Scope(ast.NodeVisitor):
    """Walks one module, remembering the function each node is in."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    def function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node
        return None

    def kinds_of_name(self, name: str, where: ast.AST) -> set[str]:
        """The kinds a local variable holding a kind (``kind = EventKind.a if ... else
        EventKind.b``) may be."""
        scope = self.function(where) or self.tree
        return {k for n in ast.walk(scope) if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
                for k in _kinds_in(n.value)}

    def spread(self, name: str, where: ast.AST) -> set[str]:
        """The keywords a ``**name`` passes on: ``name`` is the enclosing function's
        ``**kwargs``; the module's calls of that function say what it gets."""
        fn = self.function(where)
        if fn is None or fn.args.kwarg is None or fn.args.kwarg.arg != name:
            return set()
        named = {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]}
        return {k.arg for n in ast.walk(self.tree) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name) and n.func.id == fn.name
                for k in n.keywords if k.arg and k.arg not in named}


@functools.cache
def python_emitters() -> dict[str, dict[str, set[str]]]:
    """Event kind (its value) -> emitter (``path:line``) -> the fields it sets, read from the
    Python code: ``emit(EventKind.X, k=...)`` or ``prepare(...)``, an event a script writes
    with its change (the kind may be a local variable, a field
    a ``**kwargs`` passed on); a call ending todos as ``TodoStatus.X`` with ``event={...}``
    (``todo.X``); a ``GateOpening``'s or an ``Opening``'s event (``gate.waiting``). What
    a worker's run ends with (``Turn.finish(status, fields, event)``, the status known at
    run time) is not read here: tests/integration/test_event_fields.py sees it in a
    ledger."""
    from coordination.status import EventKind

    found: dict[str, dict[str, set[str]]] = {}

    def add(kind: str, where: str, fields: set[str]) -> None:
        found.setdefault(kind, {}).setdefault(where, set()).update(
            f for f in fields if f not in ENVELOPE)

    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        if not any(word in text for word in ("EventKind", "Opening", "event=")):
            continue
        tree = ast.parse(text)
        scope = _Scope(tree)
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{rel}:{node.lineno}"
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("emit", "prepare") and node.args:
                first = node.args[0]
                kinds = (_kinds_in(first) if isinstance(first, ast.Attribute)
                         else scope.kinds_of_name(first.id, node)
                         if isinstance(first, ast.Name) else set())
                fields = {k.arg for k in node.keywords if k.arg}
                for k in node.keywords:
                    if k.arg is None and isinstance(k.value, ast.Name):
                        fields |= scope.spread(k.value.id, node)
                for m in kinds:
                    add(EventKind[m].value, where, fields)
                continue
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _OPENINGS:  # (the event's place among its arguments)
                at = _OPENINGS[name]
                event = next((k.value for k in node.keywords if k.arg == "event"),
                             node.args[at] if len(node.args) > at else None)
                keys = _dict_keys(event)
                if keys is not None:
                    add(EventKind.gate_waiting.value, where, keys)
                continue
            statuses = [a.attr for a in node.args if isinstance(a, ast.Attribute)
                        and isinstance(a.value, ast.Name) and a.value.id == "TodoStatus"]
            keys = _dict_keys(next((k.value for k in node.keywords if k.arg == "event"), None))
            if len(statuses) == 1 and keys is not None:
                add(f"todo.{statuses[0]}", where, keys)
    return found


def _lua_split(text: str) -> list[str]:
    """A Lua expression list split at its top-level commas."""
    parts, depth, quote, cur = [], 0, "", ""
    for c in text:
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += c
    return [*parts, cur.strip()]


def _lua_statuses(text: str, var: str) -> list[str]:
    """The kinds ``'todo.' .. var`` may be in a script: ``todo.X`` for each ``TS.X``
    assigned to ``var``; every todo end's kind if it is also assigned anything else."""
    statuses: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"^\s*(?:local\s+)?([\w\s,]+?)\s*=\s*(.+)$", line)
        if m is None or "==" in line.split("--")[0]:
            continue
        targets = [t.strip() for t in m.group(1).split(",")]
        if var not in targets:
            continue
        values = _lua_split(m.group(2).split(" --")[0])
        i = targets.index(var)
        got = re.fullmatch(r"TS\.(\w+)", values[i]) if i < len(values) else None
        if got is None:
            return todo_end_kinds()
        statuses.add(f"todo.{got.group(1)}")
    return sorted(statuses) or todo_end_kinds()


def lua_emitters() -> dict[str, dict[str, set[str]]]:
    """Event kind (its value) -> script -> the fields it sets on it: ``local ev =
    event(EV.kind, ...)`` or ``ev.kind, ev.ts, ... = EV.kind, ...``, then ``ev.field = ...``
    until ``emit(ev)``; a todo's end, ``'todo.' .. status``, for each kind ``status`` may
    be (:func:`_lua_statuses`). A script that appends the fields its caller hands over
    (``cjson.decode(ARGV[..])``) sets none itself."""
    from coordination.status import EventKind

    found: dict[str, dict[str, set[str]]] = {}
    made = re.compile(r"(?:local )?(\w+) = event\((?:EV\.(\w+)|'todo\.' \.\. (\w+))")
    kind_set = re.compile(r"^\s*(\w+)\.kind,.*= (?:EV\.(\w+)|'todo\.' \.\. (\w+))")
    for path in sorted((ROOT / "coordination" / "runtime" / "lua").glob("*.lua")):
        text = path.read_text(encoding="utf-8")
        open_events: dict[str, list[str]] = {}
        for line in text.splitlines():
            if line.strip().startswith("--"):
                continue
            m = made.search(line) or kind_set.search(line)
            if m:
                kinds = (_lua_statuses(text, m.group(3)) if m.group(3)
                         else [EventKind[m.group(2)].value])
                open_events[m.group(1)] = kinds
                for kind in kinds:
                    found.setdefault(kind, {}).setdefault(path.name, set())
            if "=" not in line:
                continue
            lhs = line.split("=", 1)[0]
            for var, name in re.findall(r"\b(\w+)\.(\w+)\b", lhs):
                if var in open_events and name not in ENVELOPE:
                    for kind in open_events[var]:
                        found[kind][path.name].add(name)
    return found


def todo_end_kinds() -> list[str]:
    """The kinds a todo's end appends (``todo.<status>`` of a terminal status)."""
    from coordination.status import TERMINAL, EventKind

    return [k.value for k in EventKind if k.value.startswith("todo.")
            and k.value.removeprefix("todo.") in {str(s) for s in TERMINAL}]


#: The records a gate's opening is handed in, each with its event's place among its
#: positional arguments (``gate.waiting``'s fields: runtime/transitions.py and
#: runtime/gate_count.py).
_OPENINGS = {"GateOpening": 4, "Opening": 2}


def emitters() -> dict[str, dict[str, set[str]]]:
    """Event kind -> where it is appended (``path:line``, or a Lua script) -> the fields
    set there, from the Python code and the Lua scripts."""
    found = {k: {w: set(f) for w, f in v.items()} for k, v in python_emitters().items()}
    for kind, scripts in lua_emitters().items():
        found.setdefault(kind, {}).update(scripts)
    return found


def undescribed_event_fields() -> list[str]:
    """Event fields without a meaning, and kinds without their declaration."""
    from coordination.status import EVENT_FIELDS, EventKind

    missing = [f"{k.value}: no entry in EVENT_FIELDS" for k in EventKind if k not in EVENT_FIELDS]
    missing += [f"{k.value}.{f}" for k, fields in EVENT_FIELDS.items()
                for f, meaning in fields.items() if not meaning.strip()]
    return missing


def events_page() -> str:
    from coordination.status import EVENT_DESCRIPTIONS, EVENT_FIELDS, EventKind

    where = emitters()
    out = ["# Events", "",
           "Every kind of event coord appends to its ledger (`coord events`, the web view, "
           "webhooks), from `coordination/status.py` (`EVENT_DESCRIPTIONS`, `EVENT_FIELDS`). "
           "Every event carries `kind`, `ts` (Unix time), `sweep_id` and `todo_id` (null "
           "when not about one); the fields listed with a kind are what it may carry "
           "besides (an emitter may leave out one that does not apply to it; older events "
           "may lack newer fields). \"Appended by\" names the Python modules and Lua scripts "
           "(`coordination/runtime/lua/`) that append it; a todo's end is also appended "
           "by the worker that ran it (`workers/runner.py`). `coord events --json` shows "
           "every field. tests/unit/test_event_fields.py and "
           "tests/integration/test_event_fields.py hold the emitters to these lists. "
           "Generated.", ""]
    for k in EventKind:
        places = where.get(k.value, {})
        modules = sorted({str(Path(w.split(":")[0]).with_suffix("")).replace("/", ".")
                          for w in places if w.endswith(tuple("0123456789"))})
        scripts = sorted(w for w in places if w.endswith(".lua"))
        by = ", ".join([*(f"`{m}`" for m in modules), *(f"`{s}`" for s in scripts)])
        out += [f"## `{k.value}`", "", _cell(EVENT_DESCRIPTIONS.get(k, "")), ""]
        fields = EVENT_FIELDS.get(k, {})
        if fields:
            out += ["| Field | Meaning |", "|---|---|"]
            out += [f"| `{f}` | {_cell(meaning)} |" for f, meaning in fields.items()]
        else:
            out.append("No field besides the envelope.")
        out += ["", f"Appended by: {by or 'nothing in this version'}.", ""]
    return "\n".join(out)


# -- metrics ---------------------------------------------------------------------------

def metrics_rows() -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) of every metric family coord exposes."""
    from coordination.ops import metrics
    from coordination.runtime.metrics import Counters, Snapshot

    snap = Snapshot(Counters.parse({}), {}, {}, [], {}, {})
    rows = {f.name: (f.name, f.type, "", f.documentation)
            for f in metrics.families(snap, [], lambda r: r)}
    # Labels, and the families built outside families() (coord_redis_up, replicas),
    # read from the source's constructor calls.
    tree = ast.parse(Path(metrics.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id.endswith("MetricFamily") and len(node.args) >= 2 \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[1], ast.Constant):
            name, text = str(node.args[0].value), str(node.args[1].value)
            kind = node.func.id.replace("MetricFamily", "").lower()
            rows.setdefault(name, (name, kind, "", text))
    labels = _labels(tree)
    return [(n, t, labels.get(n, ""), h) for n, t, _l, h in sorted(rows.values())]


def _labels(tree: ast.AST) -> dict[str, str]:
    out: dict[str, str] = {}
    lists = {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
             and isinstance(n.value, ast.List) for t in n.targets if isinstance(t, ast.Name)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        for a in [*node.args[2:3], *(k.value for k in node.keywords if k.arg == "labels")]:
            if isinstance(a, ast.Name):  # labels = [...] set earlier in the function
                a = lists.get(a.id, a)
            if isinstance(a, ast.List):
                out[first.value] = ", ".join(str(e.value) for e in a.elts
                                             if isinstance(e, ast.Constant))
    return out


def metrics_page() -> str:
    out = ["# Metrics", "",
           "What `coord metrics` (and the web view's `/metrics`) exposes in the Prometheus "
           "text format, from `coordination/ops/metrics.py`. Counters are exposed with the "
           "`_total` suffix; histograms with `_bucket`, `_sum` and `_count`. "
           "`coord_redis_replicas` is only exposed on Sentinel. Generated.", "",
           "| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for name, kind, labels, text in metrics_rows():
        out.append(f"| `{name}` | {kind} | {_cell(labels)} | {_cell(text)} |")
    return "\n".join(out) + "\n"


# -- the catalog's JSON Schema -----------------------------------------------------------

def schema_file() -> str:
    """`coord schema`'s output, as the site publishes it."""
    from coordination.cli.schema import schema_text

    return schema_text()


# -- the hook --------------------------------------------------------------------------

def page(src_uri: str) -> str:
    return str(globals()[{**PAGES, **ASSETS}[src_uri]]())


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for src_uri in [*PAGES, *ASSETS]:
        files.append(File.generated(config, src_uri, content=page(src_uri)))
    return files
