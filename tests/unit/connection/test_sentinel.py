"""``sentinel://`` URLs (validation, redaction, what each client is given) and the
replica wait of starts, renewals and finishes (``WAIT``), without servers."""

from __future__ import annotations

from typing import Any, cast

import pytest
import redis

from coordination.connection.client import NotReplicated, _replicas_seen, stand_in
from coordination.keys import Keys
from coordination.redis_url import (
    celery_url,
    endpoint,
    is_tls,
    redact_url,
    sentinel_target,
    tls_options,
    url_problem,
)
from coordination.runtime.leases import LeaseManager
from coordination.runtime.transitions import StartVerdict, Transitions

URL = "sentinel://user:p%40ss@s1:26380,[::1],s3/2?master=main"


def test_a_sentinel_url_names_its_sentinels_master_db_and_credentials() -> None:
    assert url_problem(URL) is None
    t = sentinel_target(URL)
    assert t.sentinels == (("s1", 26380), ("::1", 26379), ("s3", 26379))
    assert (t.master, t.db, t.username, t.password, t.tls) == ("main", 2, "user", "p@ss", {})
    assert redact_url(URL) == "sentinel://user:***@s1:26380,[::1],s3/2?master=main"
    assert endpoint(URL) == "master 'main' of sentinels s1:26380,[::1]:26379,s3:26379"
    # kombu's form: one URL per sentinel, ';'-separated; the master travels apart.
    assert celery_url(URL) == ("sentinel://user:p%40ss@s1:26380/2;sentinel://user:p%40ss@[::1]/2;"
                               "sentinel://user:p%40ss@s3/2")


def test_ssl_true_speaks_tls_to_sentinels_and_master() -> None:
    url = "sentinel://s1/0?master=m&ssl=true&ssl_cert_reqs=none&ssl_ca_certs=/ca.pem"
    assert url_problem(url) is None and is_tls(url)
    assert sentinel_target(url).tls == {"ssl": True, "ssl_cert_reqs": "none",
                                        "ssl_ca_certs": "/ca.pem"}
    assert tls_options(url) is not None
    assert not is_tls("sentinel://s1/0?master=m")


@pytest.mark.parametrize(("url", "says"), [
    ("sentinel://:pw-secret@s1/0", "needs ?master=NAME"),
    ("sentinel://:pw-secret@/0?master=m", "at least one sentinel"),
    ("sentinel://:pw-secret@s1,,s2/0?master=m", "empty host"),
    ("sentinel://:pw-secret@s1:0/0?master=m", "port must be"),
    ("sentinel://:pw-secret@s1/db?master=m", "database must be"),
    ("sentinel://:pw-secret@s1/0?master=m&ssl_ca_certs=/x", "without ssl=true"),
    ("sentinel://:pw-secret@s1/0?master=m&ssl=maybe", "ssl must be true or false"),
    ("sentinel://:pw-secret@s1/0?master=m&timeout=3", "unsupported query parameter timeout"),
])
def test_a_bad_sentinel_url_says_what_is_wrong_without_its_password(url: str, says: str) -> None:
    problem = url_problem(url)
    assert problem is not None and says in problem, problem
    assert "pw-secret" not in problem


class Replicas:
    """A client whose WAIT answers ``acked`` and whose master (replication id
    ``replid``) has ``online`` replicas in sync and one syncing (the stand-in has no
    replication)."""

    def __init__(self, acked: int, online: int = 1) -> None:
        self.r = stand_in()
        self.acked = acked
        self.online = online
        self.replid = "r1"
        self.waits: list[tuple[int, int]] = []
        _replicas_seen.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.r, name)

    def replication(self) -> dict[str, Any]:
        return {"role": "master", "master_replid": self.replid,
                **{f"slave{i}": {"state": "online"} for i in range(self.online)},
                "slave9": {"state": "wait_bgsave"}}

    def info(self, section: str) -> dict[str, Any]:
        assert section == "replication"
        return self.replication()

    def pipeline(self, transaction: bool = True) -> Any:
        outer = self
        pipe = self.r.pipeline(transaction=False)
        fixed: dict[int, Any] = {}

        class Pipe:
            n = 0

            def evalsha(self, *a: Any) -> None:
                Pipe.n += 1
                pipe.evalsha(*a)

            def eval(self, *a: Any) -> None:
                Pipe.n += 1
                pipe.eval(*a)

            def wait(self, n: int, ms: int) -> None:
                outer.waits.append((n, ms))
                fixed[Pipe.n] = outer.acked
                Pipe.n += 1
                pipe.ping()

            def info(self, section: str) -> None:
                assert section == "replication"
                fixed[Pipe.n] = outer.replication()
                Pipe.n += 1
                pipe.ping()

            def execute(self, raise_on_error: bool = True) -> list[Any]:
                out = list(pipe.execute(raise_on_error=raise_on_error))
                return [fixed.get(i, x) for i, x in enumerate(out)]

        return Pipe()


def _start(tr: Transitions, sweep: str, token: str = "tok") -> Any:
    return tr.start(sweep, "T1", repo="a", concurrency=1, preds=[], worker="w", token=token)


def _sweep(r: Any, keys: Keys, sweep: str) -> None:
    r.hset(keys.sweep(sweep), mapping={"status": '"running"', "run": "0"})


def _waiting(namespace: str, fake: Replicas, lease_ttl: int = 10
             ) -> tuple[Keys, Replicas, Transitions]:
    """Sweep S1 running in ``namespace`` on ``fake``, and transitions that wait for one
    replica: the keys, ``fake`` and the transitions."""
    keys = Keys(namespace)
    _sweep(fake.r, keys, "S1")
    return keys, fake, Transitions(fake, keys, lease_ttl=lease_ttl,  # type: ignore[arg-type]
                                   replicas=1)


def test_a_start_no_replica_confirmed_is_not_run_and_its_retry_renews_and_waits_again() -> None:
    keys = Keys("ns-wait")
    fake = Replicas(acked=0)
    fake.r.flushall()
    _sweep(fake.r, keys, "S1")
    tr = Transitions(fake, keys, lease_ttl=10, replicas=1)  # type: ignore[arg-type]
    with pytest.raises(NotReplicated):
        _start(tr, "S1")
    assert fake.waits and set(fake.waits) == {(1, 1000)}
    # The retry (same token) on a master whose replica caught up: started, and the
    # lease renewed by the retry itself, so its WAIT covers the start.
    fake.acked = 1
    # (shortened to 3 s, not to a few ms: a busy machine may take that long to retry)
    fake.r.pexpire(keys.lease("a", 0), 3000)
    st = _start(tr, "S1")
    assert st.verdict == StartVerdict.started and st.lease is not None
    assert fake.r.pttl(keys.lease("a", 0)) > 5000
    # Without a replica to wait for, no WAIT is sent.
    plain = Transitions(fake, keys, lease_ttl=10)  # type: ignore[arg-type]
    _sweep(fake.r, keys, "S2")
    fake.r.delete(keys.lease("a", 0))
    fake.waits.clear()
    assert _start(plain, "S2").verdict == StartVerdict.started
    assert fake.waits == []


def test_a_retried_start_whose_lease_expired_is_not_given_it_back() -> None:
    keys, fake, tr = _waiting("ns-wait2", Replicas(acked=1))
    assert _start(tr, "S1").verdict == StartVerdict.started
    fake.r.delete(keys.lease("a", 0))
    assert _start(tr, "S1").verdict == StartVerdict.stale


def test_a_renewal_no_replica_confirmed_is_a_failed_renewal() -> None:
    keys, fake, tr = _waiting("ns-wait3", Replicas(acked=1), lease_ttl=2)
    lease = _start(tr, "S1").lease
    leases = LeaseManager(fake, keys, ttl=2, replicas=1)  # type: ignore[arg-type]
    assert leases.extend(lease) is True
    assert fake.waits[-1] == (1, 500)  # a quarter of the TTL: time is left to try again
    fake.acked = 0
    with pytest.raises(NotReplicated) as exc:
        leases.extend(lease)
    assert isinstance(exc.value, redis.ConnectionError)  # the heartbeat retries it


def test_a_start_waits_for_every_replica_seen_online_lately(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.connection import client

    keys, fake, tr = _waiting("ns-wait4", Replicas(acked=1, online=2))
    # One of two replicas had it: Sentinel may promote the other one. (The first
    # call asked the master how many replicas it has, once, and waited for both.)
    with pytest.raises(NotReplicated):
        _start(tr, "S1")
    assert fake.waits[-1] == (2, 1000)
    with pytest.raises(NotReplicated):
        _start(tr, "S1")
    assert fake.waits[-1] == (2, 1000)  # the retry waits for both
    fake.acked = 2
    assert _start(tr, "S1").verdict == StartVerdict.started
    # A replica leaves (it may be the one a failover just promoted): the one left
    # does not confirm anything until the master has had one replica for a while.
    fake.online, fake.acked = 1, 1
    with pytest.raises(NotReplicated):
        _start(tr, "S1")
    monkeypatch.setattr(client, "REPLICA_GONE_AFTER", 0.0)
    assert _start(tr, "S1").verdict == StartVerdict.started
    assert fake.waits[-1] == (2, 1000)
    assert _start(tr, "S1").verdict == StartVerdict.started
    assert fake.waits[-1] == (1, 1000)
    # A new master (a failover: another replication id) starts from the replicas it has.
    monkeypatch.setattr(client, "REPLICA_GONE_AFTER", 60.0)
    fake.online, fake.acked = 2, 2
    assert _start(tr, "S1").verdict == StartVerdict.started
    fake.replid, fake.online, fake.acked = "r2", 1, 1
    assert _start(tr, "S1").verdict == StartVerdict.started


def test_a_master_without_replicas_takes_writes_unconfirmed_and_says_so(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """0.3 asked for one replica whatever the master had: on a Sentinel-managed master
    with none (or none left after a failover), every start raised NotReplicated and the
    todo failed as poison without ever running (issue #39, items 1 and 16)."""
    from coordination.connection import client

    keys, fake, tr = _waiting("ns-wait6", Replicas(acked=0, online=0))
    leases = LeaseManager(fake, keys, ttl=10, replicas=1)  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="coord.redis"):
        st = _start(tr, "S1")
        assert st.verdict == StartVerdict.started and st.lease is not None
        assert fake.waits[-1] == (0, 1000)  # nothing to wait for: WAIT 0 answers at once
        assert leases.extend(st.lease) is True
    said = [r.getMessage() for r in caplog.records if "no replica online" in r.getMessage()]
    assert len(said) == 1, said  # once per spell, not per write
    assert "a failover now would lose them" in said[0]
    # A replica comes: writes wait for it again.
    fake.online = 1
    with pytest.raises(NotReplicated):
        leases.extend(st.lease)
    fake.acked = 1
    assert leases.extend(st.lease) is True
    assert fake.waits[-1] == (1, 1000)
    # It goes (same master): unconfirmed for a while (it may be a failover's new
    # master), then the master alone takes writes again.
    fake.online, fake.acked = 0, 0
    with pytest.raises(NotReplicated):
        leases.extend(st.lease)
    monkeypatch.setattr(client, "REPLICA_GONE_AFTER", 0.0)
    assert leases.extend(st.lease) is True
    # A failover that left the promoted replica alone (a new replication id, and the
    # old master had that one replica only): at once.
    monkeypatch.setattr(client, "REPLICA_GONE_AFTER", 60.0)
    fake.online, fake.acked = 1, 1
    assert leases.extend(st.lease) is True
    fake.replid, fake.online, fake.acked = "r2", 0, 0
    assert leases.extend(st.lease) is True
    # The old master had two: the one not promoted should follow the new one, so it
    # is waited for, until it has not for REPLICA_GONE_AFTER s.
    fake.online, fake.acked = 2, 2
    assert leases.extend(st.lease) is True
    fake.replid, fake.online, fake.acked = "r3", 0, 0
    with pytest.raises(NotReplicated):
        leases.extend(st.lease)
    assert fake.waits[-1] == (2, 1000)  # the old master's (the new one is seen after)
    with pytest.raises(NotReplicated):
        leases.extend(st.lease)
    assert fake.waits[-1] == (1, 1000)
    fake.online, fake.acked = 1, 1  # it followed
    assert leases.extend(st.lease) is True
    fake.online, fake.acked = 2, 2  # a second one joined it
    assert leases.extend(st.lease) is True
    fake.replid, fake.online, fake.acked = "r4", 0, 0  # again, and this time none follows
    with pytest.raises(NotReplicated):
        leases.extend(st.lease)
    monkeypatch.setattr(client, "REPLICA_GONE_AFTER", 0.0)
    assert leases.extend(st.lease) is True


def test_a_finish_no_replica_confirmed_is_asked_again_and_keeps_its_first_answer() -> None:
    from coordination.status import TodoStatus

    keys, fake, tr = _waiting("ns-wait5", Replicas(acked=1))
    lease = _start(tr, "S1").lease
    assert lease is not None

    def finish() -> Any:
        return tr.finish("S1", "T1", lease=lease, status=TodoStatus.succeeded, fields={},
                         event={})

    fake.acked = 0
    with pytest.raises(NotReplicated):
        finish()
    fake.acked = 1
    fin = finish()  # answered 'again' (written back): the first answer stands
    assert fin.ok and fin.terminal == 1, fin
    # Asked again with nothing kept (a call whose reply was lost): overtaken, as before.
    assert finish().ok is False


def test_a_demoted_master_is_a_reconnect_for_the_broker() -> None:
    from workers.broker import SentinelTransport, demoted

    assert demoted(redis.exceptions.ReadOnlyError("You can't write against a read only replica."))
    assert demoted(redis.ResponseError("UNBLOCKED force unblock from blocking operation, "
                                       "instance state changed (master -> replica?)"))
    assert not demoted(redis.ResponseError("WRONGTYPE Operation against a key"))
    assert redis.exceptions.ReadOnlyError in SentinelTransport.connection_errors


def test_the_celery_app_takes_the_sentinel_transport_and_the_master_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.dispatch.app import SENTINEL_TRANSPORT, celery_app
    from coordination.settings import Settings

    monkeypatch.setenv("COORD_SENTINEL_PASSWORD", "sentinel-secret")
    from coordination.settings import get_settings

    get_settings.cache_clear()
    try:
        app = celery_app(Settings(redis_url=URL))
    finally:
        get_settings.cache_clear()
    assert app.conf.broker_transport == SENTINEL_TRANSPORT
    opts = app.conf.broker_transport_options
    assert opts["master_name"] == "main"
    assert opts["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert app.conf.broker_url.count("sentinel://") == 3


def test_a_failover_keeps_the_broker_on_coords_sentinel_transport() -> None:
    """At a failover kombu moves the connection to the next sentinel by parsing its URL
    again, and takes the transport from the URL's scheme (``Connection.switch``), not
    from ``broker_transport``: under ``sentinel://`` a worker went on over kombu's own
    channel after its first failover, without the guards of workers/broker.py (seen:
    the messages it held and could not put back dumped into /tmp files)."""
    from coordination.dispatch.app import celery_app
    from coordination.settings import Settings
    from workers import broker

    app = celery_app(Settings(redis_url=URL))
    assert app.conf.broker_url.count("coord-sentinel://") == 3
    assert app.conf.result_backend.count("sentinel://") == 3  # Celery's, by its scheme
    with app.connection_for_read() as conn:
        assert len(conn.alt) == 3
        for host in ("s1", "::1", "s3", "s1"):  # every sentinel in turn, and round again
            assert conn.hostname == host
            assert type(conn.transport) is broker.SentinelTransport
            assert conn.transport.Channel is broker.SentinelChannel
            assert conn.transport_options["master_name"] == "main"
            conn.maybe_switch_next()  # what kombu's ensure_connection does on an error


@pytest.mark.parametrize(("url", "extra"), [(URL, {"wait", "info"}), ("redis://h:1/0", set())])
def test_a_worker_on_sentinel_is_checked_for_wait_and_info_too(
        monkeypatch: pytest.MonkeyPatch, url: str, extra: set[str]) -> None:
    from coordination.connection import preflight
    from coordination.settings import Settings

    asked: list[str] = []

    class Client:
        def close(self) -> None:
            pass

    monkeypatch.setattr(preflight, "one_shot_client", lambda url, timeout: Client())
    monkeypatch.setattr(preflight, "denied_commands",
                        lambda r, ns, commands, **kw: asked.extend(commands) or [])
    preflight.check_permissions(Settings(redis_url=url), "worker")
    assert {"wait", "info"} & set(asked) == extra
    asked.clear()
    preflight.check_permissions(Settings(redis_url=url), "cli")
    assert not {"wait", "info"} & set(asked)


@pytest.mark.parametrize(("text", "says", "transient"), [
    ("No master found for 'main' : <Redis...> - AuthenticationError('invalid username-password "
     "pair or user is disabled.')", "refused", False),
    ("No master found for 'main' : <Redis...> - network:ConnectionError", "no sentinel answered",
     True),
    ("No master found for 'main'", "name no master 'main' that is up", True),
])
def test_no_master_found_says_which_of_three_things_went_wrong(
        text: str, says: str, transient: bool) -> None:
    from redis.sentinel import MasterNotFoundError

    from coordination.connection.preflight import diagnose

    d = diagnose(MasterNotFoundError(text), URL)
    assert says in d.problem and d.transient is transient, d
    assert "p@ss" not in d.problem + d.hint


def test_a_write_to_a_master_the_sentinels_no_longer_name_is_not_confirmed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from coordination.connection import client

    asked: list[str] = []
    named = ["10.0.0.1", 6379]

    def discover_master(service: str) -> tuple[str, int]:
        asked.append(service)
        return named[0], named[1]

    pool = SimpleNamespace(sentinel_manager=SimpleNamespace(discover_master=discover_master),
                           service_name="main")
    r: Any = SimpleNamespace(connection_pool=pool)
    client._master_named.clear()
    assert client._named_master(r, ("10.0.0.1", 6379))
    assert client._named_master(r, ("10.0.0.1", 6379))
    assert asked == ["main"]  # trusted for MASTER_FRESH seconds
    # A failover: the sentinels name another; a connection still on the old one is not it.
    named[0] = "10.0.0.2"
    monkeypatch.setattr(client, "MASTER_FRESH", 0.0)
    assert not client._named_master(r, ("10.0.0.1", 6379))
    assert client._named_master(r, ("10.0.0.2", 6379))
    # A client Sentinel does not manage is never asked.
    assert client._named_master(cast(Any, SimpleNamespace(connection_pool=object())), ("x", 1))
