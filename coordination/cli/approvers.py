"""`coord approvers show|set FILE|unset`: the catalog's `approvers:` (who may approve gates,
proven by SSH signatures), edited through coord and audited, never by hand."""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from pathlib import Path
from typing import Any

import click

from coordination.catalog.audit import log as audit
from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say
from coordination.errors import UsageError

#: The key types git's allowed-signers format takes (as ssh-keygen writes them).
KEY_TYPE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)"
                      r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$")


def check_allowed_signers(path: Path, shown: str) -> int:
    """How many principals' lines ``path`` has; a UsageError naming the file and line of
    the first one git's allowed-signers format does not take."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot be read ({exc.strerror})",
                         hint="give an allowed-signers file (principals keytype key per "
                         "line), relative to the catalog's directory or absolute") from None
    n = 0
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{shown}:{i}: {exc}") from None
        at = next((k for k, w in enumerate(words) if KEY_TYPE.match(w)), None)
        why = None
        if at is None or at == 0 or at + 1 >= len(words):
            why = "no principals, key type and key"
        else:
            try:
                blob = base64.b64decode(words[at + 1], validate=True)
            except (binascii.Error, ValueError):
                blob = b""
            kind = words[at].encode()
            if blob[4:4 + len(kind)] != kind:
                why = f"the key is not a {words[at]} public key"
        if why:
            raise UsageError(f"{shown}:{i}: {why}",
                             hint="each line: principals [options] keytype base64-key, as "
                             "git's gpg.ssh.allowedSignersFile (e.g. alice@example.com "
                             "ssh-ed25519 AAAA...)")
        n += 1
    if n == 0:
        raise UsageError(f"{shown}: names no principal",
                         hint="add a line per approver: principals keytype base64-key")
    return n


def _doc(obj: Context) -> dict[str, Any]:
    found = obj.manager.store.load().approvers
    return {"allowed_signers": found.allowed_signers if found else None}


@click.group()
def approvers() -> None:
    """Who may approve gates, proven by SSH signatures: show, set, unset (the catalog's
    approvers:, every edit audited).

    \b
    Examples:
      coord approvers set .coord/allowed_signers
      coord approvers show --json
    """


@approvers.command("show")
@json_and_context
def show(obj: Context, as_json: bool) -> None:
    """The catalog's allowed-signers file (none: approvers declare themselves).

    \b
    Example:
      coord approvers show --json
    """
    emit(as_json, _doc(obj), lambda d: say(
        f"allowed signers: {esc(d['allowed_signers'])}" if d["allowed_signers"]
        else "no approvers: (approvers declare themselves)"))


@approvers.command("set")
@click.argument("file")
@json_and_context
def set_(obj: Context, file: str, as_json: bool) -> None:
    """Make FILE (git's allowed-signers format, relative to the catalog's directory or
    absolute) the catalog's approvers: a gate's vote then counts only with a signature
    that verifies for a principal it names. Checked first (each line a principal and an
    SSH public key: a bad one is named by line, exit 2, nothing written); audited.

    \b
    Example:
      coord approvers set .coord/allowed_signers
    """
    store = obj.manager.store
    found = Path(file).expanduser()
    check_allowed_signers(found if found.is_absolute() else store.base_dir / found, file)

    def approvers_set(doc: Any) -> None:
        doc["approvers"] = {"allowed_signers": file}

    with audit.operation("approvers_set"):
        store.update(approvers_set)
    emit(as_json, _doc(obj), lambda d: say(f"approvers: {esc(d['allowed_signers'])}"))


@approvers.command("unset")
@json_and_context
def unset(obj: Context, as_json: bool) -> None:
    """Remove the catalog's approvers: (approvers then declare themselves); audited.

    \b
    Example:
      coord approvers unset
    """
    store = obj.manager.store

    def approvers_unset(doc: Any) -> None:
        doc.pop("approvers", None)

    with audit.operation("approvers_unset"):
        store.update(approvers_unset)
    emit(as_json, _doc(obj), lambda d: say("approvers: none (approvers declare themselves)"))
