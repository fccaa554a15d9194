"""Which catalog a namespace belongs to.

Two installations of coord (two catalogs) on one Redis with one namespace would share
queues: the worker of one catalog's ``api`` would run the other catalog's todos in its
own checkout. So the first worker or CLI that uses a namespace records its catalog
there (:attr:`~coordination.keys.Keys.catalog_claim`, set once with ``SET NX``), and
the workers and CLIs of any other catalog refuse the namespace with an error naming
both catalogs and the ways out: a namespace of their own (``COORD_NAMESPACE``), or
``COORD_SHARE_NAMESPACE=1`` where it is the same catalog seen from elsewhere (a copy on
another machine, a container mounting it at another path). A sharing process neither
checks nor claims, so a container that starts first does not take the namespace from
the catalog it copies.

A catalog is known by its resolved path and the host it is on: nothing in the file
names it, and the same catalog on two machines cannot be told from two catalogs that
happen to look alike. Embedded mode has a server per catalog: nothing to claim.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.exceptions import NoPermissionError

from coordination.errors import SettingsError
from coordination.keys import Keys
from coordination.redis_url import endpoint

HINT = ("give this catalog a namespace of its own (COORD_NAMESPACE=NAME), or, if it is the "
        "same catalog (a copy on another machine or in a container), set "
        "COORD_SHARE_NAMESPACE=1; see the docs' settings reference")


@dataclass(frozen=True)
class CatalogIdentity:
    path: str
    host: str

    @classmethod
    def of(cls, catalog: Path) -> CatalogIdentity:
        return cls(str(Path(catalog).resolve()), socket.gethostname())

    def __str__(self) -> str:
        return f"{self.path} on {self.host}"

    def to_json(self) -> str:
        return json.dumps({"catalog": self.path, "host": self.host, "since": time.time()})


def check_claim(r: redis.Redis, keys: Keys, catalog: Path, *, share: bool = False,
                url: str | None = None) -> None:
    """Claim ``keys.namespace`` for ``catalog`` if nobody has; raise :class:`SettingsError`
    (exit 2) if another catalog has. One GET once claimed; a first use adds one
    MULTI/EXEC (``SET NX`` then ``GET``: whoever won, the reply says who)."""
    if share:
        return
    mine = CatalogIdentity.of(catalog)
    raw = r.get(keys.catalog_claim)
    if raw is None:
        try:
            pipe = r.pipeline(transaction=True)
            pipe.set(keys.catalog_claim, mine.to_json(), nx=True)
            pipe.get(keys.catalog_claim)
            raw = pipe.execute()[1]
        except NoPermissionError:
            return  # a read-only user (the web view's) reads; it never claims
    theirs, since = _parse(raw)
    if theirs == mine:
        return
    where = f" on {endpoint(url)}" if url else ""
    raise SettingsError(
        f"namespace {keys.namespace!r}{where} belongs to another catalog: {theirs or raw!s}"
        f"{since}; this one is {mine}",
        hint=HINT,
    )


def _parse(raw: object) -> tuple[CatalogIdentity | None, str]:
    """The claimant of a stored claim and ' (since DATE)', or (None, '') if unreadable."""
    try:
        data = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        who = CatalogIdentity(str(data["catalog"]), str(data["host"]))
    except (ValueError, TypeError, KeyError):
        return None, ""
    try:
        since = time.strftime(" (since %Y-%m-%d %H:%M UTC)", time.gmtime(float(data["since"])))
    except (ValueError, TypeError, KeyError, OverflowError):
        since = ""
    return who, since

