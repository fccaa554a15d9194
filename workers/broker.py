"""coord's Redis broker transport: kombu's, with its fatal paths made survivable.

``create_app`` selects this transport (``broker_transport``) for every
distributed app, so ``coord worker`` and the CLI publish and consume through it.

1. **Broker restart / network cut** (celery#10205, kombu#2007 family). When the
   connection drops, Celery's consumer first lets ``collect()`` detach the
   transport from its connection, then closes the channel; closing restores the
   unacknowledged messages, which needs a fresh client, whose parameters come
   from the (now ``None``) connection: ``AttributeError: 'NoneType' object has
   no attribute 'hostname'`` escapes as an *unrecoverable* error and the worker
   process exits (measured with kombu 5.7.0 on a Redis SIGKILL + restart). Here
   a restore that cannot reach Redis is logged and skipped: the messages stay in
   kombu's unacked hash in Redis, kombu hands them out again after the
   visibility timeout, and coord's supervisor re-sends a todo whose message
   nobody holds long before that. The consumer then reconnects as designed.

2. **A malformed message** (not JSON, or JSON that is not a kombu envelope)
   pushed onto a queue made ``json.loads`` raise inside the consumer's read, also
   fatal. Here it is set aside in coord's dead-letter list
   (``Keys.dead_letters``, read with ``coord dead-letters``), logged, and the
   consumer goes on as if the queue had been empty. A message Celery itself
   refuses (a body it cannot decode, an unknown task, pickle) is rejected as
   before, and a copy goes to the same list first.

3. **Acks after a reconnect.** A task that was running when the connection
   dropped acks through its old, detached channel when it ends, from Celery's
   event loop: the same AttributeError, also fatal. Acks and rejects that cannot
   reach Redis are logged; the message comes back after the visibility timeout
   and the claim turns the duplicate away.

4. **Cheaper acks_late bookkeeping.** A delivery's and an ack's unacked-hash writes
   go in a plain pipeline instead of MULTI/EXEC (see ``QoS.pipe_or_acquire``).

5. **No broker-side ack emulation by default.** kombu's Redis transport emulates
   acks with an unacked hash and index in Redis (4 commands per message) so that a
   dead worker's messages come back after the visibility timeout. coord does not
   need it: a todo whose worker died is sent again by the supervisor once its lease
   expires, and a queued todo whose message nobody holds any more once
   ``COORD_LOST_AFTER`` passes (checkpoints are the truth). So by default the
   transport runs with ``ack_emulation`` off: delivered messages are tracked in the
   worker's memory (:class:`MemoryQoS`), acks cost nothing, and a clean shutdown
   or a reconnect still puts back what the worker held and had not started.
   Setting ``COORD_VISIBILITY_TIMEOUT`` turns kombu's emulation back on, with that
   timeout (points 1 and 3 are about it).

6. **Sentinel failover** (``sentinel://`` URLs: :class:`SentinelTransport`). The
   pool asks the sentinels for the master at each connect (kombu's sentinel
   channel). A master demoted under a live connection answers ``READONLY`` to a
   write (celery#7946: "Unrecoverable error: ReadOnlyError") or ``UNBLOCKED`` to the
   BRPOP it was blocking; both are read here as a lost connection, so the consumer
   reconnects to the new master instead of exiting.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from queue import Empty  # what kombu raises for "nothing to get"
from typing import cast

import redis
from kombu.transport import redis as kredis
from kombu.transport import virtual

from coordination.connection.client import get_redis
from coordination.jsonable import JSONObject
from coordination.keys import Keys
from coordination.runtime.workers import WorkerRegistry
from coordination.runtime.context import every_setting

log = logging.getLogger("coord.broker")

DEAD_LETTER_RAW_BYTES = 64 * 1024
DEAD_LETTER_KEEP = 1000


def envelope_problem(raw: str | bytes) -> str | None:
    """Why ``raw`` (a queue item) is not a message kombu can deliver; None if it is."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "not UTF-8"
    try:
        payload = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return f"not JSON ({exc})"
    if not isinstance(payload, dict):
        return f"JSON {type(payload).__name__}, not an object"
    props = payload.get("properties")
    if not isinstance(props, dict):
        return "no 'properties' object"
    if "delivery_tag" not in props:
        return "no properties.delivery_tag"
    info = props.get("delivery_info")
    if not isinstance(info, dict) or "exchange" not in info or "routing_key" not in info:
        return "no properties.delivery_info with exchange and routing_key"
    body = payload.get("body")
    if body and props.get("body_encoding") == "base64":
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return "body is not valid base64"
    return None


def dead_letter(queue: str, raw: str | bytes, reason: str) -> None:
    """Keep a malformed message where a person can read it; never raises."""
    try:
        settings = every_setting()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        entry = {
            "queue": queue,
            "raw": text[:DEAD_LETTER_RAW_BYTES],
            "raw_bytes": len(raw) if isinstance(raw, (bytes, str)) else None,
            "reason": reason,
            "at": time.time(),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        }
        registry = WorkerRegistry(get_redis(settings), Keys(settings.namespace))
        registry.set_aside(entry, DEAD_LETTER_KEEP)
        log.error("set aside a malformed message from %s (%s); see `coord dead-letters`",
                  queue, reason)
    except Exception:  # a broken dead-letter store must not take the consumer down
        log.exception("malformed message from %s (%s) could not be kept; dropped", queue, reason)


def demoted(exc: BaseException) -> bool:
    """Is ``exc`` what a master demoted under a command answers? ``READONLY`` to a
    write (celery#7946), ``UNBLOCKED`` to a BRPOP blocked across the change."""
    return isinstance(exc, redis.exceptions.ReadOnlyError) or str(exc).startswith(
        ("UNBLOCKED", "READONLY"))


class Client(kredis.PrefixedStrictRedis):
    """The channel's client: a BRPOP reply that is no message is dead-lettered
    and read as "nothing there" (kombu then raises ``Empty`` and polls again)."""

    def parse_response(self, connection: object, command_name: str, **options: object
                       ) -> object:
        try:
            reply = super().parse_response(connection, command_name, **options)
        except redis.ResponseError as exc:
            if not demoted(exc):
                raise
            # The master this connection reached is a replica now (a failover):
            # a reconnect, which asks the sentinels again, not an unrecoverable error.
            disconnect = getattr(connection, "disconnect", None)
            if disconnect is not None:
                disconnect()
            raise redis.ConnectionError(f"the master was demoted: {exc}") from exc
        if command_name == "BRPOP" and reply:
            queue, item = reply
            problem = envelope_problem(item)
            if problem is not None:
                # The mixin has already taken the global prefix off the key;
                # kombu's priority queues add "\x06\x16<priority>".
                name = queue.decode() if isinstance(queue, bytes) else str(queue)
                dead_letter(name.split("\x06\x16", 1)[0], item, problem)
                return None
        return reply


class QoS(kredis.QoS):
    @contextmanager
    def pipe_or_acquire(self, pipe: redis.client.Pipeline | None = None,
                        client: redis.Redis | None = None) -> Iterator[redis.client.Pipeline]:
        """kombu's unacked bookkeeping (a delivery's ZADD + HSET, an ack's ZREM +
        HDEL), pipelined in one round trip but without MULTI/EXEC: 4 commands of
        the ~10 Celery spends per message, for an atomicity nothing needs.

        - A restore only takes index entries older than the visibility timeout,
          never one a delivery is writing now.
        - A restore reads the payload inside WATCH on the unacked hash
          (``restore_by_tag``, which brings its own transactional pipe and is left
          as it is): an ack's HDEL between its read and its EXEC aborts it, and its
          retry finds nothing to restore, as when the ack was one transaction.
        - Should a connection drop between the two commands, an index entry without
          its payload is dropped by the next restore, and a payload without its index
          entry is a few bytes never redelivered; coord's supervisor re-sends any
          todo whose message is gone either way.
        """
        if pipe is not None:
            yield pipe
        else:
            with self.channel.conn_or_acquire(client) as conn:
                yield conn.pipeline(transaction=False)

    def restore_unacked(self, client: redis.Redis | None = None) -> None:
        try:
            super().restore_unacked(client)
        except (AttributeError, *kredis.get_redis_error_classes()[0]) as exc:
            # See the module docstring (1): the messages stay unacked in Redis.
            delivered = self._delivered
            log.warning(
                "broker connection lost: %d unacknowledged message(s) left in Redis for "
                "redelivery (%s)", len(delivered or ()), exc,
            )
            if delivered:
                delivered.clear()

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)
        except (AttributeError, *kredis.get_redis_error_classes()[0]) as exc:
            # A task that finished after its channel's connection was lost acks
            # through the dead channel (celery acks from its event loop, where an
            # AttributeError is fatal). The message stays in kombu's unacked hash
            # and comes back after the visibility timeout: a duplicate the claim
            # turns away.
            log.warning("could not ack %s after the broker connection was lost (%s); "
                        "it comes back after the visibility timeout, as a harmless duplicate",
                        delivery_tag, exc)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            self._reject(delivery_tag, requeue)
        except (AttributeError, *kredis.get_redis_error_classes()[0]) as exc:
            log.warning("could not reject %s after the broker connection was lost (%s)",
                        delivery_tag, exc)

    def _reject(self, delivery_tag: str, requeue: bool) -> None:
        if not requeue:
            # Celery refused the message (undecodable body, unknown task, a
            # content type it does not accept): keep a copy before it goes.
            try:
                with self.channel.conn_or_acquire() as client:
                    entry = client.hget(self.unacked_key, delivery_tag)
                if entry:
                    raw, _exchange, routing_key = json.loads(entry)
                    dead_letter(str(routing_key), json.dumps(raw),
                                "refused by the worker (see its log)")
            except Exception as exc:  # keeping a copy is best effort
                log.warning("could not keep a copy of refused message %s: %s", delivery_tag, exc)
        super().reject(delivery_tag, requeue=requeue)


class MemoryQoS(virtual.QoS):
    """Delivered messages kept in the worker's memory only (``ack_emulation`` off).

    An ack forgets the message; a reject with requeue, a clean shutdown and a lost
    connection put it back on its queue (kombu's ``virtual.QoS``); a message Celery
    refuses is copied to the dead letters first, as with the emulation on.
    """

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if not requeue:
            message = self._delivered.get(delivery_tag)
            if message is not None:
                try:
                    info = message.delivery_info
                    dead_letter(str(info.get("routing_key")), json.dumps(message._raw),
                                "refused by the worker (see its log)")
                except Exception as exc:  # keeping a copy is best effort
                    log.warning("could not keep a copy of refused message %s: %s",
                                delivery_tag, exc)
        try:
            super().reject(delivery_tag, requeue=requeue)
        except (AttributeError, *kredis.get_redis_error_classes()[0]) as exc:
            log.warning("could not put back %s after the broker connection was lost (%s); "
                        "the supervisor sends its todo again", delivery_tag, exc)

    def restore_unacked(self) -> list[tuple[BaseException, object]]:
        errors = super().restore_unacked()
        if errors:
            log.warning("broker connection lost: %d unacknowledged message(s) could not be "
                        "put back (a todo running goes on under its lease; the supervisor "
                        "sends the others again)", len(errors))
        return []


class Channel(kredis.Channel):
    QoS = QoS

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if not self.ack_emulation:  # kombu picked its plain virtual.QoS: ours instead
            self.QoS = MemoryQoS  # type: ignore[assignment]  # kombu does the same

    def _create_client(self, asynchronous: bool = False) -> Client:
        """kombu builds a new synchronous client for every delivery's and every ack's
        bookkeeping, and a redis-py client costs more to build (its table of ~250
        response callbacks) than the commands it then sends: a sixth of a worker's
        CPU per todo. One per channel serves them all: a client is thread-safe (each
        command takes a connection from the pool), and a new pool (after a
        reconnect) gets a new client."""
        if asynchronous:
            return cast(Client, super()._create_client(asynchronous=True))
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = cast(Client, super()._create_client(asynchronous=False))
            self._sync_client = client
        return client

    _sync_client: Client | None = None

    # -- a prompt close ------------------------------------------------------------------
    # Closing a channel waits for the BRPOP it has in flight to answer, up to the BRPOP
    # timeout (a second): every warm shutdown, and each embedded sweep's end, waited it
    # out. The BRPOP's connection id is learnt once per connection (CLIENT ID), and a
    # close unblocks it (CLIENT UNBLOCK: the BRPOP answers "nothing" at once).
    _unblock_sock: object = None
    _unblock_id: int | None = None

    def _brpop_start(self, timeout: float | None = None) -> None:
        conn = getattr(self.client, "connection", None)
        sock = getattr(conn, "_sock", None)
        if conn is not None and sock is not None and sock is not self._unblock_sock:
            self._unblock_sock, self._unblock_id = sock, None
            try:
                conn.send_command("CLIENT", "ID")
                self._unblock_id = int(conn.read_response())
            except Exception as exc:  # noqa: BLE001 - an ACL without CLIENT: close waits
                log.debug("no CLIENT ID for the consumer's connection (%s)", exc)
        super()._brpop_start(timeout)

    def close(self) -> None:
        if self._in_poll and self._unblock_id is not None and not self.closed:
            try:
                self._create_client().client_unblock(self._unblock_id)
            except Exception as exc:  # noqa: BLE001 - then the close waits for the timeout
                log.debug("could not unblock the consumer's BRPOP (%s)", exc)
        super().close()

    def _get_client(self) -> Callable[..., Client]:
        super()._get_client()  # kombu's redis-py version check
        prefix = self.global_keyprefix or ""
        # Always the prefixed client class (an empty prefix prefixes nothing).
        return lambda *a, **kw: Client(*a, global_keyprefix=prefix, **kw)

    def _get(self, queue: str, timeout: float | None = None) -> JSONObject:
        # The non-blocking read path (``basic_get``, polling): same guard as BRPOP.
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                qkey = self._q_for_pri(queue, pri)
                item = client.rpop(qkey)
                while item and (problem := envelope_problem(item)) is not None:
                    dead_letter(queue, item, problem)
                    item = client.rpop(qkey)
                if item:
                    self._maybe_update_queues_expire(client, queue)
                    message: JSONObject = json.loads(item)  # envelope_problem found an object
                    return message
            self._maybe_update_queues_expire(client, queue)
            raise Empty()


class Transport(kredis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kredis.SentinelChannel):
    """coord's channel over the master a ``sentinel://`` URL's sentinels name.

    kombu's sentinel channel builds the connection pool (a redis-py
    ``SentinelConnectionPool``: every new connection asks the sentinels where the
    master is), coord's channel everything else (the guards above). After a
    failover the consumer's connection to the old master fails (refused, reset, or
    ``READONLY`` from a demoted master, which redis-py's sentinel connection turns
    into a ``ConnectionError``, celery#7946): a recoverable connection error, so
    the consumer reconnects, through a new pool, to the new master."""


class SentinelTransport(Transport):
    Channel = SentinelChannel
    default_port = kredis.SentinelTransport.default_port  # type: ignore[assignment]
    #: A demoted master's refusal is a reason to reconnect (to the new master).
    connection_errors = (*Transport.connection_errors, redis.exceptions.ReadOnlyError)
