"""COORD_REDIS_URL at start: full validation (exit 2), redaction, TLS options, fail-fast diagnosis.

No redis-server here: URLs are validated, TLS options derived and Celery apps
configured without connecting; the few connects go to a closed loopback port.
The start-up behaviour against real servers (wrong password, TLS, ...) is in
tests/integration/test_startup.py.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import exceptions as rexc

from coordination.connection.preflight import check_redis, diagnose
from coordination.errors import RedisUnreachable, SettingsError
from coordination.redis_url import celery_url, redact_url, scrub, tls_options, url_problem
from coordination.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-Pa55"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("COORD_REDIS_URL", url)
    return load_settings()


# -- validation at settings load ----------------------------------------------------------
BAD_URLS = {
    "port not a number": f"redis://:{SECRET}@127.0.0.1:notaport/0",
    "port 0": "redis://127.0.0.1:0/0",
    "port above 65535": f"redis://user:{SECRET}@127.0.0.1:70000/0",
    "empty port": "redis://127.0.0.1:/0",
    "scheme http": f"http://:{SECRET}@127.0.0.1:6379/0",
    "scheme upper case": "REDIS://127.0.0.1:6379/0",
    "no scheme": "127.0.0.1:6379",
    "db not a number": f"redis://:{SECRET}@127.0.0.1:6379/zero",
    "db negative": "redis://127.0.0.1:6379/-1",
    "db with a second segment": "redis://127.0.0.1:6379/0/1",
    "unknown query parameter": f"redis://:{SECRET}@127.0.0.1:6379/0?socket_timeout=3",
    "db in the query of redis://": "redis://127.0.0.1:6379/0?db=1",
    "TLS option with redis://": "redis://127.0.0.1:6379/0?ssl_ca_certs=/etc/ca.pem",
    "bad ssl_cert_reqs": f"rediss://:{SECRET}@127.0.0.1:6380/0?ssl_cert_reqs=maybe",
    "bad ssl_check_hostname": "rediss://127.0.0.1:6380/0?ssl_check_hostname=perhaps",
    "malformed query": "rediss://127.0.0.1:6380/0?ssl_cert_reqs",
    "repeated parameter": "rediss://127.0.0.1:6380/0?ssl_cert_reqs=none&ssl_cert_reqs=required",
    "fragment (unencoded # in a password)": f"redis://:{SECRET}#x@127.0.0.1:6379/0",
    "unix without a path": "unix://",
    "unix db not a number": "unix:///run/redis.sock?db=x",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_malformed_url_is_a_settings_error_naming_the_variable(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SettingsError) as info:
        load(url, monkeypatch)
    msg = str(info.value)
    assert info.value.exit_code == 2
    assert "COORD_REDIS_URL" in msg
    assert SECRET not in msg and "Value error" not in msg


def test_malformed_port_message_says_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as info:
        load(f"redis://:{SECRET}@127.0.0.1:notaport/0", monkeypatch)
    msg = str(info.value)
    assert "port must be a number from 1 to 65535" in msg and "'notaport'" in msg
    assert "redis://:***@127.0.0.1:notaport/0" in msg


@pytest.mark.parametrize("url", [
    "redis://localhost:6379/0",
    "redis://127.0.0.1:6379",
    "redis://127.0.0.1",
    "redis://:pw@redis:6379/3",
    "redis://user:p%40ss@[::1]:6379/0",
    "rediss://cache.example.com:6380/0",
    "rediss://h:6380/0?ssl_cert_reqs=none",
    "rediss://h:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/c.key"
    "&ssl_check_hostname=false",
    "unix:///run/redis.sock",
    "unix:///run/redis.sock?db=2",
])
def test_good_urls_are_accepted_unchanged(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert url_problem(url) is None
    assert load(url, monkeypatch).redis_url == url


def test_celery_spelling_of_cert_reqs_is_accepted_and_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = load("rediss://h:6380/0?ssl_cert_reqs=CERT_OPTIONAL&ssl_ca_certs=/a%20b.pem", monkeypatch)
    # redis-py only knows none/optional/required; the other parameters keep their encoding
    assert s.redis_url == "rediss://h:6380/0?ssl_cert_reqs=optional&ssl_ca_certs=/a%20b.pem"


def test_empty_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load("", monkeypatch).embedded


# -- redaction ----------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cr3t@h:6379/0", "redis://:***@h:6379/0"),
    ("rediss://ana:s3cr3t@h:6380/0?ssl_cert_reqs=none", "rediss://ana:***@h:6380/0?ssl_cert_reqs=none"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("redis://ana@h:6379/0", "redis://ana@h:6379/0"),
    ("redis://:s3cr3t@127.0.0.1:notaport/0", "redis://:***@127.0.0.1:notaport/0"),
    ("redis://:p@ss:w/rd@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://:a%40b@h/0", "redis://:***@h/0"),
    ("not a url", "not a url"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_masks_the_password_in_any_text() -> None:
    url = f"redis://:{SECRET}@h:6379/0"
    text = f"failed on {url}: AUTH {SECRET} rejected"
    out = scrub(text, url)
    assert SECRET not in out and "redis://:***@h:6379/0" in out


# -- TLS options: one URL configures redis-py, the broker and the backend -----------------
def test_tls_options_default_to_verifying_the_server() -> None:
    assert tls_options("rediss://h:6380/0") == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert tls_options("redis://h:6379/0") is None
    assert tls_options(None) is None


def test_tls_options_from_the_query() -> None:
    url = ("rediss://:pw@h:6380/2?ssl_cert_reqs=optional&ssl_ca_certs=/etc/ca%20x.pem"
           "&ssl_certfile=/c.pem&ssl_keyfile=/c.key&ssl_check_hostname=false")
    assert tls_options(url) == {
        "ssl_cert_reqs": ssl.CERT_OPTIONAL, "ssl_ca_certs": "/etc/ca x.pem",
        "ssl_certfile": "/c.pem", "ssl_keyfile": "/c.key", "ssl_check_hostname": False,
    }
    assert tls_options("rediss://h/0?ssl_cert_reqs=none") == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert celery_url(url) == "rediss://:pw@h:6380/2"


def test_a_unix_url_reaches_celery_as_a_redis_socket() -> None:
    # the path as written: kombu and Celery decode it once (see test_redis_neighbours.py)
    assert celery_url("unix:///run/a%20b/redis.sock") == "redis+socket:///run/a%20b/redis.sock"
    assert celery_url("unix:///run/redis.sock?db=3") == \
        "redis+socket:///run/redis.sock?virtual_host=3"


def test_create_app_passes_tls_to_broker_and_backend_once() -> None:
    from workers.app import create_app

    url = "rediss://:pw@127.0.0.1:1/0?ssl_ca_certs=/etc/ca.pem"
    app = create_app(Settings(redis_url=url))
    want = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/ca.pem"}
    assert app.conf.broker_use_ssl == want and app.conf.redis_backend_use_ssl == want
    # the query is gone from what kombu and Celery parse: nothing is read twice
    assert "ssl_" not in app.conf.broker_url and "ssl_" not in app.conf.result_backend
    conn = app.connection_for_write()  # not connected: only configured
    assert conn.ssl == want
    import redis

    params = app.backend.connparams  # Celery's backend accepts it (it rejects rediss:// without cert_reqs)
    assert params["connection_class"] is redis.SSLConnection
    assert params["ssl_cert_reqs"] == ssl.CERT_REQUIRED and params["ssl_ca_certs"] == "/etc/ca.pem"


def test_create_app_plain_redis_has_no_tls() -> None:
    from workers.app import create_app

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert not app.conf.broker_use_ssl and not app.conf.redis_backend_use_ssl


# -- diagnosis ----------------------------------------------------------------------------
def _raised(exc: BaseException, cause: BaseException) -> BaseException:
    """``exc`` chained to ``cause``, as redis-py raises its connection errors."""
    exc.__cause__ = cause
    return exc


URL = f"redis://:{SECRET}@127.0.0.1:1/0"


@pytest.mark.parametrize(("exc", "words", "transient"), [
    (rexc.AuthenticationError("invalid username-password pair or user is disabled.",
                               status_code="WRONGPASS"), "wrong password", False),
    (rexc.AuthenticationError("Authentication required.", status_code="NOAUTH"),
     "authentication is required", False),
    (_raised(rexc.ConnectionError("Error 111 connecting"), ConnectionRefusedError(111, "refused")),
     "nothing is listening", True),
    (_raised(rexc.ConnectionError("Error -2 connecting"),
             socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
     "cannot resolve host", False),
    (rexc.BusyLoadingError("Redis is loading the dataset in memory"), "loading", True),
], ids=["wrongpass", "noauth-with-password", "refused", "dns", "loading"])
def test_diagnose_names_the_problem(exc: BaseException, words: str, transient: bool) -> None:
    d = diagnose(exc, URL, waited=4)
    assert words in d.problem and d.transient is transient
    assert SECRET not in d.problem + d.hint


def test_diagnose_noauth_without_password_says_password_required() -> None:
    exc = rexc.AuthenticationError("HELLO must be called with the client already authenticated",
                                   status_code="NOAUTH")
    d = diagnose(exc, "redis://127.0.0.1:6379/0")
    assert "requires a password" in d.problem and "password required" in d.problem
    assert not d.transient


def test_diagnose_unverifiable_certificate_names_ssl_ca_certs() -> None:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "self-signed certificate in certificate chain"
    d = diagnose(_raised(rexc.ConnectionError("Error 1 connecting"), err), "rediss://127.0.0.1:6380/0")
    assert "could not be verified" in d.problem and "ssl_ca_certs" in d.hint and not d.transient


# -- check_redis --------------------------------------------------------------------------
def test_check_redis_embedded_is_a_no_op() -> None:
    check_redis(Settings())


def test_check_redis_nothing_listening_fails_within_its_budget() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0"
    t0 = time.monotonic()
    with pytest.raises(RedisUnreachable) as info:
        check_redis(Settings(redis_url=url), timeout=1.0)
    took = time.monotonic() - t0
    assert 0.5 < took < 3, took  # it retried (a server may be starting), then gave up
    msg = str(info.value)
    assert info.value.exit_code == 1
    assert "connection refused" in msg and "redis://:***@127.0.0.1:" in msg and SECRET not in msg


def test_check_redis_unreadable_tls_file_is_bad_input(tmp_path: Path) -> None:
    url = f"rediss://:{SECRET}@127.0.0.1:{closed_port()}/0?ssl_ca_certs={tmp_path}/nope.pem"
    with pytest.raises(SettingsError) as info:
        check_redis(Settings(redis_url=url))
    assert info.value.exit_code == 2 and "ssl_ca_certs" in str(info.value)
    assert SECRET not in str(info.value)


# -- the CLI's message for a Redis error ------------------------------------------------------
def test_cli_unreachable_message_redacts_the_password(example_catalog: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["COORD_REDIS_URL"] = f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0"
    r = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                        str(example_catalog), "sweep", "list"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=50)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in r.stderr
    assert "connection refused" in r.stderr
    assert SECRET not in r.stderr + r.stdout


def test_cli_malformed_url_exits_2_naming_the_variable(example_catalog: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["COORD_REDIS_URL"] = f"redis://:{SECRET}@127.0.0.1:notaport/0"
    for args in (("sweep", "list"), ("plan", "sweep", "PLAN-001")):
        r = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                            str(example_catalog), *args],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=50)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and "COORD_REDIS_URL" in r.stderr, r.stderr
        assert SECRET not in r.stderr + r.stdout
