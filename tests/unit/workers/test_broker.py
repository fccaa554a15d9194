"""coord's broker transport: malformed messages are set aside, never fatal.

(That a broker restart no longer ends the worker is proven against a real
redis-server in tests/chaos.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from workers import broker

pytestmark = pytest.mark.timeout(30)

GOOD = json.dumps({
    "body": "e30=", "content-type": "application/json", "headers": {"id": "x"},
    "properties": {"delivery_tag": "t", "body_encoding": "base64",
                   "delivery_info": {"exchange": "", "routing_key": "coord.repo.api"}},
})


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The unit tier's stand-in, as the broker reaches Redis (``get_redis``)."""
    from coordination.connection.client import reset_embedded, stand_in
    from coordination.keys import Keys

    reset_embedded()
    monkeypatch.setattr(broker, "get_redis", lambda *_a: stand_in())
    yield stand_in(), Keys("coord")
    reset_embedded()


@pytest.mark.parametrize("raw, why", [
    (b"this is not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ("[1, 2]", "not an object"),
    ('{"body": "e30="}', "no 'properties'"),
    ('{"properties": {"delivery_info": {}}}', "delivery_tag"),
    ('{"properties": {"delivery_tag": "t"}}', "delivery_info"),
    ('{"body": "!!", "properties": {"delivery_tag": "t", "body_encoding": "base64",'
     ' "delivery_info": {"exchange": "", "routing_key": "q"}}}', "base64"),
])
def test_envelope_problems_are_named(raw: Any, why: str) -> None:
    problem = broker.envelope_problem(raw)
    assert problem is not None and why in problem


def test_a_kombu_envelope_passes() -> None:
    assert broker.envelope_problem(GOOD) is None
    assert broker.envelope_problem(GOOD.encode()) is None


def test_brpop_of_garbage_reads_as_empty_and_is_dead_lettered(
    embedded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, keys = embedded
    replies = iter([(b"coord.repo.api", b"not json at all"),
                    (b"coord.repo.api\x06\x163", GOOD.encode())])
    # What kombu's prefixed client would hand back (the prefix already taken off).
    monkeypatch.setattr(broker.kredis.PrefixedStrictRedis, "parse_response",
                        lambda self, conn, cmd, **kw: next(replies))
    client = broker.Client(global_keyprefix="coord:celery:")
    assert client.parse_response(None, "BRPOP") is None  # kombu raises Empty, polls again
    assert client.parse_response(None, "BRPOP") == (b"coord.repo.api\x06\x163", GOOD.encode())
    letters = [json.loads(x) for x in r.lrange(keys.dead_letters, 0, -1)]
    assert len(letters) == 1
    assert letters[0]["queue"] == "coord.repo.api"
    assert letters[0]["raw"] == "not json at all" and "not JSON" in letters[0]["reason"]


def test_dead_letters_are_capped_and_truncated(embedded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r, keys = embedded
    monkeypatch.setattr(broker, "DEAD_LETTER_KEEP", 3)
    for i in range(5):
        broker.dead_letter("coord.repo.api", "x" * (broker.DEAD_LETTER_RAW_BYTES + 10), f"r{i}")
    letters = [json.loads(x) for x in r.lrange(keys.dead_letters, 0, -1)]
    assert [e["reason"] for e in letters] == ["r4", "r3", "r2"]
    assert len(letters[0]["raw"]) == broker.DEAD_LETTER_RAW_BYTES
    assert letters[0]["raw_bytes"] == broker.DEAD_LETTER_RAW_BYTES + 10


def test_a_broken_dead_letter_store_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(broker, "get_redis", boom)  # the name dead_letter calls
    broker.dead_letter("q", b"junk", "not JSON")  # logged, not raised


def test_distributed_app_uses_the_guarded_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.settings import Settings
    from workers.app import create_app

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert app.conf.broker_transport == "workers.broker:Transport"
    with app.connection_for_write() as conn:
        assert conn.transport_cls == "workers.broker:Transport"
        assert conn.transport.Channel is broker.Channel


def _calls(r: redis.Redis) -> dict[str, int]:
    """Commands the server ran since the last CONFIG RESETSTAT (the probes left out)."""
    stats: Any = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()
            if k not in ("cmdstat_config|resetstat", "cmdstat_info")}


def test_a_delivery_and_its_ack_keep_kombus_bookkeeping_without_multi(redis_server: Any) -> None:
    """acks_late on a real redis-server through coord's transport: a delivered message
    is in kombu's unacked hash and index (so a dead worker's message comes back after
    the visibility timeout) and its ack removes both; each is one pipelined round trip
    of two commands, with no MULTI/EXEC around them."""
    from kombu import Connection

    url = f"redis://127.0.0.1:{redis_server.port}/3"
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    with Connection(url, transport=broker.Transport) as conn:
        q = conn.SimpleQueue("acks-late-probe")
        q.put({"todo": "TODO-1"})
        r.config_resetstat()
        msg = q.get(block=True, timeout=5)
        assert msg.payload == {"todo": "TODO-1"}
        tag = msg.delivery_tag
        assert r.zscore("unacked_index", tag) is not None
        assert r.hget("unacked", tag) is not None
        delivered = _calls(r)
        r.config_resetstat()
        msg.ack()
        acked = _calls(r)
        assert r.zscore("unacked_index", tag) is None and r.hget("unacked", tag) is None
        q.close()
    r.close()
    assert delivered.get("zadd") == 1 and delivered.get("hset") == 1, delivered
    assert acked == {"zrem": 1, "hdel": 1}, acked
    assert "multi" not in delivered and "exec" not in delivered, delivered


def test_deliveries_and_acks_share_one_client_per_channel(redis_server: Any) -> None:
    """kombu built a new redis-py client for every delivery's and every ack's
    bookkeeping (a sixth of a worker's CPU per todo); the channel keeps one, and
    builds another only for a new connection pool (after a reconnect)."""
    from kombu import Connection

    url = f"redis://127.0.0.1:{redis_server.port}/3"
    built: list[object] = []
    real_init = broker.Client.__init__

    def counting(self: Any, *a: Any, **kw: Any) -> None:
        built.append(self)
        real_init(self, *a, **kw)

    with Connection(url, transport=broker.Transport) as conn:
        q = conn.SimpleQueue("one-client-probe")
        for i in range(5):
            q.put({"i": i})
        broker.Client.__init__ = counting  # type: ignore[method-assign]
        try:
            for _ in range(5):
                q.get(block=True, timeout=5).ack()
        finally:
            broker.Client.__init__ = real_init  # type: ignore[method-assign]
        channel = q.consumer.channel
        client = channel._create_client()
        assert channel._create_client() is client
        assert len(built) <= 1, f"{len(built)} clients built for 5 deliveries and acks"
        channel._pool = None  # what a reconnect does: the next client is the new pool's
        assert channel._create_client() is not client
        q.close()


def test_ack_emulation_is_off_unless_a_visibility_timeout_is_set() -> None:
    from coordination.dispatch.app import celery_app
    from coordination.settings import Settings

    off = celery_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert off.conf.broker_transport_options["ack_emulation"] is False
    on = celery_app(Settings(redis_url="redis://127.0.0.1:1/0", visibility_timeout=900))
    assert on.conf.broker_transport_options["ack_emulation"] is True
    assert on.conf.broker_transport_options["visibility_timeout"] == 900


def test_without_ack_emulation_a_delivery_and_its_ack_cost_redis_nothing(
        redis_server: Any) -> None:
    """coord's default: kombu keeps no unacked hash or index in Redis (the supervisor
    re-sends what a dead worker held); a delivery is its BRPOP, an ack is free."""
    from kombu import Connection

    url = f"redis://127.0.0.1:{redis_server.port}/3"
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    with Connection(url, transport=broker.Transport,
                    transport_options={"ack_emulation": False}) as conn:
        q = conn.SimpleQueue("no-emulation-probe")
        assert isinstance(q.consumer.channel.qos, broker.MemoryQoS)
        q.put({"todo": "TODO-1"})
        r.config_resetstat()
        msg = q.get(block=True, timeout=5)
        msg.ack()
        calls = _calls(r)
        q.close()
    assert msg.payload == {"todo": "TODO-1"}
    assert not {"zadd", "hset", "zrem", "hdel", "multi"} & set(calls), calls
    assert not r.exists("unacked") and not r.exists("unacked_index")
    r.close()


def test_without_ack_emulation_held_messages_go_back_on_close_and_refused_ones_are_kept(
        redis_server: Any, embedded: Any) -> None:
    """What a worker held and had not started goes back on its queue when its channel
    closes (a warm shutdown, a reconnect); a message Celery refuses is copied to the
    dead letters before it goes."""
    from kombu import Connection

    er, keys = embedded
    url = f"redis://127.0.0.1:{redis_server.port}/3"
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    with Connection(url, transport=broker.Transport,
                    transport_options={"ack_emulation": False}) as conn:
        q = conn.SimpleQueue("held-probe")
        q.put({"todo": "TODO-1"})
        q.put({"todo": "TODO-2"})
        held = q.get(block=True, timeout=5)
        refused = q.get(block=True, timeout=5)
        refused.reject()
        assert r.llen("held-probe") == 0
        q.consumer.channel.qos.restore_unacked_once()
        back = [json.loads(x) for x in r.lrange("held-probe", 0, -1)]
        q.close()
    assert held.payload == {"todo": "TODO-1"}
    assert len(back) == 1 and back[0]["headers"].get("redelivered") in (True, None)
    letters = [json.loads(x) for x in er.lrange(keys.dead_letters, 0, -1)]
    assert len(letters) == 1 and "refused" in letters[0]["reason"]
    import base64
    assert b"TODO-2" in base64.b64decode(json.loads(letters[0]["raw"])["body"])
    r.close()


def test_closing_a_consumer_does_not_wait_out_its_brpop(redis_server: Any) -> None:
    """A channel closing with a BRPOP in flight used to wait for its answer, up to the
    BRPOP timeout (a second by default; 30 s here): every warm shutdown waited it out.
    The close unblocks it (CLIENT UNBLOCK) and returns at once."""
    import socket

    from kombu import Connection

    url = f"redis://127.0.0.1:{redis_server.port}/3"
    with Connection(url, transport=broker.Transport,
                    transport_options={"polling_interval": 30}) as conn:
        q = conn.SimpleQueue("prompt-close-probe")
        channel = q.consumer.channel
        q.consumer.consume()
        with pytest.raises(socket.timeout):
            conn.drain_events(timeout=0.2)  # leaves the BRPOP waiting in Redis
        assert channel._in_poll and channel._unblock_id is not None
        t0 = time.monotonic()
        channel.close()
        took = time.monotonic() - t0
    assert took < 10, f"the close waited {took:.1f} s for the BRPOP"
