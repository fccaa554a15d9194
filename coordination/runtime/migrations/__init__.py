"""Upgrades of what an older coord left behind, run once when a runtime is opened.

:func:`upgrade` is called by :meth:`Runtime.create <coordination.runtime.context.Runtime>`
(and ``Runtime.reader``) right after it has its Redis client, before the command reads
anything: no read of a sweep ever migrates. One module per step, in order:

- :mod:`.v01_checkpoint_hashes` (layout 2): coord 0.1's hash per checkpoint and hash of
  eager counts, moved into each sweep's record.
- :mod:`.v02_embedded_file` (embedded mode only): coord 0.2's file beside the catalog
  (embedded sweeps and history), carried over into the catalog's server. Its own marker
  (:attr:`Keys.migrated_02 <coordination.keys.Keys.migrated_02>`) and the file's rename
  make it once; without the file, it asks Redis nothing.

The namespace's layout version (:attr:`Keys.layout_version
<coordination.keys.Keys.layout_version>`) records the Redis steps done: an open reads it
(one GET) and runs only the steps above it, then records the latest. Each step is
idempotent, so two processes opening at once do the same work harmlessly. A failure
never fails the command: nothing is recorded, and the next open tries again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from coordination.keys import Keys
    from coordination.settings import Settings

log = logging.getLogger("coord.migrate")

#: The namespace's layout once every Redis step ran (that of :mod:`.v01_checkpoint_hashes`).
LAYOUT_VERSION = 2


def upgrade(r: redis.Redis, keys: Keys, *, catalog: Path | None = None,
            settings: Settings | None = None) -> None:
    """Bring ``keys``' namespace up to :data:`LAYOUT_VERSION`, and (``catalog``, embedded)
    carry the catalog's coord 0.2 file over: see the module docs."""
    upgrade_layout(r, keys)
    if catalog is not None and settings is not None:
        carry_over_02(r, keys, catalog, settings)


def layout_version(r: redis.Redis, keys: Keys) -> int:
    """The layout the namespace was brought to (0: never upgraded)."""
    raw = r.get(keys.layout_version)
    return int(raw) if raw is not None else 0


def upgrade_layout(r: redis.Redis, keys: Keys) -> bool:
    """Run the Redis steps the namespace's layout version says are not done, then record
    it; True when it was behind. A user that may not write (the web view's) or a Redis
    that does not answer leaves it for the next open (the command meets the latter
    itself)."""
    try:
        if layout_version(r, keys) >= LAYOUT_VERSION:
            return False
        # lazy: only a namespace never upgraded needs the step's code
        from coordination.runtime.migrations import v01_checkpoint_hashes

        v01_checkpoint_hashes.run(r, keys)
        r.set(keys.layout_version, LAYOUT_VERSION)
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.NoPermissionError) as exc:
        log.debug("namespace %s not upgraded now: %s", keys.namespace, exc)
        return False
    except redis.RedisError as exc:
        log.warning("what coord 0.1 recorded in namespace %s could not be moved to the "
                    "current layout (the next coord command tries again): %s",
                    keys.namespace, exc)
        return False
    return True


def carry_over_02(r: redis.Redis, keys: Keys, catalog: Path, settings: Settings) -> None:
    """Embedded: the catalog's coord 0.2 sweeps and history, carried over into its server
    once (:mod:`.v02_embedded_file`). A failure never fails the command: the old file
    stays as it was, unmarked, and the next command tries again."""
    # lazy: sqlite3 and the 0.2 format, for a catalog that still has a 0.2 file
    from coordination.runtime.migrations.v02_embedded_file import carry_over

    try:
        carry_over(r, keys, catalog, retention_days=settings.retention_days,
                   history_days=settings.history_days, events_maxlen=settings.events_maxlen)
    except Exception as exc:  # noqa: BLE001 - an old file must never stop coord from running
        log.warning("the sweeps and history coord 0.2 kept beside %s could not be carried "
                    "over to its embedded server (the next coord command tries again): %s",
                    catalog, exc)
