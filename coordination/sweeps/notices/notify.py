"""Webhook notifications: the event log, read after a cursor, into an outbox; delivered.

One worker at a time holds the outbox (a lease in Redis, renewed every pass; a
SIGKILLed holder's lease expires and another worker's :class:`NotifierThread` takes
over where the cursors and the due set say). Each pass:

1. **fill**: read the event log after the saved cursors (the global stream, and the
   stream of every sweep it names, as the merged view does: todo events live in
   their sweep's stream only), match each event against every webhook's ``events``,
   and put one delivery per match in the outbox, its id derived from the webhook and
   the event's stream entry (an event read twice is still one delivery); then move
   the cursors. Nothing here knows which code emits an event: a kind added later
   (approval gates, waves) is delivered as soon as it is in the log.
2. **deliver**: start the due lanes (:class:`Lanes`: each webhook's deliveries, in
   event order, one POST at a time; different webhooks concurrently, on a bounded
   pool, so a slow endpoint holds its own lane, never another's). Each POST is
   signed (``X-Coord-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with
   the secret in the webhook's ``secret_env``), carries ``X-Coord-Delivery: <id>``,
   takes :data:`TIMEOUT` s at most in all, and never follows a redirect (a 3xx is a
   failure); a failure is tried again after an exponential backoff (1 s doubling, at
   most 5 minutes, given up after :data:`MAX_ATTEMPTS`), and its webhook's later
   deliveries wait behind it, so an endpoint back from an outage gets its backlog in
   order.

The sweep never waits on any of it: events are written by the sweep as always, and
the notifier only reads them, on its own threads. Delivery is at least once: a
holder killed after the endpoint accepted but before it recorded so delivers again,
under the same id, which is what the id is for. An embedded sweep's process has no
worker left once it ends: it delivers what is due before it exits
(:func:`deliver_left`, within :data:`TIMEOUT`); what failed then is delivered, when
due, from a detached process the next coord command that opens the catalog's runtime
starts on its way out (:mod:`coordination.sweeps.notices.notify_later`: the command never waits
on an endpoint), or by `coord notify log` itself, before it shows the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import redis

from coordination.runtime.context import Runtime
from coordination.runtime.events import Event
from coordination.runtime.leases import new_token
from coordination.runtime.notify import GLOBAL, Delivery, DeliveryState, Outbox, Read
from coordination.sweeps.notices.webhook import MASK as MASK
from coordination.sweeps.notices.webhook import TIMEOUT as TIMEOUT
from coordination.sweeps.notices.webhook import post as post
from coordination.sweeps.notices.webhook import redact as redact
from coordination.sweeps.notices.webhook import sign as sign

log = logging.getLogger("coord.notify")

#: Seconds between two passes of the notifier (fill, then deliver).
INTERVAL = 0.5
#: Attempts after which a delivery is given up (status ``failed``); about 35 minutes.
MAX_ATTEMPTS = 12
#: Webhooks delivered to at once (a lane each: one POST at a time per webhook).
LANES = 8
#: Deliveries one lane POSTs before it gives its thread back (the next pass resumes it).
BATCH = 20
#: The least time left worth starting a POST in.
MIN_POST = 0.1
BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0
#: The event kind of ``coord notify test``'s delivery.
TEST_KIND = "notify.test"


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    return float(min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** max(0, attempts - 1)))


def targets_of(catalog_notify: Iterable[Any]) -> list[dict[str, object]]:
    """The catalog's ``notify:`` as the outbox keeps them (plain data, for workers)."""
    return [{"url": t.url, "events": list(t.events), "secret_env": t.secret_env,
             "format": t.format} for t in catalog_notify]


def publish(rt: Runtime, catalog_notify: Iterable[Any]) -> None:
    """Tell the workers the catalog's webhooks (a worker delivers without a catalog of
    its own; a CLI that starts a sweep or tests the webhooks publishes them)."""
    rt.outbox().publish_targets(targets_of(catalog_notify))


def delivery_id(url: str, stream: str, event_id: str) -> str:
    """One (webhook, event) pair's id: the same whoever reads the event, and however often."""
    digest = hashlib.sha256(f"{url}\n{stream}\n{event_id}".encode()).hexdigest()
    return f"d-{digest[:24]}"


def payload(d: Mapping[str, object], event: Mapping[str, object]) -> bytes:
    """The POST body: the event (``json``), or a Slack-compatible message (``slack``)."""
    if d.get("format") == "slack":
        return json.dumps({"text": slack_text(event)}, separators=(",", ":")).encode()
    return json.dumps({"id": d["id"], "kind": event.get("kind"), "event": event},
                      separators=(",", ":")).encode()


def slack_text(event: Mapping[str, object]) -> str:
    kind = str(event.get("kind"))
    where = " ".join(str(x) for x in (event.get("sweep_id"), event.get("todo_id")) if x)
    extra = [f"{k}: {event[k]}" for k in ("status", "repo", "reason") if event.get(k)]
    return f"coord: *{kind}*" + (f" {where}" if where else "") + (
        " (" + "; ".join(extra) + ")" if extra else "")


def _new(target: Mapping[str, Any], stream: str, event: Event, now: float) -> Delivery:
    body = event.to_dict()
    return {
        "id": delivery_id(str(target["url"]), stream, event.id), "url": str(target["url"]),
        "format": str(target.get("format") or "json"),
        "secret_env": target.get("secret_env"), "kind": event.kind, "event_id": event.id,
        "sweep_id": event.sweep_id, "todo_id": event.todo_id,
        "body": json.dumps(body, separators=(",", ":")), "status": "pending", "attempts": 0,
        "created_at": now, "next_at": now, "delivered_at": None, "last_error": None,
        "last_status": None,
    }


def matches(target: Mapping[str, Any], kind: str) -> bool:
    return kind in (target.get("events") or ())


def fill(outbox: Outbox, token: str, targets: Sequence[Mapping[str, Any]], now: float) -> int:
    """One fill (see the module docstring); returns how many deliveries were new, -1
    when the outbox was lost meanwhile. With no cursor yet, the feed starts now."""
    cursors = outbox.cursors()
    if GLOBAL not in cursors:
        outbox.save_cursors({GLOBAL: outbox.now_id()})
        return 0
    moved: dict[str, str] = {}
    new: list[Delivery] = []
    started: dict[str, str] = {}
    quiet: list[str] = []

    def take(reads: Sequence[Read]) -> None:
        for rd in reads:
            stream = outbox.stream_of(rd.stream)
            if rd.events:
                moved[rd.stream] = rd.events[-1].id
            elif rd.stream != GLOBAL:
                quiet.append(rd.stream)
            for ev in rd.events:
                if rd.stream == GLOBAL:
                    if ev.sweep_id and ev.sweep_id not in cursors and ev.sweep_id not in started:
                        # Its todo events are in its own stream, from the millisecond before.
                        ms = int(ev.id.split("-")[0])
                        started[ev.sweep_id] = f"{max(ms - 1, 0)}-0"
                    if ev.of_todo:
                        continue  # a todo event's copy: its sweep's stream has it
                elif ev.todo_id is None:
                    continue  # a copy of a global event, delivered from there
                for t in targets:
                    if matches(t, ev.kind):
                        new.append(_new(t, stream, ev, now))

    take(outbox.read(cursors))
    if started:
        # The sweeps this pass started following, read in the same pass.
        first = dict(started)
        take(outbox.read(first))
        quiet = [q for q in quiet if q not in first]
        for sid, start in first.items():
            moved.setdefault(sid, start)
    if new:
        got = outbox.enqueue(token, in_order(new), now)
        if got < 0:
            return -1
    else:
        got = 0
    # A followed sweep that is over and had nothing new is dropped (a later run of it
    # names it in the global stream again, and is followed again from there).
    dropped = []
    if quiet:
        live = outbox.sweep_live(quiet)
        dropped = [s for s in quiet if not live.get(s)]
    outbox.save_cursors(moved, dropped)
    return got


def in_order(new: list[Delivery]) -> list[Delivery]:
    """One fill's deliveries in event order, each numbered (``order``: its place in its
    webhook's lane): by the stream id's millisecond (the global stream and the
    sweeps' share the server's clock), and within one millisecond by the emitter's
    ``ts`` (two streams number a millisecond's entries each their own way)."""
    def key(d: Delivery) -> tuple[int, float, int]:
        ms, _, seq = d["event_id"].partition("-")
        try:
            ts = float(json.loads(d["body"]).get("ts") or 0.0)
        except (ValueError, TypeError, AttributeError):
            ts = 0.0
        return int(ms), ts, int(seq or 0)

    rank: dict[int, int] = {}
    out = sorted(new, key=key)
    for d in out:
        ms = key(d)[0]
        n = rank.get(ms, 0)
        rank[ms] = n + 1
        d["order"] = ms * 1000 + min(n, 999)
    return out


def attempt(d: Delivery, now: float, environ: Mapping[str, str] | None = None, *,
            timeout: float = TIMEOUT) -> Delivery:
    """POST one delivery once; returns its record after the attempt."""
    environ = os.environ if environ is None else environ
    d = dict(d)  # type: ignore[assignment]
    event = json.loads(d["body"])
    body = payload(d, event)
    headers = {"Content-Type": "application/json", "User-Agent": "coord-notify",
               "X-Coord-Delivery": d["id"], "X-Coord-Event": d["kind"]}
    error: str | None = None
    status: int | None = None
    secret_env = d.get("secret_env")
    if secret_env:
        secret = environ.get(str(secret_env))
        if not secret:
            error = f"{secret_env} is not set in the delivering worker's environment"
        else:
            headers["X-Coord-Signature"] = sign(secret, int(time.time()), body)
    if error is None:
        status, error = post(d["url"], body, headers, timeout)
    d["attempts"] = int(d["attempts"]) + 1
    d["last_status"] = status
    if error is not None:
        d["last_error"] = error  # kept once delivered: what the endpoint went through
    if error is None:
        d["status"], d["delivered_at"], d["next_at"] = "delivered", time.time(), None
    elif d["attempts"] >= MAX_ATTEMPTS:
        d["status"], d["next_at"] = "failed", None
    else:
        d["next_at"] = now + backoff(d["attempts"])
    return d


def deliver_lane(outbox: Outbox, token: str, lane: str, now: float, *,
                 renew: Callable[[], bool] | None = None, timeout: float = TIMEOUT,
                 batch: int = BATCH, deadline: float | None = None) -> int:
    """POST one webhook's lane in event order, one at a time, up to ``batch``; stops at
    the first failure (its later deliveries wait behind it), a lost lease, or the
    ``deadline`` (``time.monotonic()``; each POST then gets what is left of it).
    Returns how many were delivered."""
    done = 0
    items, missing = outbox.lane(lane, batch)
    for gone in missing:
        outbox.forget(token, lane, gone, now)
    for d in items:
        budget = timeout
        if deadline is not None:
            budget = min(timeout, deadline - time.monotonic())
            if budget < MIN_POST:
                break
        if renew is not None and not renew():
            break
        after = attempt(d, now, timeout=budget)
        if not outbox.settle(token, after, now):
            break
        if after["status"] == "delivered":
            done += 1
            continue
        log.info("delivery %s (%s) to %s: %s", d["id"], d["kind"], redact(d["url"]),
                 after["last_error"])
        if after["status"] == "pending":
            break  # tried again after its backoff; the lane waits for it
    return done


class Lanes:
    """A bounded pool delivering the due lanes concurrently: a slow or failing webhook
    holds one thread (and its own later deliveries), never another webhook's."""

    def __init__(self, size: int = LANES) -> None:
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="coord-notify-lane")
        self.lock = threading.Lock()
        self.busy: set[str] = set()

    def submit_due(self, outbox: Outbox, token: str, now: float, *,
                   renew: Callable[[], bool] | None = None, timeout: float = TIMEOUT,
                   deadline: float | None = None) -> list[Future[int]]:
        """Start every due lane not already being delivered; their futures (each, how
        many it delivered)."""
        out: list[Future[int]] = []
        for lane in outbox.due_lanes(now):
            with self.lock:
                if lane in self.busy:
                    continue
                self.busy.add(lane)
            try:
                out.append(self.pool.submit(self._run, outbox, token, lane, now, renew,
                                            timeout, deadline))
            except RuntimeError:  # shut down meanwhile
                with self.lock:
                    self.busy.discard(lane)
                break
        return out

    def _run(self, outbox: Outbox, token: str, lane: str, now: float,
             renew: Callable[[], bool] | None, timeout: float, deadline: float | None) -> int:
        try:
            return deliver_lane(outbox, token, lane, now, renew=renew, timeout=timeout,
                                deadline=deadline)
        except redis.RedisError as exc:
            log.warning("notifications: Redis unavailable delivering (%s)", exc)
            return 0
        except Exception:  # noqa: BLE001 - a lane's bug must not end the notifier
            log.exception("notifications: delivering a lane failed")
            return 0
        finally:
            with self.lock:
                self.busy.discard(lane)

    def idle(self) -> bool:
        with self.lock:
            return not self.busy

    def close(self, wait: float) -> None:
        """Start nothing more; wait up to ``wait`` s for the lanes in flight (each POST
        is bounded by its timeout)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + wait
        while not self.idle() and time.monotonic() < deadline:
            time.sleep(0.05)


def deliver_due(outbox: Outbox, token: str, now: float, *,
                renew: Callable[[], bool] | None = None, timeout: float = TIMEOUT,
                lanes: Lanes | None = None) -> int:
    """POST what is due, webhooks concurrently, each webhook's in event order; wait for
    them; returns how many were delivered (a lane stops at a lost lease)."""
    own = lanes is None
    pool = Lanes() if lanes is None else lanes
    try:
        return sum(f.result() for f in pool.submit_due(outbox, token, now, renew=renew,
                                                       timeout=timeout))
    finally:
        if own:
            pool.close(0)


class NotifierThread:
    """The notifier of one worker process: takes the outbox when nobody holds it, then
    fills and starts the due lanes every :data:`INTERVAL` s (see the module
    docstring); the lanes deliver on their own threads, so a pass never waits on an
    endpoint."""

    def __init__(self, rt: Runtime, interval: float = INTERVAL,
                 lease_ttl: float | None = None) -> None:
        self.rt = rt
        self.interval = interval
        self.lease_ttl = lease_ttl or rt.settings.lease_ttl
        self.token = new_token()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holding = False
        self.lanes = Lanes()

    @property
    def timeout(self) -> float:
        """One POST's bound: :data:`TIMEOUT`, less under a short lease."""
        return min(TIMEOUT, self.lease_ttl / 2)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="coord-notify", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Stop after the current pass (no Redis call: safe in a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop, wait for the current pass and the POSTs in flight, and give the outbox
        back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 2)
        self.lanes.close(self.timeout + 1)
        if self.holding:
            try:
                self.rt.outbox().release(self.token)
            except redis.RedisError:
                pass

    def pause(self) -> float:
        """Seconds until the next pass: the holder's interval; a worker not holding the
        outbox only needs to notice a dead holder within about a lease (a fleet of idle
        workers costs Redis a few commands per lease each, not per half second)."""
        if self.holding:
            return self.interval
        return max(self.interval, self.lease_ttl / 2) * random.uniform(0.8, 1.2)

    def _run(self) -> None:
        # The first pass at once: an embedded sweep's workers live only as long as it
        # does, and waiting out half a lease first delayed its first deliveries.
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                self.pass_once()
            except redis.RedisError as exc:
                log.warning("notifications: Redis unavailable (%s); trying again", exc)
                self.holding = False
            except Exception:  # noqa: BLE001 - the worker must outlive a notifier bug
                log.exception("notifications: pass failed")
            delay = self.pause()

    def pass_once(self) -> None:
        outbox = self.rt.outbox()
        targets = outbox.targets()
        if not targets and not outbox.pending():
            self.holding = False
            return
        was = self.holding
        self.holding = outbox.acquire(self.token, self.lease_ttl)
        if not self.holding:
            return
        if not was and outbox.adopt(self.token) < 0:  # taken over: older deliveries too
            self.holding = False
            return
        now = time.time()
        if targets and fill(outbox, self.token, targets, now) < 0:
            self.holding = False
            return

        def renew() -> bool:
            if self._stop.is_set():  # stopping: a lane ends after the POST in flight
                return False
            self.holding = outbox.acquire(self.token, self.lease_ttl)
            return self.holding

        self.lanes.submit_due(outbox, self.token, time.time(), renew=renew,
                              timeout=self.timeout)


#: The runtimes (by id) whose outbox this process delivered with :func:`deliver_left`:
#: the CLI's exit does not try again what was tried a moment before.
_LEFT_DELIVERED: set[int] = set()


def delivered_left(rt: Runtime) -> bool:
    """Did this process already deliver ``rt``'s outbox (:func:`deliver_left`)?"""
    return id(rt) in _LEFT_DELIVERED


def deliver_left(rt: Runtime, budget: float = TIMEOUT) -> int:
    """Deliver what the outbox has due now, from this process, within ``budget`` s
    (webhooks concurrently): an embedded sweep's last events before its process
    exits, and what an earlier one left (`coord notify log`, and the detached process
    of :mod:`coordination.sweeps.notices.notify_later`). Nothing when a worker holds the outbox
    (it delivers). Returns how many deliveries are still pending."""
    _LEFT_DELIVERED.add(id(rt))
    outbox = rt.outbox()
    targets = outbox.targets()
    if not targets and not outbox.pending():
        return 0
    token = new_token()
    deadline = time.monotonic() + budget
    if not outbox.acquire(token, budget + 5):
        return outbox.pending()
    lanes = Lanes()
    try:
        if outbox.adopt(token) < 0:
            return outbox.pending()
        if targets and fill(outbox, token, targets, time.time()) < 0:
            return outbox.pending()
        while deadline - time.monotonic() >= MIN_POST:
            futures = lanes.submit_due(outbox, token, time.time(), deadline=deadline)
            if not futures:
                break
            wait(futures)
    finally:
        lanes.close(0)
        try:
            outbox.release(token)
        except redis.RedisError:
            pass
    return outbox.pending()


# -- what the CLI shows ---------------------------------------------------------------

class LogEntry(DeliveryState):
    """One delivery of ``coord notify log --json`` (its url redacted, its next try when
    its webhook's lane gets to it)."""


def log_entries(rt: Runtime, limit: int = 100) -> list[LogEntry]:
    """``coord notify log --json``: newest first, URLs redacted; a pending delivery's
    next try is when its webhook's lane gets to it (after the ones before it)."""
    outbox = rt.outbox()
    got = outbox.log(limit)
    lanes = outbox.lanes_due(d["url"] for d in got if d["status"] == "pending")
    out: list[LogEntry] = []
    for d in got:
        next_at = d.get("next_at")
        if d["status"] == "pending" and d["url"] in lanes:
            next_at = max(float(next_at or 0.0), lanes[d["url"]])
        out.append({"id": d["id"], "url": redact(d["url"]), "kind": d["kind"],
                    "sweep_id": d.get("sweep_id"), "todo_id": d.get("todo_id"),
                    "status": d["status"], "attempts": int(d["attempts"]),
                    "created_at": d["created_at"], "next_at": next_at,
                    "delivered_at": d.get("delivered_at"), "last_error": d.get("last_error"),
                    "last_status": d.get("last_status")})
    return out


@dataclass(frozen=True)
class TestResult:
    url: str  # redacted
    ok: bool
    status: int | None
    error: str | None
    delivery: str


def send_test(rt: Runtime, targets: Sequence[Mapping[str, Any]]) -> list[TestResult]:
    """``coord notify test``: one ``notify.test`` event POSTed to every webhook now
    (concurrently: the whole test takes one :data:`TIMEOUT` at most), from this
    process (signed as a worker would), and kept in the log."""
    now = time.time()

    def one(t: Mapping[str, Any]) -> Delivery:
        ev = Event(id=f"{int(now * 1000)}-0", kind=TEST_KIND, ts=now, sweep_id=None,
                   todo_id=None, data={"message": "a test delivery from coord notify test"})
        d = _new(t, "test", ev, now)
        seed = f"{t['url']}\n{now}".encode()
        d["id"] = f"t-{hashlib.sha256(seed).hexdigest()[:24]}"
        after = attempt(d, now)
        if after["status"] == "pending":
            after["status"], after["next_at"] = "failed", None  # a test is not retried
        return after

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(LANES, len(targets)),
                            thread_name_prefix="coord-notify-test") as pool:
        tried = list(pool.map(one, targets))
    out = []
    for after in tried:
        rt.outbox().record(after)
        out.append(TestResult(redact(after["url"]), after["status"] == "delivered",
                              after["last_status"], after["last_error"], after["id"]))
    return out
