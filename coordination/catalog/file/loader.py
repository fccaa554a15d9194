"""Safe, fast loading of ecosystem.yaml, and located, human problems.

The happy path is PyYAML's C parser with the safe constructor, then one
Pydantic validation and :func:`check_catalog`. Line numbers are only worked
out when something is wrong: the text is composed again (nodes carry marks)
and each problem's ``loc`` is walked to its node. So a valid catalog never
pays for error reporting.

Refused on purpose, because a hand-edited catalog never needs them and each
is a way to hide something from a reviewer or hang a command:
non-standard tags (``!!python/object`` would run code under an unsafe
loader), anchors and aliases (the "billion laughs" bomb), merge keys, and
duplicate mapping keys (YAML silently keeps the last one).
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from difflib import get_close_matches
from enum import Enum
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from coordination.catalog.file.cache import paused_gc
from coordination.catalog.rules.checks import check_catalog, loc_to_field
from coordination.catalog.models import (
    BLOCKER_RE, REPO_NAME_RE, TODO_REPO_RE, Catalog, Coordination, Dependency, Issue, Plan, Repo, Todo,
)
from coordination.errors import CatalogSchemaError, CatalogSyntaxError, Problem

# libyaml's loader when PyYAML was built with it: chosen at run time, so the type checker
# cannot know the base class (the one Any of this module).
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SUPPORTED_VERSIONS = (1,)
MAX_PROBLEMS = 50  # a wholly wrong file would otherwise print thousands of lines
MAX_DEPTH = 100  # collections nested deeper than any catalog needs (its own depth is ~6)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NO_ALIASES = "anchors and aliases (&name, *name) are not part of the catalog format; write the value out"


class _AliasFound(Exception):
    """A node was reached twice while constructing: an alias."""


class _Refused(Exception):
    """A construct the catalog format refuses, at a 0-based line (and node, if known)."""

    def __init__(self, message: str, line: int, node: yaml.Node | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.node = message, line, node


class SafeCatalogLoader(_Base):  # type: ignore[misc]
    """Safe loader that refuses aliases and merge keys and records duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int, int]] = []  # (key, line, first line), 0-based
        self.root: yaml.Node | None = None  # kept to name the field of a refused value
        self._tags: dict[tuple[str | None, bool | tuple[bool, bool]], str] = {}

    def resolve(self, kind: type[yaml.Node], value: str | None,
                implicit: bool | tuple[bool, bool]) -> str:
        # libyaml's composer asks for every scalar's tag, and PyYAML's resolver
        # tries a list of regexes each time. Keys, statuses and ids repeat, and a
        # scalar's tag depends only on its text and style (no path resolvers are
        # set), so the answers are kept: a cold load is about 15% faster.
        if kind is not yaml.ScalarNode:
            resolved: str = super().resolve(kind, value, implicit)
            return resolved
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag

    def get_single_data(self) -> object:
        self.root = self.get_single_node()
        return None if self.root is None else self.construct_document(self.root)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> dt.date | str:
        # YAML 1.1 reads 2026-13-45 as a timestamp it cannot build ("month must be
        # in 1..12"). Kept as the text written, so validation names the field
        # (plans[0].milestones[0].due) beside every other problem.
        try:
            stamp: dt.date = super().construct_yaml_timestamp(node)
            return stamp
        except ValueError:
            text: str = self.construct_scalar(node)
            return text

    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        # The composer shares one node between an anchor and its aliases, so a
        # second visit is an alias. Stopping here keeps a bomb linear in size.
        if node in self.constructed_objects or node in self.recursive_objects:
            raise _AliasFound()
        if node.tag == _STR_TAG and node.__class__ is yaml.ScalarNode:
            # Most of a catalog is text: what PyYAML's str constructor does, without
            # its five calls per value (recorded, so a second visit is still an alias).
            value: str = node.value
            self.constructed_objects[node] = value
            return value
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:
            # Any other scalar YAML resolves to a type it cannot build, e.g. an
            # integer of more than 4,300 digits.
            value = str(node.value)
            shown = repr(value) if len(value) <= 40 else f"{value[:20]!r}... ({len(value)} characters)"
            reason = ("too many digits for a number" if "digits" in str(exc) else str(exc))
            raise _Refused(f"cannot read the value {shown}: {reason}", node.start_mark.line,
                           node) from None

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise _Refused(
                    "merge keys ('<<') are not part of the catalog format; write the keys out",
                    key_node.start_mark.line,
                )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                          ) -> dict[object, object]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[object, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _BOOL_TAG and key_node.__class__ is yaml.ScalarNode:
                # YAML 1.1 reads a plan's `on:` (and yes/no/off) as a boolean; a catalog's
                # keys are text, as YAML 1.2 (ruamel, editors) reads them.
                key: object = key_node.value
                self.constructed_objects[key_node] = key
            else:
                key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in mapping
            except TypeError:
                raise _Refused("a mapping key must be plain text", key_node.start_mark.line) from None
            if seen:
                first = next(k for k, _ in node.value if self.constructed_objects.get(k) == key)
                self.duplicates.append((str(key), key_node.start_mark.line, first.start_mark.line))
                continue
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


SafeCatalogLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                  SafeCatalogLoader.construct_yaml_timestamp)


def _path_to(root: yaml.Node | None, target: yaml.Node) -> tuple[str | int, ...] | None:
    """Keys and indexes from ``root`` to ``target`` (iterative: depth is capped anyway)."""
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [] if root is None else [(root, ())]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k is target:
                    return path
                stack.append((v, (*path, str(k.value))))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, (*path, i)) for i, v in enumerate(node.value))
    return None


def decode(data: bytes, file: str) -> str:
    """UTF-8 text of the file; a clear error with the offending byte's offset otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CatalogSyntaxError(
            Problem(
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
                file=file,
                line=line,
            ),
            hint="save the file as UTF-8",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _nesting_problem(text: str, file: str) -> Problem | None:
    """Nesting deeper than MAX_DEPTH, found before anything is composed: libyaml's
    composer recurses once per level and crashes (SIGSEGV) at ~50,000 levels.

    Counted on libyaml's event stream, which is iterative. No cheaper look is
    sound: brackets inside comments or quotes, and compact forms such as
    ``? ? ? a`` or ``- - - a``, fool a text scan. It costs about 15% of a cold
    load (0.16 s for 5,000 todos); warm loads come from the cache.
    """
    level = 0
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, _OPEN):
                level += 1
                if level > MAX_DEPTH:
                    mark = event.start_mark
                    return Problem(f"nested more than {MAX_DEPTH} levels deep; a catalog never "
                                   "needs that", file=file,
                                   line=None if mark is None else mark.line + 1)
            elif isinstance(event, _CLOSE):
                level -= 1
    except yaml.MarkedYAMLError as exc:
        # Recent libyaml (PyYAML 6.0.4's wheels) stops at a depth limit of its own:
        # the same problem, said coord's way, where it starts.
        if exc.problem == "exceeded maximum nesting depth":
            mark = exc.context_mark or exc.problem_mark
            return Problem(f"nested more than {MAX_DEPTH} levels deep; a catalog never "
                           "needs that", file=file, line=None if mark is None else mark.line + 1)
        return None  # not YAML: the real parse reports it with its location
    except yaml.YAMLError:
        return None  # not YAML: the real parse reports it with its location
    return None


_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def parse(text: str, file: str) -> object:
    """Plain Python data of the YAML text, refusing what the format does not allow."""
    deep = _nesting_problem(text, file)
    if deep is not None:
        raise CatalogSyntaxError(deep)
    loader = SafeCatalogLoader(text)
    try:
        data = loader.get_single_data()
    except _AliasFound:
        raise CatalogSyntaxError(
            Problem(_NO_ALIASES, file=file, line=_first_alias_line(text))
        ) from None
    except _Refused as exc:
        loc = None if exc.node is None else _path_to(loader.root, exc.node)
        raise CatalogSyntaxError(Problem(exc.message, file=file, line=exc.line + 1,
                                         field=loc_to_field(loc) or None if loc else None)) from None
    except yaml.MarkedYAMLError as exc:
        raise CatalogSyntaxError(_syntax_problem(exc, text, file)) from None
    except yaml.reader.ReaderError as exc:  # a control character; unmarked, but positioned
        raise CatalogSyntaxError(_reader_problem(exc, text, file)) from None
    except yaml.YAMLError as exc:
        raise CatalogSyntaxError(Problem(f"invalid YAML: {exc}", file=file)) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise CatalogSyntaxError(
            [
                Problem(
                    f"duplicate key {key!r} (first at line {first + 1}); "
                    "YAML would silently keep only the last one, remove or rename one",
                    file=file,
                    line=line + 1,
                )
                for key, line, first in loader.duplicates[:MAX_PROBLEMS]
            ]
        )
    return data


def _reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """A control character, with its line: libyaml counts UTF-8 bytes, PyYAML characters."""
    pos = int(exc.position)
    if _Base is yaml.SafeLoader:
        before = text[:pos]
    else:
        before = text.encode("utf-8")[:pos].decode("utf-8", "replace")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else None
    what = "a character" if code is None else f"control character U+{code:04X}"
    return Problem(f"invalid YAML: {what} at column {column} is not allowed (remove it, or "
                   "write it as an escape in a double-quoted string)", file=file, line=line)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if isinstance(exc, yaml.constructor.ConstructorError) and "constructor for the tag" in problem:
        tag = str(problem).split("'")[1] if "'" in problem else "?"
        tag = tag.replace("tag:yaml.org,2002:", "!!")
        message = f"tag {tag!r} is not allowed: the catalog is plain YAML (remove the tag)"
    else:
        message = f"invalid YAML: {problem}"
        if mark is not None:
            message += f" (column {mark.column + 1})"
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            message += f"; {exc.context} at line {exc.context_mark.line + 1}"
        if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            message += "; a tab: indent with spaces, not tabs"
    return Problem(message, file=file, line=None if mark is None else mark.line + 1)


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n")
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def _first_alias_line(text: str) -> int | None:
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, yaml.AliasEvent) and event.start_mark is not None:
                return int(event.start_mark.line) + 1
    except yaml.YAMLError:
        pass
    return None


def validate(data: object, text: str, file: str) -> Catalog:
    """A validated catalog, or a :class:`CatalogSchemaError` listing every problem, located."""
    _check_top(data, text, file)
    try:
        cat = Catalog.model_validate(data)
    except ValidationError as exc:
        raw = [
            Problem(humanize(e), loc=tuple(e["loc"]))
            for e in exc.errors(include_url=False)
        ]
        # All problems at once: the reference checks too (unknown repo, duplicate
        # id...), over the items that did validate, so fixing the type errors
        # does not uncover a second list.
        raw += _reference_problems(data)
        raise CatalogSchemaError(locate(raw, text, file)) from None
    problems = check_catalog(cat)
    if problems:
        raise CatalogSchemaError(locate(problems, text, file))
    return cat


_SECTIONS = {("repos",): "repo", ("coordination", "issues"): "issue",
             ("coordination", "plans"): "plan", ("coordination", "todos"): "todo",
             ("coordination", "dependencies"): "dependency"}


M = TypeVar("M", Repo, Issue, Plan, Todo, Dependency)


def _reference_problems(data: object) -> list[Problem]:
    """Cross-reference problems of a catalog that failed type validation.

    The checks run over the items that validate on their own; locations are
    mapped back to each item's place in the file. A reference to a kind of
    which some item is invalid may only be a consequence of it ("unknown issue
    ISSUE-001" when ISSUE-001's own entry is malformed), so those are left for
    the next load; duplicates and every other reference are reported now.
    """
    if not isinstance(data, dict):
        return []
    coord = data["coordination"] if isinstance(data.get("coordination"), dict) else {}
    index: dict[str, list[int]] = {}  # kind -> original index of each valid item
    broken: set[str] = set()

    def valid(kind: str, model: type[M], raw: object) -> list[M]:
        """The items of a section that validate alone (their indexes in ``index``)."""
        out: list[M] = []
        index[kind] = []
        if raw is not None and not isinstance(raw, list):
            broken.add(kind)  # the whole section is malformed
        for i, x in enumerate(raw if isinstance(raw, list) else []):
            try:
                out.append(model.model_validate(x))
                index[kind].append(i)
            except (ValidationError, TypeError, ValueError):
                broken.add(kind)
        return out

    repos = valid("repo", Repo, data.get("repos"))
    issues = valid("issue", Issue, coord.get("issues"))
    plans = valid("plan", Plan, coord.get("plans"))
    todos = valid("todo", Todo, coord.get("todos"))
    dependencies = valid("dependency", Dependency, coord.get("dependencies"))
    try:
        cat = Catalog.model_construct(version=1, repos=repos, coordination=Coordination(
            issues=issues, plans=plans, todos=todos, dependencies=dependencies))
        found = check_catalog(cat)
    except Exception:  # best effort; the next load reports the rest
        return []
    out = []
    for p in found:
        if any(p.message.startswith(f"unknown {kind} ") or f": unknown {kind} " in p.message
               for kind in broken):
            continue
        loc = tuple(p.loc or ())
        for prefix, kind in _SECTIONS.items():
            n = len(prefix)
            k = loc[n] if len(loc) > n else None
            if loc[:n] == prefix and isinstance(k, int):
                loc = (*prefix, index[kind][k], *loc[n + 1:])
                break
        # A message may name another item ("first defined at todos[2].id"): its index too.
        message = _ITEM_REF.sub(
            lambda m: f"{m[1]}[{index[_FIELD_KIND[m[1]]][int(m[2])]}]", p.message)
        out.append(Problem(message, loc=loc))
    return out


_FIELD_KIND = {"repos": "repo", "issues": "issue", "plans": "plan", "todos": "todo",
               "dependencies": "dependency"}
_ITEM_REF = re.compile(r"(?<![\w.])(repos|issues|plans|todos|dependencies)\[(\d+)\]")


def load_catalog(data: bytes, file: str) -> Catalog:
    """Bytes of a catalog file to a validated :class:`Catalog` (no cache)."""
    text = decode(data, file)
    with paused_gc():
        return validate(parse(text, file), text, file)


def _check_top(data: object, text: str, file: str) -> None:
    # Checked before Pydantic: a wrong version would drown in schema noise.
    hint = "a catalog starts with 'version: 1', then 'repos:' and 'coordination:'"
    if data is None:
        raise CatalogSchemaError(Problem("the file holds no YAML document", file=file), hint=hint)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        raise CatalogSchemaError(
            Problem(f"the top level must be a mapping, found {kind}", file=file, line=1), hint=hint
        )
    if "version" not in data:
        raise CatalogSchemaError(
            Problem("field required (add 'version: 1' at the top)", file=file, line=1,
                    field="version")
        )
    version = data["version"]
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise CatalogSchemaError(
            locate(
                [Problem(f"unsupported catalog version {version!r}; this coord reads version "
                         f"{supported} (set 'version: 1')", loc=("version",))],
                text,
                file,
            )
        )


# -- line numbers, on the error path only -------------------------------------
def locate(problems: list[Problem], text: str, file: str) -> list[Problem]:
    """Problems with ``file``, ``line`` and ``field`` filled from their ``loc``, by line."""
    try:
        root = yaml.compose(text, Loader=_Base)
    except yaml.YAMLError:
        root = None
    out = [
        Problem(
            p.message,
            file=file,
            line=p.line if p.line is not None else _line_of(root, p.loc),
            field=p.field if p.field is not None else (loc_to_field(p.loc) or None),
            loc=p.loc,
        )
        for p in problems
    ]
    out.sort(key=lambda p: p.line or 0)  # stable: same-line problems keep their order
    if len(out) > MAX_PROBLEMS:
        more = len(out) - MAX_PROBLEMS
        out = out[:MAX_PROBLEMS] + [Problem(f"... and {more} more problems", file=file)]
    return out


def _line_of(root: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the document."""
    if root is None:
        return None
    node, line = root, int(root.start_mark.line)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(
                ((k, v) for k, v in node.value
                 if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                None,
            )
            if hit is None:
                break
            line, node = int(hit[0].start_mark.line), hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = int(node.start_mark.line)
        else:
            break
    return line + 1


# -- Pydantic errors in the catalog's words -----------------------------------
_PATTERNS = {
    REPO_NAME_RE: "must be a repo name: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit",
    r"^(ISSUE|TODO)-\d+$": "must look like ISSUE-<digits> or TODO-<digits>",
    BLOCKER_RE: "must look like ISSUE-<digits> or TODO-<digits> (a template's instance: "
    "TODO-<digits>[REPO] or TODO-<digits>[same])",
    TODO_REPO_RE: "must be a repo name: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit",
}
_PLACEHOLDERS = {
    "repo": "<name>", "name": "<name>", "consumer": "<repo name>", "provider": "<repo name>",
    "title": "<text>", "task": "<text>", "command": "<shell command>", "version": "1",
}
_ID_PREFIX = {"issues": "ISSUE", "plans": "PLAN", "todos": "TODO", "dependencies": "DEP",
              "milestones": "MS"}
_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "list_type": "a list ([a, b] or '- item' lines)",
    "dict_type": "a mapping ('key: value' lines)", "model_type": "a mapping ('key: value' lines)",
    "model_attributes_type": "a mapping ('key: value' lines)",
    "date_type": "a date like 2026-01-31", "date_parsing": "a date like 2026-01-31",
    "date_from_datetime_parsing": "a date like 2026-01-31",
    "date_from_datetime_inexact": "a date like 2026-01-31 (no time of day)",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
           "less_than_equal": "<="}


def humanize(err: ErrorDetails) -> str:
    """One Pydantic error dict as a sentence that says how to fix it."""
    kind, loc, got = err["type"], tuple(err["loc"]), err.get("input")
    ctx = err.get("ctx") or {}
    name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
    if kind == "missing":
        return f"field required (add '{name}: {_placeholder(loc)}')"
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = get_close_matches(name, known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else "remove it or fix its spelling"
        return f"unknown field {name!r} ({fix})"
    if kind == "enum":
        enum = _type_at(loc)
        allowed = (", ".join(str(m.value) for m in enum) if isinstance(enum, type)
                   and issubclass(enum, Enum) else ctx.get("expected"))
        return f"{_show(got)} is not allowed; use one of: {allowed}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        m = re.fullmatch(r"\^([A-Z]+)-\\d\+\$", pattern)
        rule = (f"must look like {m.group(1)}-<digits> (e.g. {m.group(1)}-001)" if m
                else _PATTERNS.get(pattern, f"must match {pattern}"))
        return f"{rule}, got {_show(got)}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, got {_show(got)}"
    if kind in _EXPECTED:
        quote = " (quote it if it is meant as text)" if kind == "string_type" and isinstance(
            got, (bool, int, float)) else ""
        if kind.startswith("date") and isinstance(got, str) and ctx.get("error"):
            quote = f" ({ctx['error']})"  # e.g. "month value is outside expected range of 1-12"
        return f"expected {_EXPECTED[kind]}, got {_show(got)}{quote}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {bound}, got {_show(got)}"
    if kind in ("string_too_short", "too_short"):
        return f"must not be empty, got {_show(got)}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return f"{str(err['msg'])[:1].lower()}{str(err['msg'])[1:]}, got {_show(got)}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _placeholder(loc: tuple[str | int, ...]) -> str:
    name = loc[-1] if loc else ""
    if name == "id":
        coll = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
        return f"{_ID_PREFIX.get(coll, 'ID')}-<digits>"
    return _PLACEHOLDERS.get(str(name), "<value>")


def _strip(tp: object) -> object:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(loc: tuple[str | int, ...]) -> object:
    """The declared type at ``loc`` in the Catalog model tree (None when unknown)."""
    tp: object = Catalog
    for part in loc:
        tp = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = tp.model_fields.get(part)
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return None
    return _strip(tp)


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    tp = _type_at(loc)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []
