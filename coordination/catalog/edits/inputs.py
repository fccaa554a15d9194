"""Small checks of what an edit is given, shared by the manager's edit modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import Enum

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.edits.document import flow, repo_names, unknown
from coordination.errors import UsageError

#: A structured field's value as the CLI hands it over (the loader checks it).
Spec = Mapping[str, object]


def choice(value: str | None, enum: type[Enum], what: str) -> str | None:
    """``value`` checked against an enum, with the choices in the message."""
    if value is None:
        return None
    allowed = [m.value for m in enum]
    if value not in allowed:
        raise UsageError(f"bad {what} {value!r}; choose one of: {', '.join(allowed)}")
    return value


def uniq(values: Iterable[str]) -> list[str]:
    """Order-keeping de-duplication, blanks dropped (``--repos a,,b,a``)."""
    out: list[str] = []
    for v in values:
        v = v.strip()
        if v and v not in out:
            out.append(v)
    return out


def today() -> dt.date:
    # A fresh object per field: ruamel writes one object used twice as an anchor
    # and an alias (`&id001`), which a safe loader may refuse.
    return dt.date.fromordinal(dt.date.today().toordinal())


def fresh(day: dt.date | None) -> dt.date | None:
    """A copy of ``day`` (see :func:`today` for why)."""
    return None if day is None else dt.date.fromordinal(day.toordinal())


def require_repos(doc: CommentedMap, names: Iterable[str]) -> None:
    known = repo_names(doc)
    for n in names:
        if n not in known:
            raise unknown(n, known, "repo")


def criteria_items(values: Iterable[str | Mapping[str, str]], what: str) -> list[object]:
    """Criteria as the catalog writes them: a text (blank ones dropped), or a
    ``{text, check}`` flow mapping (a criterion and the command that checks it)."""
    out: list[object] = []
    for v in values:
        if isinstance(v, str):
            if v.strip():
                out.append(v)
            continue
        text, check = str(v.get("text") or ""), str(v.get("check") or "")
        if not text.strip():
            raise UsageError(f"{what}: a check needs the criterion it checks",
                             hint="give --check with a non-empty criterion")
        out.append(flow({"text": text, "check": check}) if check.strip() else text)
    return out


def require_title(title: str | None, what: str) -> None:
    """A title that is not blank (``what``: "a plan", for the message)."""
    if not (title or "").strip():
        raise UsageError(f"{what} needs a non-empty title")


def check_editable(changes: object, allowed: set[str], what: str) -> None:
    """Only fields of ``allowed`` among ``changes`` (an update's keyword arguments)."""
    assert isinstance(changes, dict)
    bad = sorted(set(changes) - allowed)
    if bad:
        raise UsageError(f"cannot update {', '.join(bad)} of {what}; "
                         f"editable: {', '.join(sorted(allowed))}")


def require_changes(*parts: object) -> None:
    """Something to update among ``parts`` (the changes an update sorted out)."""
    if not any(parts):
        raise UsageError("nothing to update", hint="pass at least one field to change")
