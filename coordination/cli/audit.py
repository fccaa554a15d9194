"""`coord audit [--json] [--limit N] [--verify]`: the log of catalog edits made through coord."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import click

from coordination.catalog import audit as log
from coordination.cli.context import Context
from coordination.cli.render import esc, json_option, print_json, say, table
from coordination.errors import CoordError, UsageError
from coordination.jsonable import JSONObject, as_list, as_object


def _changes(entry: JSONObject) -> str:
    parts = []
    for change in as_list(entry.get("changes")):
        c = as_object(change)
        if c.get("action") == "updated":
            fields = ", ".join(
                f"{k}: {json.dumps(v[0], ensure_ascii=False)} -> {json.dumps(v[1], ensure_ascii=False)}"
                for k, v in as_object(c.get("fields")).items() if isinstance(v, list))
            parts.append(f"{c.get('id')} {fields}")
        else:
            parts.append(f"{c.get('id')} {c.get('action')}")
    return "; ".join(parts) or "(no change)"


def _table(entries: list[JSONObject]) -> None:
    table(
        "Audit log",
        ["#", "at (UTC)", "who", "operation", "changes", "command"],
        [
            (e.get("seq"), esc(str(e.get("at") or "")[:19].replace("T", " ")), esc(e.get("who")), esc(e.get("op")),
             esc(_changes(e)),
             esc(" ".join(["coord", *map(str, as_list(e["argv"]))]) if e.get("argv") else ""))
            for e in entries
        ],
        empty="no audited edits yet",
    )


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the last N entries.")
@click.option("--verify", is_flag=True,
              help="Check the hash chain: exit 1 naming the first bad entry, else 0 "
              "(keyed entries need COORD_AUDIT_KEY: without it, exit 2).")
@json_option
@click.pass_obj
def audit(obj: Context, limit: int | None, verify: bool, as_json: bool) -> None:
    """List the catalog edits made through coord (CLI or library), newest last.

    Each edit made through coord appends one entry to
    .<catalog name>.coord.audit.jsonl beside the catalog: who (COORD_USER, else
    git config user.email, else the OS user), when, the operation and command,
    the ids touched and the fields changed. Entries are chained by sha256, so
    --verify shows an entry changed, removed, inserted or reordered after the
    fact (not a chain rewritten from that entry on, hashes recomputed). With
    COORD_AUDIT_KEY set, new entries are chained by HMAC-SHA256 under that key:
    then a forged or rewritten entry fails --verify too (which needs the key).

    Edits made by hand in an editor are NOT audited (they write no entry); --verify
    names them: the items and fields that differ from the catalog as the last entry
    left it (a copy kept beside the log, pinned by that entry's hash).

    \b
    Examples:
      coord audit --limit 20
      coord audit --verify
      coord audit --json | jq '.[] | select(.who == "ana@example.com")'
    """
    path = log.log_path(obj.file)
    if not path.exists():
        if as_json:
            print_json({"log": str(path), "entries": 0, "intact": True, "keyed": 0,
                        "first_bad": None, "catalog_changed_since": None,
                        "edited_outside_coord": None} if verify else [])
        else:
            say("no audited edits yet")
        return
    if verify:
        _verify(obj, path, as_json)
    else:
        _list(path, limit, as_json)


def _verify(obj: Context, path: Path, as_json: bool) -> None:
    """`coord audit --verify`: the chain checked (exit 1 when broken), and what changed
    in the catalog since the last entry."""
    key = log.audit_key()
    found = log.check(path, key)
    count, broken = found.entries, found.broken
    if broken is None and found.unchecked is not None:
        raise UsageError(
            f"{path}: {_entries(found.keyed)} keyed (HMAC-SHA256, from line "
            f"{found.unchecked} on) and COORD_AUDIT_KEY is not set: the log cannot be "
            "verified without it",
            hint="set COORD_AUDIT_KEY to the key the log was written with")
    drift, outside = None, None
    if broken is None:
        recorded = log.last_catalog(path)
        drift = _drift(obj, recorded)
        outside = outside_edits(Path(obj.file), recorded) if drift else []
    if as_json:
        print_json({"log": str(path), "entries": count, "intact": broken is None,
                    "keyed": found.keyed,
                    "first_bad": None if broken is None else {
                        "line": broken.line, "index": broken.index,
                        "problem": broken.problem},
                    "catalog_changed_since": drift,
                    "edited_outside_coord": outside})
    elif broken is None:
        say(f"{count} entries, chain intact{_keying(count, found.keyed)}")
        if key is not None and found.keyed == 0 and count:
            say("[dim]note: COORD_AUDIT_KEY is set but no entry is keyed yet; the next "
                "edit starts the keyed chain[/dim]")
        if outside:
            say("edited outside coord since the last entry:")
            for c in outside:
                say(f"  {esc(_outside_line(c))}")
        elif drift:
            say(f"[dim]note: {esc(drift)}[/dim]")
    else:
        click.echo(f"{path}: chain broken at {broken}", err=True)
    if broken is not None:
        sys.exit(1)


def _list(path: Path, limit: int | None, as_json: bool) -> None:
    """`coord audit`: the last ``limit`` entries (all without), and a note of the lines
    that are not well-formed entries."""
    entries, skipped = log.scan(path)
    if limit is not None:
        entries = entries[-limit:]
    if skipped:
        click.echo(f"note: {skipped} line{'s' if skipped != 1 else ''} of {path} "
                   f"{'are' if skipped != 1 else 'is'} not a well-formed entry and "
                   f"{'are' if skipped != 1 else 'is'} not shown; "
                   "`coord audit --verify` names the first", err=True)
    if as_json:
        print_json(entries)
    else:
        _table(entries)


def _outside_line(c: log.Change) -> str:
    """One item edited outside coord, for people: ``TODO-003 updated: status, task``."""
    fields = ", ".join(c["fields"]) if c["action"] == "updated" else ""
    return f"{c['id']} ({c['kind']}) {c['action']}" + (f": {fields}" if fields else "")


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def _keying(count: int, keyed: int) -> str:
    """How much of an intact log is keyed, for people ("" for a plain log)."""
    if not keyed:
        return ""
    if keyed == count:
        return ", every entry keyed (HMAC-SHA256)"
    return (f"; the last {_entries(keyed)} keyed (HMAC-SHA256), pinning the "
            f"{_entries(count - keyed)} before them (plain sha256)")


def _drift(obj: Context, recorded: str | None) -> str | None:
    """Why the catalog no longer matches the last entry, or None when it does."""
    if recorded is None:
        return None
    try:
        data = Path(obj.file).read_bytes()
    except OSError:
        return "the catalog file cannot be read"
    if hashlib.sha256(data).hexdigest() == recorded:
        return None
    return ("the catalog changed after the last audited edit: an edit by hand, or "
            "entries removed from the end of the log")


def outside_edits(catalog: Path, recorded: str | None) -> list[log.Change] | None:
    """What was edited in the catalog outside coord since the last entry (items and
    fields, as an entry's ``changes``): the catalog now against the copy the last entry
    left (:func:`coordination.catalog.audit.snapshot_path`), used only when it hashes
    to that entry's ``catalog``. None when that cannot be told (no copy, a copy the
    entry does not pin, or a catalog that does not load now)."""
    if recorded is None:
        return None
    try:
        before = log.snapshot_path(catalog).read_bytes()
        now = catalog.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(before).hexdigest() != recorded:
        return None
    if hashlib.sha256(now).hexdigest() == recorded:
        return []
    from coordination.catalog import loader  # lazy: pydantic, for --verify of a changed file

    try:
        return log.diff(loader.load_catalog(before, str(catalog)),
                        loader.load_catalog(now, str(catalog)))
    except CoordError:
        return None
