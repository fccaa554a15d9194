"""`coord audit [--json] [--limit N] [--verify]`: the log of catalog edits made through coord."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import click

from coordination.catalog.audit import log
from coordination.cli.context import Context
from coordination.cli.render import esc, json_and_context, print_json, say, table
from coordination.errors import CoordError, UsageError
from coordination.jsonable import JSONObject, as_list, as_object

if TYPE_CHECKING:
    from coordination.trust.audit_signers import SignerProblem


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
@json_and_context
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

    Edits made by hand in an editor are NOT audited as they happen (they write no
    entry). The next edit through coord (or the sync) finds one and records it first,
    as an entry of its own (edited-outside-coord: the items and fields that differ from
    the catalog as the last entry left it), so no later entry absorbs it; --verify
    reports every hand edit since it last reported (then records that it did), and
    exits 1 for a signed entry whose key is not the name it claims and for a file
    beside the catalog coord trusts (criteria results, .coord/fleet.json) that no
    entry vouches for.

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
                        "edited_outside_coord": None, "hand_edits": [], "signers": [],
                        "files": [], "reported": False} if verify else [])
        else:
            say("no audited edits yet")
        return
    if verify:
        _verify(obj, path, as_json)
    else:
        _list(path, limit, as_json)


def _verify(obj: Context, path: Path, as_json: bool) -> None:
    """`coord audit --verify`: the chain checked (exit 1 when broken), the hand edits
    since the last report (then recorded as reported), the signed entries whose key is
    not the name they claim and the files beside the catalog coord no longer vouches
    for (exit 1 for either)."""
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
    hand: list[HandEdit] = []
    signers: list[SignerProblem] = []
    files: list[FileProblem] = []
    reported = False
    if broken is None:
        entries = log.read(path)
        recorded = str(entries[-1].get("catalog")) if entries else None
        drift = _drift(obj, recorded)
        outside = _outside_now(Path(obj.file), recorded) if drift else []
        hand = _hand_edits(entries)
        signers = _signers(Path(obj.file), entries)
        files = _files(Path(obj.file))
        if hand or drift:
            reported = _mark_reported(obj, hand, bool(drift))
    if as_json:
        print_json({"log": str(path), "entries": count, "intact": broken is None,
                    "keyed": found.keyed,
                    "first_bad": None if broken is None else {
                        "line": broken.line, "index": broken.index,
                        "problem": broken.problem},
                    "catalog_changed_since": drift,
                    "edited_outside_coord": outside,
                    "hand_edits": hand, "signers": signers, "files": files,
                    "reported": reported})
    elif broken is None:
        _say_verified(count, found.keyed, key, drift, outside, hand, signers, files)
    else:
        click.echo(f"{path}: chain broken at {broken}", err=True)
    if broken is not None or signers or files:
        sys.exit(1)


def _say_verified(count: int, keyed: int, key: bytes | None, drift: str | None,
                  outside: list[log.Change] | None, hand: list[HandEdit],
                  signers: list[SignerProblem], files: list[FileProblem]) -> None:
    say(f"{count} entries, chain intact{_keying(count, keyed)}")
    if key is not None and keyed == 0 and count:
        say("[dim]note: COORD_AUDIT_KEY is set but no entry is keyed yet; the next "
            "edit starts the keyed chain[/dim]")
    for h in hand:
        say(f"edited outside coord before entry {h['seq']} ({esc(h['at'])}), recorded by "
            "the coord edit that found it:")
        for c in h["changes"]:
            say(f"  {esc(_outside_line(c))}")
        if not h["changes"]:
            say("  (which items and fields: not known)")
    if outside:
        say("edited outside coord since the last entry:")
        for c in outside:
            say(f"  {esc(_outside_line(c))}")
    elif drift:
        say(f"[dim]note: {esc(drift)}[/dim]")
    for p in signers:
        say(f"[red]signer[/red]: entry {p['seq']} ({esc(p['op'])} by {esc(p['who'])}): "
            f"{esc(p['problem'])}")
    for f in files:
        say(f"[red]file[/red] {esc(f['file'])}: {esc(f['problem'])}")


class HandEdit(TypedDict):
    """A hand edit coord recorded (an ``edited-outside-coord`` entry)."""

    seq: int
    at: str
    ids: list[str]
    changes: list[log.Change]


class FileProblem(TypedDict):
    """A file beside the catalog that coord trusts, and why it no longer does."""

    file: str
    problem: str


def _hand_edits(entries: list[dict[str, Any]]) -> list[HandEdit]:
    """The hand edits coord recorded (entries ``edited-outside-coord``) since the last
    time --verify reported them (its ``audit.reported`` entry)."""
    last = max((i for i, e in enumerate(entries) if e.get("op") == log.REPORTED), default=-1)
    return [{"seq": e["seq"], "at": e["at"], "changes": e["changes"], "ids": e["ids"]}
            for e in entries[last + 1:] if e.get("op") == log.HAND_EDIT]


def _signers(catalog: Path, entries: list[dict[str, Any]]) -> list[SignerProblem]:
    """Signed entries whose key is not the name they claim (coordination.trust)."""
    if not any(isinstance(e.get("decision"), dict) and "signature" in e["decision"]
               for e in entries):
        return []
    from coordination.trust.approvers import Approvers  # lazy: only for signed entries
    from coordination.trust.audit_signers import signer_problems  # lazy: as Approvers

    return signer_problems(entries, Approvers.of(catalog).allowed)


def _files(catalog: Path) -> list[FileProblem]:
    """The files beside the catalog coord trusts that no audit entry vouches for now."""
    from coordination.catalog.runs import criteria  # lazy: its runner, --verify only
    from coordination.fleet import roots  # lazy: as criteria

    out: list[FileProblem] = []
    plans = criteria.unvouched(catalog)
    if plans:
        out.append({"file": str(criteria.results_path(catalog)),
                    "problem": "the results of " + ", ".join(plans) + " are not what their "
                    "last plan.checked entry recorded (edited by hand, or by a coord before "
                    "0.6): they count as never checked; coord plan status PLAN --check "
                    "checks again"})
    base = Path(catalog).resolve().parent
    if roots.vouched(base, catalog) is False:
        out.append({"file": str(roots.roots_file(base)),
                    "problem": "not the file coord init last wrote (no init.roots entry "
                    "records it: edited by hand?): its roots outside the catalog's directory "
                    "are not scanned; coord init DIR... writes it again"})
    return out


def _mark_reported(obj: Context, hand: list[HandEdit], now: bool) -> bool:
    """Record that these hand edits were reported (an ``audit.reported`` entry; a hand
    edit still unrecorded is recorded first), so the next --verify reports those made
    after; False when the log cannot be written (they are reported again next time)."""
    from coordination.catalog.file.store import CatalogStore  # lazy: pydantic

    try:
        CatalogStore(obj.file).record_decision(
            who=log.who(Path(obj.file).resolve().parent), op=log.REPORTED, ids=[],
            decision={"hand_edits": [h["seq"] for h in hand], "edited_since_last": now})
    except (CoordError, OSError) as exc:
        click.echo(f"note: the report is not recorded in the log ({exc}): these edits are "
                   "reported again next time", err=True)
        return False
    return True


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


def _outside_now(catalog: Path, recorded: str | None) -> list[log.Change] | None:
    """What was edited in the catalog outside coord since the last entry (items and
    fields): :func:`coordination.catalog.audit.log.outside_changes` of the file now."""
    try:
        now = catalog.read_bytes()
    except OSError:
        return None
    return log.outside_changes(catalog, recorded, now)
