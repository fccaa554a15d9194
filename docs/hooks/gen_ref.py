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

    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = []
    for name, f in Settings.model_fields.items():
        default = "" if f.is_required() else _env_default(f.get_default(call_default_factory=True))
        rows.append((f"{prefix}{name}".upper(), _shown_type(f.annotation), default,
                     f.description or ""))
    return rows


def settings_page() -> str:
    out = ["# Settings", "",
           "Every setting is an environment variable, read once at start (pydantic-settings, "
           "`coordination/settings.py`); a bad value stops the command with a message naming "
           "the variable. Generated from the settings model. Besides these, `COORD_USER` "
           "names who the audit log records (default: `git config user.email` in the "
           "catalog's directory, else the OS user).", "",
           "| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
    for var, tp, default, text in settings_rows():
        shown = f"`{_cell(default)}`" if default not in ("", "unset") else default
        out.append(f"| `{var}` | {tp} | {shown} | {_cell(text)} |")
    return "\n".join(out) + "\n"


# -- catalog ---------------------------------------------------------------------------

def catalog_models() -> list[type[BaseModel]]:
    """Every model reachable from the catalog's root, root first."""
    from coordination.catalog.models import Catalog

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

def _emitted_fields() -> dict[str, set[str]]:
    """Event kind -> the data fields its Python emitters pass (``emit(EventKind.X, k=...)``)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "coordination").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "emit" and node.args):
                continue
            first = node.args[0]
            if isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name) \
                    and first.value.id == "EventKind":
                kw = {k.arg for k in node.keywords if k.arg and k.arg not in ("sweep_id", "todo_id")}
                found.setdefault(first.attr, set()).update(kw)
    return found


def _lua_emitters() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Events appended inside Lua scripts: kind member -> the scripts, and kind member ->
    the fields set on it (``local ev = event(EV.kind, ...)``, then ``ev.field = ...``
    until ``emit(ev)``)."""
    scripts: dict[str, set[str]] = {}
    fields: dict[str, set[str]] = {}
    made = re.compile(r"(?:local )?(\w+) = event\(EV\.(\w+)")
    kind_set = re.compile(r"^\s*(\w+)\.kind,.*= EV\.(\w+)")  # ev.kind, ev.ts, ... = EV.x, ...
    dynamic = re.compile(r"'todo\.' \.\.")  # 'todo.' .. status: the todo.<status> kinds
    for path in sorted((ROOT / "coordination" / "runtime" / "lua").glob("*.lua")):
        open_events: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            m = made.search(line) or kind_set.search(line)
            if m:
                open_events[m.group(1)] = m.group(2)
                scripts.setdefault(m.group(2), set()).add(path.name)
                fields.setdefault(m.group(2), set())
            elif dynamic.search(line):
                scripts.setdefault("todo.<status>", set()).add(path.name)
            if "=" not in line or line.strip().startswith("--"):
                continue
            lhs = line.split("=", 1)[0]
            for var, name in re.findall(r"\b(\w+)\.(\w+)\b", lhs):
                if var in open_events and name not in ("kind", "ts", "sweep_id", "todo_id"):
                    fields[open_events[var]].add(name)
    return scripts, fields


def events_page() -> str:
    from coordination.status import EVENT_DESCRIPTIONS, EventKind, TodoStatus

    ends = {f"todo.{st.value}" for st in TodoStatus}
    fields = _emitted_fields()
    scripts, lua_fields = _lua_emitters()
    out = ["# Events", "",
           "Every kind of event coord appends to its ledger (`coord events`, the web view, "
           "webhooks), from `coordination/status.py`. Every event carries `kind`, `ts` "
           "(Unix time), `sweep_id` and `todo_id` (null when not about one); the fields "
           "below are what its emitters add, read from the code (Python's "
           "`emit(EventKind...)` calls and the Lua scripts of `coordination/runtime/lua/`). "
           "A todo's end (`todo.<status>`) is appended by the script that moves it, with "
           "the fields its caller hands over (a run's end: `worker`, `exit_code`, "
           "`duration`, `attempts`, `reason`), which this table cannot read from the code; "
           "`coord events --json` shows every field. Generated.", "",
           "| Kind | Fields | Emitted by | What it says |", "|---|---|---|---|"]
    for k in EventKind:
        names = sorted(fields.get(k.name, set()) | lua_fields.get(k.name, set()))
        lua = scripts.get(k.name, set())
        if not lua and k.value in ends:
            lua = scripts.get("todo.<status>", set())  # a todo's end: 'todo.' .. status
        where = ", ".join(f"`{s}`" for s in sorted(lua))
        if k.name in fields:
            where = "Python" + (", " + where if where else "")
        out.append(f"| `{k.value}` | {', '.join(f'`{n}`' for n in names)} | {where} "
                   f"| {_cell(EVENT_DESCRIPTIONS.get(k, ''))} |")
    return "\n".join(out) + "\n"


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
