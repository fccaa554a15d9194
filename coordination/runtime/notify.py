"""The notifications outbox in Redis: webhooks, what is due, the feed's cursors, a lease.

Everything a notifier keeps, so any worker can take the outbox over:

- the webhooks (``notify:`` of the catalog) as last published by a worker or CLI
  that read the catalog (``Keys.notify_targets``);
- the cursors of the event feed: the global stream's and each followed sweep's
  (``Keys.notify_cursors``): the notifier reads the event log after them, so an
  event is looked at once whoever reads it;
- one record per delivery (``Keys.notify_deliveries``), written once per
  (webhook, event) (``lua/notify_enqueue.lua``), the ids of those not done by when
  they are due (``Keys.notify_due``) and every id by creation (``Keys.notify_log``);
- each webhook's lane (``Keys.notify_lane``: its deliveries not yet done, in event
  order) and the lanes by when their first delivery is due (``Keys.notify_lanes``):
  a webhook gets one POST at a time, in event order, and a delivery waiting out a
  backoff holds its webhook's later ones (never another webhook's);
- the lease (``Keys.notify_lease``): one worker fills and delivers at a time, and
  every write it makes is checked against its token.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

from coordination.runtime.events import Event, _entries
from coordination.runtime.scripts import lua
from coordination.runtime.store import Store
from coordination.status import SWEEP_LIVE

#: How many deliveries ``coord notify log`` keeps (a delivery still due is kept anyway).
LOG_KEEP = 1000
#: How many stream entries one fill reads per stream.
PAGE = 500
GLOBAL = "global"


def lane_of(url: str) -> str:
    """A webhook's lane: its deliveries go one at a time, in event order."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def order_of(d: Mapping[str, Any]) -> int:
    """A delivery's place in its webhook's lane: the ``order`` its fill gave it, else
    (a delivery written before lanes) its event's stream millisecond."""
    got = d.get("order")
    if isinstance(got, int):
        return got
    try:
        return int(str(d.get("event_id") or "").split("-", 1)[0]) * 1000
    except ValueError:
        return 0


class DeliveryState(TypedDict):
    """Where one delivery stands: to whom, of what, how far (what ``coord notify log
    --json`` lists of it, url redacted)."""

    id: str
    url: str
    kind: str
    sweep_id: str | None
    todo_id: str | None
    status: str  # pending | delivered | failed (gave up)
    attempts: int
    created_at: float
    next_at: float | None
    delivered_at: float | None
    last_error: str | None
    last_status: int | None


class Delivery(DeliveryState):
    """One delivery's record: where it stands, and what it delivers how."""

    format: str
    secret_env: str | None
    event_id: str
    body: str  # the event, as delivered (JSON)
    order: NotRequired[int]  # its place in its webhook's lane (event order)


@dataclass(frozen=True)
class Read:
    """One stream's new entries for a fill: its name in the cursors, and the events."""

    stream: str
    events: list[Event]


class Outbox(Store):
    """The outbox's Redis state (see the module docstring)."""

    # -- webhooks -----------------------------------------------------------------
    def publish_targets(self, targets: Sequence[Mapping[str, object]]) -> None:
        """Keep the webhooks; the first time, the feed starts here (every event from
        now on is looked at, whenever a notifier first runs)."""
        start = self.now_id()
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.notify_targets, json.dumps(list(targets), sort_keys=True))
        if targets:
            pipe.hsetnx(self.keys.notify_cursors, GLOBAL, start)
        pipe.execute()

    def targets(self) -> list[dict[str, Any]]:
        raw = self.r.get(self.keys.notify_targets)
        if not raw:
            return []
        try:
            got = json.loads(raw)
        except ValueError:
            return []
        return [t for t in got if isinstance(t, dict)] if isinstance(got, list) else []

    # -- the lease ------------------------------------------------------------------
    def acquire(self, token: str, ttl: float) -> bool:
        """Take the outbox if nobody holds it, or renew it if this token does."""
        ms = max(1, int(ttl * 1000))
        if self.r.set(self.keys.notify_lease, token, nx=True, px=ms):
            return True
        return bool(lua("lease_extend")(self.r, [self.keys.notify_lease], [token, ms]))

    def release(self, token: str) -> None:
        lua("lease_release")(self.r, [self.keys.notify_lease], [token])

    def holder(self) -> str | None:
        v = self.r.get(self.keys.notify_lease)
        return None if v is None else str(v)

    # -- the feed -------------------------------------------------------------------
    def cursors(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.r.hgetall(self.keys.notify_cursors).items()}

    def save_cursors(self, moved: Mapping[str, str], dropped: Iterable[str] = ()) -> None:
        dropped = list(dropped)
        if not moved and not dropped:
            return
        pipe = self.r.pipeline(transaction=True)
        if moved:
            pipe.hset(self.keys.notify_cursors, mapping={k: v for k, v in moved.items()})
        if dropped:
            pipe.hdel(self.keys.notify_cursors, *dropped)
        pipe.execute()

    def stream_of(self, name: str) -> str:
        """The stream key behind a cursor name (``global`` or a sweep id)."""
        return self.keys.events if name == GLOBAL else self.keys.sweep_events(name)

    def read(self, cursors: Mapping[str, str]) -> list[Read]:
        """Each cursor's stream's entries after it (one round trip), a page each."""
        names = list(cursors)
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.xrange(self.stream_of(name), min=f"({cursors[name]}", max="+", count=PAGE)
        out = []
        for name, page in zip(names, pipe.execute()):
            out.append(Read(name, [Event.from_entry(str(i), f) for i, f in _entries(page)]))
        return out

    def now_id(self) -> str:
        """A stream id for "from now on" (the server's clock, as stream ids are)."""
        sec, usec = self.r.time()
        return f"{int(sec) * 1000 + int(usec) // 1000 - 1}-0"

    def sweep_live(self, sweep_ids: Sequence[str]) -> dict[str, bool]:
        """Is each sweep still live (queued, running, paused, rolling back)?"""
        pipe = self.r.pipeline(transaction=False)
        for sid in sweep_ids:
            pipe.hget(self.keys.sweep(sid), "status")
        out = {}
        for sid, raw in zip(sweep_ids, pipe.execute()):
            try:
                status = json.loads(raw) if raw else None
            except ValueError:
                status = raw
            out[sid] = status is not None and str(status) in SWEEP_LIVE
        return out

    # -- deliveries -----------------------------------------------------------------
    def enqueue(self, token: str, deliveries: Sequence[Delivery], now: float) -> int:
        """Record new deliveries (each id once, in its webhook's lane); -1: this token
        lost the outbox."""
        if not deliveries:
            return 0
        k = self.keys
        keys = [k.notify_deliveries, k.notify_due, k.notify_log, k.notify_lease, k.notify_lanes]
        index: dict[str, int] = {}
        args: list[str | int] = [token, LOG_KEEP, repr(now)]
        for d in deliveries:
            lane = lane_of(d["url"])
            if lane not in index:
                keys.append(k.notify_lane(lane))
                index[lane] = len(keys)  # Lua's KEYS are 1-based
            args += [d["id"], json.dumps(d, separators=(",", ":")), repr(d["next_at"] or now),
                     lane, index[lane], order_of(d)]
        return int(lua("notify_enqueue")(self.r, keys, args))

    def due(self, now: float, limit: int = 20) -> list[Delivery]:
        """Deliveries due by ``now``, whatever their lane (the lanes decide the order)."""
        ids = self.r.zrangebyscore(self.keys.notify_due, "-inf", repr(now), start=0, num=limit)
        return self.get([str(i) for i in ids])

    def due_lanes(self, now: float, limit: int = 100) -> list[str]:
        """The lanes whose first delivery is due, the longest waiting first."""
        got = self.r.zrangebyscore(self.keys.notify_lanes, "-inf", repr(now), start=0,
                                   num=limit)
        return [str(x) for x in got]

    def lane(self, lane: str, limit: int) -> tuple[list[Delivery], list[str]]:
        """A lane's first ``limit`` deliveries in event order, and the ids it lists
        whose record is gone."""
        ids = [str(i) for i in self.r.zrange(self.keys.notify_lane(lane), 0, limit - 1)]
        if not ids:
            return [], []
        found, missing = [], []
        for i, raw in zip(ids, self.r.hmget(self.keys.notify_deliveries, ids)):
            if raw:
                found.append(cast(Delivery, json.loads(raw)))
            else:
                missing.append(i)
        return found, missing

    def adopt(self, token: str, batch: int = 500) -> int:
        """Put deliveries due but in no lane (written by a coord before lanes) in their
        lanes; how many, -1 if this token lost the outbox."""
        k = self.keys
        adopted = 0
        start = 0
        while True:
            ids = [str(i) for i in self.r.zrange(k.notify_due, start, start + batch - 1)]
            if not ids:
                return adopted
            start += batch
            keys = [k.notify_deliveries, k.notify_due, k.notify_lease, k.notify_lanes]
            index: dict[str, int] = {}
            args: list[str | int] = [token]
            for d in self.get(ids):
                lane = lane_of(d["url"])
                if lane not in index:
                    keys.append(k.notify_lane(lane))
                    index[lane] = len(keys)
                args += [d["id"], lane, index[lane], order_of(d)]
            if len(args) == 1:
                continue
            got = int(lua("notify_adopt")(self.r, keys, args))
            if got < 0:
                return -1
            adopted += got

    def lanes_due(self, urls: Iterable[str]) -> dict[str, float]:
        """When each webhook's lane is next due (its first delivery's next try), by URL;
        a webhook with nothing pending is left out."""
        urls = list(dict.fromkeys(urls))
        if not urls:
            return {}
        got = self.r.zmscore(self.keys.notify_lanes, [lane_of(u) for u in urls])
        return {u: float(v) for u, v in zip(urls, got) if v is not None}

    def lanes_listed(self) -> int:
        """How many lanes have deliveries not yet done."""
        return int(self.r.zcard(self.keys.notify_lanes))

    def get(self, ids: Sequence[str]) -> list[Delivery]:
        if not ids:
            return []
        out = []
        for raw in self.r.hmget(self.keys.notify_deliveries, list(ids)):
            if raw:
                out.append(cast(Delivery, json.loads(raw)))
        return out

    def settle(self, token: str, d: Delivery, now: float | None = None) -> bool:
        """Write a delivery after an attempt (due again at ``next_at``, its lane with
        it; or done, and its lane's next one due now); False: this token lost the
        outbox (nothing written)."""
        k = self.keys
        lane = lane_of(d["url"])
        again = "" if d["status"] != "pending" or d["next_at"] is None else repr(d["next_at"])
        return bool(lua("notify_settle")(
            self.r, [k.notify_deliveries, k.notify_due, k.notify_lease, k.notify_lanes,
                     k.notify_lane(lane)],
            [token, d["id"], json.dumps(d, separators=(",", ":")), again, lane,
             repr(time.time() if now is None else now)]))

    def forget(self, token: str, lane: str, delivery_id: str, now: float) -> bool:
        """Take an id whose record is gone out of its lane (and the due set)."""
        k = self.keys
        return bool(lua("notify_settle")(
            self.r, [k.notify_deliveries, k.notify_due, k.notify_lease, k.notify_lanes,
                     k.notify_lane(lane)],
            [token, delivery_id, "", "", lane, repr(now)]))

    def record(self, d: Delivery) -> None:
        """Keep a delivery made outside the outbox (``coord notify test``) in the log."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.notify_deliveries, d["id"], json.dumps(d, separators=(",", ":")))
        pipe.zadd(self.keys.notify_log, {d["id"]: d["created_at"]})
        pipe.execute()

    def log(self, limit: int = 100) -> list[Delivery]:
        """The newest deliveries first."""
        ids = self.r.zrevrange(self.keys.notify_log, 0, max(0, limit - 1))
        return self.get([str(i) for i in ids])

    def pending(self) -> int:
        return int(self.r.zcard(self.keys.notify_due))

    def left_due(self, now: float) -> bool:
        """Is a delivery due by ``now`` with no notifier holding the outbox (nobody else
        will deliver it now)? One round trip: what a command that ran no sweep asks
        before it exits (coordination.cli.main)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.notify_lanes, "-inf", repr(now), start=0, num=1)
        pipe.exists(self.keys.notify_lease)
        lanes, held = pipe.execute()
        return bool(lanes) and not held
