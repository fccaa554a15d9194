"""The web view's trust boundary (issue 23): it answers only requests that name it
(DNS rebinding), a garbage event id is a 400 (never a traceback cutting the stream), and
event streams are bounded (a cap on open streams, a cap on what one may fall behind).

Unit tests over a fakeredis runtime with starlette's TestClient; tests/integration/
test_ui_streams.py holds a thousand real streams open against `coord ui`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from coordination.runtime.context import Runtime
from coordination.settings import load_settings
from coordination.ui.app import create_app, local_hosts
from coordination.ui.feeds import (
    EventHub,
    Message,
    Overflow,
    Subscriber,
    parse_event_id,
)
from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import run_sweep, write_catalog

pytestmark = pytest.mark.timeout(60)

LOCAL = ["localhost", "localhost:8765", "LocalHost:80", "127.0.0.1", "127.0.0.1:8765",
         "[::1]", "[::1]:8765"]
FOREIGN = ["evil.example", "evil.example:8765", "localhost.evil.example",
           "127.0.0.1.nip.io", "evil.localhost", "[::2]:8765", "0.0.0.0", "", "local host",
           "localhost:8765@evil.example"]


@pytest.fixture
def passed_sweep(rt: Runtime, tmp_path: Path) -> tuple[Path, str]:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    _svc, sid, st = run_sweep(rt, eco)
    assert st["status"] == "succeeded"
    return eco, sid


def get(app: ASGIApp, url: str, host: str, **kw: object) -> tuple[int, str, dict[str, str]]:
    r = TestClient(app).get(url, headers={"Host": host}, **kw)  # type: ignore[arg-type]
    return r.status_code, r.text, dict(r.headers)


# -- Host ------------------------------------------------------------------------------


def test_localhost_in_every_spelling_is_answered(rt: Runtime, passed_sweep: tuple[Path, str]) -> None:
    eco, sid = passed_sweep
    app = create_app(rt, eco)
    for host in LOCAL:
        for url in ("/", "/api/sweeps", f"/api/sweeps/{sid}/events"):
            code, text, _ = get(app, url, host)
            assert code == 200, (host, url, text)


def test_any_other_host_is_refused_on_every_route_before_auth(
        rt: Runtime, passed_sweep: tuple[Path, str]) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1 reaches the server, but its
    requests name evil.example. They learn nothing, not even that auth is on."""
    eco, sid = passed_sweep
    for app in (create_app(rt, eco), create_app(rt, eco, auth="ana:s3cret")):
        for host in FOREIGN:
            for url in ("/", f"/sweeps/{sid}", "/api/sweeps", f"/api/sweeps/{sid}",
                        f"/api/sweeps/{sid}/events?after=0-0", "/static/app.js"):
                code, text, headers = get(app, url, host)
                assert code in (400, 421), (host, url, code)
                assert len(text) < 100 and sid not in text and "<" not in text, text
                assert "www-authenticate" not in headers


def test_configured_names_are_answered(rt: Runtime, passed_sweep: tuple[Path, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    eco, _sid = passed_sweep
    monkeypatch.setenv("COORD_UI_HOSTS", " coord.example.com, *.lan ,10.1.2.3,::1")
    configured = Runtime.create(load_settings(), client=rt.redis)  # the same stand-in
    assert configured.settings.ui_host_names == ("coord.example.com", "*.lan", "10.1.2.3",
                                                 "[::1]")
    app = create_app(configured, eco)
    for host in ("coord.example.com", "COORD.example.com:443", "box.lan", "a.box.lan:8765",
                 "10.1.2.3:8765", *LOCAL):
        assert get(app, "/api/sweeps", host)[0] == 200, host
    for host in ("evil.example", "lan", "coord.example.com.evil.example", "10.1.2.4"):
        assert get(app, "/api/sweeps", host)[0] == 400, host
    # Without the setting, the same names are refused.
    assert get(create_app(rt, eco), "/api/sweeps", "coord.example.com")[0] == 400


def test_coord_ui_answers_its_bound_address_too() -> None:
    """`coord ui --address 192.168.1.5` is reached as http://192.168.1.5:PORT/ (a literal
    address: nothing to rebind); a wildcard bind adds no name."""
    assert local_hosts("192.168.1.5")[-1] == "192.168.1.5"
    assert local_hosts("fe80::1")[-1] == "[fe80::1]"
    assert local_hosts("0.0.0.0") == local_hosts("::") == local_hosts()


def test_a_bad_coord_ui_hosts_exits_2_naming_it(example_catalog: Path) -> None:
    for bad in ("*", "coord.example.com:8765", "http://coord.example.com"):
        r = coord(example_catalog, "ui", env={"COORD_UI_HOSTS": bad}, timeout=30)
        clean_error(r, 2)
        assert "COORD_UI_HOSTS" in r.stderr, r.stderr


# -- event ids ---------------------------------------------------------------------------

BAD_IDS = ["garbage", "1-2-3", "-1", "$", "+", "1-", "0x10", " 1-0", "1-0;", "1_000",
           "18446744073709551616-0", "1-18446744073709551616", "9" * 25, "1.5", "<script>"]


def test_bad_event_ids_are_answered_400(rt: Runtime, passed_sweep: tuple[Path, str]) -> None:
    eco, sid = passed_sweep
    client = TestClient(create_app(rt, eco), base_url="http://localhost")
    url = f"/api/sweeps/{sid}/events"
    for raw in BAD_IDS:
        r = client.get(url, params={"after": raw})
        assert r.status_code == 400, (raw, r.status_code, r.text)
        assert "after" in r.json()["error"]
        r = client.get(url, headers={"Last-Event-ID": raw}, params={"after": "0-0"})
        assert r.status_code == 400, (raw, r.status_code, r.text)
        assert "Last-Event-ID" in r.json()["error"]


def test_good_event_ids_stream_to_the_end(rt: Runtime, passed_sweep: tuple[Path, str]) -> None:
    eco, sid = passed_sweep
    client = TestClient(create_app(rt, eco), base_url="http://localhost")
    last = rt.events.last_id(sid)
    for after in ("0", "0-0", "1", "1-0", "18446744073709551615-18446744073709551615", last):
        with client.stream("GET", f"/api/sweeps/{sid}/events", params={"after": after}) as r:
            assert r.status_code == 200, (after, r.read())
            text = "".join(r.iter_text())
        assert text.rstrip().splitlines()[-1] == 'data: {"status":"succeeded"}', (after, text)
        assert "event: end" in text
    # A reconnect's Last-Event-ID wins over the page's ?after=.
    with client.stream("GET", f"/api/sweeps/{sid}/events?after=0-0",
                       headers={"Last-Event-ID": last}) as r:
        text = "".join(r.iter_text())
    assert "event: todo" not in text and "event: end" in text


def test_parse_event_id() -> None:
    assert parse_event_id("5") == "5-0"
    assert parse_event_id("1700000000000-3") == "1700000000000-3"
    assert all(parse_event_id(raw) is None for raw in BAD_IDS)


# -- caps --------------------------------------------------------------------------------


def test_streams_past_the_cap_get_503_and_ended_streams_free_their_place(
        rt: Runtime, passed_sweep: tuple[Path, str]) -> None:
    eco, sid = passed_sweep
    full = TestClient(create_app(rt, eco, max_streams=0), base_url="http://localhost")
    r = full.get(f"/api/sweeps/{sid}/events")
    assert r.status_code == 503 and "too many open event streams" in r.text
    assert r.headers["retry-after"]
    assert full.get("/api/sweeps").status_code == 200  # pages still answer
    one = TestClient(create_app(rt, eco, max_streams=1), base_url="http://localhost")
    for _ in range(3):  # each ended stream gives its place back
        with one.stream("GET", f"/api/sweeps/{sid}/events?after=0-0") as r:
            assert r.status_code == 200
            assert "event: end" in "".join(r.iter_text())
    # Refused ones (404, 400) take no place either.
    for _ in range(3):
        assert one.get("/api/sweeps/nope/events").status_code == 404
    with one.stream("GET", f"/api/sweeps/{sid}/events?after=0-0") as r:
        assert r.status_code == 200


def test_the_hub_counts_open_streams_up_to_its_cap(rt: Runtime) -> None:
    hub = EventHub(rt, max_streams=2)
    assert hub.admit() and hub.admit() and not hub.admit()
    hub.release()
    assert hub.admit() and not hub.admit()


def test_a_subscriber_that_falls_behind_is_dropped() -> None:
    """Past its cap a stream ends (the browser reconnects from its last id) rather than
    keep an unbounded queue."""

    async def run() -> None:
        sub = Subscriber(asyncio.get_running_loop(), cap=3)
        assert await sub.next(0.01) == []
        sub.take([Message("todo", {}, "1-0"), Message("todo", {}, "2-0")])
        assert [m.id for m in await sub.next(1)] == ["1-0", "2-0"]
        sub.take([Message("todo", {}, f"{i}-0") for i in range(3, 7)])
        with pytest.raises(Overflow):
            await sub.next(1)

    asyncio.run(run())


@pytest.fixture
def hub(rt: Runtime) -> Iterator[EventHub]:
    h = EventHub(rt, block_ms=50)
    yield h


def test_one_reader_follows_every_watched_sweep_and_stops_with_the_last(
        hub: EventHub, passed_sweep: tuple[Path, str]) -> None:
    """Streams of an ended sweep: the reader sends each subscriber ``end`` once, and
    with nobody watching, no reader thread is left."""
    import threading

    from tests.waiting import wait_for

    _eco, sid = passed_sweep

    async def run() -> list[list[Message]]:
        loop = asyncio.get_running_loop()
        subs = [Subscriber(loop) for _ in range(50)]
        for sub in subs:
            await asyncio.to_thread(hub.join, sid, sub)
        got = [await sub.next(10) for sub in subs]
        for sub in subs:
            hub.leave(sid, sub)
        return got

    got = asyncio.run(run())
    assert all(g and g[-1].event == "end" and g[-1].data == {"status": "succeeded"}
               for g in got), got[:2]
    assert hub.watched() == 0
    wait_for(lambda: not any(t.name == "coord-ui-events" for t in threading.enumerate()),
             timeout=10, what="the reader thread to stop")
