"""Where Redis is, read without pydantic (coordination/settings_core.py), for a command
that only reads: the same values the full settings read, and never a verdict of its own
on a value the full settings would judge (it defers: None)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coordination.settings import Settings, load_settings
from coordination.settings_core import read_core
from coordination.settings_defaults import read_plain

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
#: What the settings say beyond their fields.
DERIVED = ("embedded", "signing_keys", "heartbeat_interval", "ui_host_names")


@pytest.mark.parametrize("env", [
    {},
    {"COORD_REDIS_URL": "redis://:secret@cache.internal:6380/2", "COORD_NAMESPACE": "team-a.x"},
    {"coord_redis_url": "rediss://h:6379/0?ssl_cert_reqs=CERT_REQUIRED",
     "COORD_SHARE_NAMESPACE": "YES", "COORD_ECOSYSTEM": "/srv/eco.yaml"},
    {"COORD_REDIS_URL": "", "COORD_SHARE_NAMESPACE": "0"},
    {"COORD_REDIS_URL": "unix:///run/redis.sock?db=3", "COORD_SHARE_NAMESPACE": "on"},
], ids=["defaults", "url-and-namespace", "any-case-tls", "empty-url", "unix"])
def test_it_reads_what_the_settings_read(monkeypatch: pytest.MonkeyPatch,
                                         env: dict[str, str]) -> None:
    for name in [n for n in __import__("os").environ if n.upper().startswith("COORD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    core, full = read_core(), load_settings()
    assert core is not None
    assert (core.redis_url, core.namespace, core.share_namespace, core.ecosystem) == (
        full.redis_url, full.namespace, full.share_namespace, full.ecosystem)
    assert core.embedded == full.embedded
    # Nothing else set: every other setting is its default, so all of them are known
    # without pydantic (coordination/settings_defaults.py).
    plain = read_plain()
    assert plain is not None
    for name in (*Settings.model_fields, *DERIVED):
        mine, theirs = getattr(plain, name), getattr(full, name)
        assert (mine, type(mine)) == (theirs, type(theirs)), name


@pytest.mark.parametrize("env", [
    {"COORD_NAMESPACE": "Bad Name"},
    {"COORD_REDIS_URL": "http://h:6379"},
    {"COORD_REDIS_URL": "redis://h:notaport"},
    {"COORD_SHARE_NAMESPACE": "maybe"},
    {"COORD_NAMESPACE": "a", "coord_namespace": "b"},
], ids=["namespace", "scheme", "port", "boolean", "twice"])
def test_a_value_it_is_not_sure_of_is_left_to_the_full_settings(env: dict[str, str]) -> None:
    assert read_core(env) is None


def test_a_reader_runtime_reads_the_other_settings_on_first_use(tmp_path: Path) -> None:
    """`sweep status` builds its runtime without pydantic; a bad setting it never uses
    does not stop it, and the first use of every setting reads (and judges) them all."""
    code = """
import sys
from coordination.runtime.context import Runtime
rt = Runtime.reader()
assert 'pydantic' not in sys.modules, 'pydantic loaded by a reader'
print(rt.keys.namespace, rt.url, rt.settings.redis_url, rt.embedded)
assert 'pydantic' not in sys.modules, 'pydantic loaded for where Redis is'
try:
    rt.settings.lease_ttl
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COORD_NAMESPACE": "team-a",
           "COORD_REDIS_URL": "redis://127.0.0.1:1/0", "COORD_LEASE_TTL": "inf"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=50, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "team-a redis://127.0.0.1:1/0 redis://127.0.0.1:1/0 False"
    assert lines[1].startswith("SettingsError") and "COORD_LEASE_TTL" in lines[1]
