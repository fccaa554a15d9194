"""Sending ``coord acl``'s users to a Redis server, and rotating a user's password.

Everything is checked before anything is written: the server's version first (the
users' rules are Redis 7's: key permissions ``%R~``/``%W~`` and selectors; a Redis 6
would take some users and refuse the next), then every user's rules on a scratch
user (created off, deleted at once), so a server that refuses one rule has applied
nothing. Passwords are made here and returned once: Redis keeps only their hashes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from coordination.errors import NotFoundError, OperationFailed, UsageError
from coordination.keys import Keys
from coordination.runtime.acl import AclUser, made_by_coord, person_of, scope_document

#: The oldest Redis whose ACLs hold coord's rules (selectors, ``%R~``/``%W~``).
MIN_VERSION = (7, 0)
#: The scratch user each user's rules are tried on first (a random suffix each time).
CHECK_USER = "coord-acl-check-"


@dataclass(frozen=True)
class Rotated:
    user: str
    password: str  # shown once
    disconnected: int  # connections of the user that were open, closed (with --disconnect)
    saved: bool  # written to the server's ACL file too (ACL SAVE)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def server_version(r: redis.Redis) -> str:
    """The server's ``redis_version`` (INFO server; HELLO when INFO is not allowed)."""
    try:
        return _text(r.info("server").get("redis_version", "?"))
    except redis.ResponseError:
        reply = r.execute_command("HELLO")  # type: ignore[no-untyped-call]
        pairs = dict(zip(reply[::2], reply[1::2])) if isinstance(reply, list) else reply
        return _text({_text(k): v for k, v in pairs.items()}.get("version", "?"))


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def require_selectors(r: redis.Redis, where: str) -> str:
    """The server's version, or UsageError (nothing applied) when it is older than 7.0."""
    version = server_version(r)
    if _version_tuple(version) < MIN_VERSION:
        raise UsageError(
            f"coord acl needs Redis {'.'.join(map(str, MIN_VERSION))} or newer: {where} runs "
            f"Redis {version}, whose ACLs have no selectors nor read-only/write-only keys "
            "(a worker's push-only access to other repos' queues); nothing was applied",
            hint="upgrade that Redis to 7 (the embedded server is 6.2: --apply needs a "
            "shared one), or run coord with the namespace-wide users of "
            "docs/how-to/acl.md")
    return version


def check_rules(r: redis.Redis, wanted: list[AclUser]) -> None:
    """Each user's rules tried on a scratch user (off, deleted at once): UsageError
    naming the user and Redis's words on the first refused, before any user is written."""
    scratch = CHECK_USER + secrets.token_hex(6)
    try:
        for u in wanted:
            try:
                r.execute_command("ACL", "SETUSER", scratch,  # type: ignore[no-untyped-call]
                                  "reset", "off", *u.rules)
            except redis.ResponseError as exc:
                raise UsageError(f"Redis refused the rules of {u.user}: {exc}; nothing was "
                                 "applied", hint="docs/how-to/acl.md") from None
    finally:
        r.execute_command("ACL", "DELUSER", scratch)  # type: ignore[no-untyped-call]


def apply(r: redis.Redis, wanted: list[AclUser], where: str, *, keys: Keys | None = None,
          who: str = "", at: str = "") -> dict[str, str]:
    """Send every ``ACL SETUSER`` (after :func:`require_selectors` and
    :func:`check_rules`); a user that did not exist gets a new random password
    (returned, user -> password); an existing one keeps its own. A person's scope record
    (:meth:`Keys.acl_person`: its repos, plans, who gave them and when) is written
    before its user: a person's CLI never finds its user without it, and one written
    by an older coord is refused by its CLI until written again."""
    require_selectors(r, where)
    check_rules(r, wanted)
    created: dict[str, str] = {}
    existing = {_text(u) for u in r.acl_users()}
    for u in wanted:
        extra: list[str] = []
        if u.user not in existing:
            created[u.user] = secrets.token_urlsafe(24)
            extra.append(">" + created[u.user])
        name = person_of(u.user)
        if name is not None and keys is not None:
            r.set(keys.acl_person(name), scope_document(u, who=who, at=at))
        r.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", u.user, "on", *extra, *u.rules)
    return created


def save(r: redis.Redis) -> bool:
    """``ACL SAVE`` where the server keeps its users in an ACL file; False where it
    has none (its users live in redis.conf or only in memory)."""
    try:
        r.execute_command("ACL", "SAVE")  # type: ignore[no-untyped-call]
    except redis.ResponseError as exc:
        if "not configured to use an acl file" in str(exc).lower():
            return False
        raise
    return True


def rotate(r: redis.Redis, user: str, *, disconnect: bool = False) -> Rotated:
    """A new random password for ``user`` (one ``coord acl`` made), which replaces every
    password it had: the old one stops working at once. ``disconnect``: close the
    connections the user has open (else they keep working until they close)."""
    if not made_by_coord(user):
        raise UsageError(f"{user!r} is not a user coord acl makes (coord-supervisor, "
                         "coord-observer, coord-worker-REPO, coord-person-NAME)",
                         hint="rotate other users with ACL SETUSER USER resetpass '>NEW'")
    if r.acl_getuser(user) is None:
        raise NotFoundError(f"no ACL user {user!r} on this server",
                            hint="create it first: coord acl --apply (or --person NAME "
                            "--repos SEL --apply)")
    password = secrets.token_urlsafe(24)
    try:
        r.execute_command("ACL", "SETUSER", user,  # type: ignore[no-untyped-call]
                          "resetpass", ">" + password)
        dropped = int(r.execute_command("CLIENT", "KILL", "USER", user)  # type: ignore[no-untyped-call]
                      ) if disconnect else 0
        saved = save(r)
    except redis.ResponseError as exc:
        raise OperationFailed(f"Redis refused rotating {user}: {exc}") from None
    return Rotated(user, password, dropped, saved)
