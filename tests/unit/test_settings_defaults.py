"""Every setting's default in one table without pydantic (coordination/settings_defaults.py):
the settings' own defaults, field for field (tests/unit/test_settings_core.py: with where
Redis is, the settings of an environment that sets nothing else); anything else left to
the full settings; and a sweep's start, which reads them without pydantic then, and
fails on a bad setting as it always did."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from coordination.errors import SettingsError
from coordination.settings import Settings, load_settings
from coordination.settings_defaults import DEFAULTS, PlainSettings, read_plain
from tests.servers import RedisServer
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
#: What the settings say beyond their fields.
DERIVED = ("embedded", "signing_keys", "heartbeat_interval", "ui_host_names")


def _environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.upper().startswith("COORD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Field for field, of the same type, the derived values too: one table of them."""
    _environment(monkeypatch, {})
    full = Settings()
    names = [f.name for f in dataclasses.fields(PlainSettings)]
    assert names == list(Settings.model_fields), "one field each, in the same order"
    for name in (*names, *DERIVED):
        mine, theirs = getattr(DEFAULTS, name), getattr(full, name)
        assert (mine, type(mine)) == (theirs, type(theirs)), name
    for name, field in Settings.model_fields.items():
        assert field.default == getattr(DEFAULTS, name), name


@pytest.mark.parametrize("env", [
    {"COORD_LEASE_TTL": "5"},
    {"coord_signing_key": "k", "COORD_REDIS_URL": "redis://h:6379/0"},
    {"COORD_LEASE_TTL": ""},
    {"COORD_NOT_A_SETTING": "x"},
    {"COORD_NAMESPACE": "Bad Name"},
    {"COORD_REDIS_URL": "http://h:6379"},
    {"COORD_NAMESPACE": "a", "coord_namespace": "b"},
], ids=["another-setting", "any-case", "empty", "no-such-setting", "bad-namespace",
        "bad-url", "twice"])
def test_any_other_variable_or_a_doubt_is_left_to_the_full_settings(
        env: dict[str, str]) -> None:
    assert read_plain(env) is None


START = """
import json, sys
from pathlib import Path
from coordination.runtime.context import Runtime, get_runtime
try:
    rt = get_runtime(Path(sys.argv[1]))  # as coordination.launch.prepare builds it
    Runtime.reader(Path(sys.argv[1])).settings.events_maxlen  # as `sweep status` does
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
else:
    s = rt.settings
    print(json.dumps({"namespace": rt.keys.namespace, "url": rt.url, "lease_ttl": s.lease_ttl,
                      "heartbeat": s.heartbeat_interval, "signing_keys": s.signing_keys,
                      "embedded": rt.embedded,
                      "loaded": sorted({"pydantic", "coordination.settings"} & set(sys.modules))}))
"""


def _start(catalog: Path, env: dict[str, str]) -> dict[str, object]:
    import json

    r = subprocess.run([sys.executable, "-c", START, str(catalog)], capture_output=True,
                       text=True, timeout=50, cwd=catalog.parent,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env})
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


def test_a_sweeps_runtime_reads_every_setting_without_pydantic(
        tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime a sweep's start builds (Runtime.create, on a real redis-server) has
    every setting when the environment sets only where Redis is, without importing
    pydantic (and so has a reader's); a bad setting besides them fails there as it
    always did."""
    catalog = write_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    core = {"COORD_REDIS_URL": redis_server.url,
            "COORD_NAMESPACE": f"defaults-{uuid.uuid4().hex[:8]}"}
    assert _start(catalog, core) == {
        "namespace": core["COORD_NAMESPACE"], "url": redis_server.url, "lease_ttl": 10.0,
        "heartbeat": 10.0 / 3, "signing_keys": [], "embedded": False, "loaded": []}

    bad = {**core, "COORD_LEASE_TTL": "abc"}
    _environment(monkeypatch, bad)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert _start(catalog, bad) == {"error": f"SettingsError: {exc.value}"}


def test_a_bad_setting_stops_plan_sweep_as_before(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`coord plan sweep --wait` with a bad COORD_LEASE_TTL: exit 2, the variable named,
    before anything starts (no embedded server beside the catalog)."""
    catalog = write_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    _environment(monkeypatch, {"COORD_LEASE_TTL": "abc"})
    with pytest.raises(SettingsError) as exc:
        load_settings()
    r = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                        "plan", "sweep", "PLAN-001", "--wait"], capture_output=True, text=True,
                       timeout=50, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                            "COORD_LEASE_TTL": "abc"})
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr.startswith(f"error: {exc.value}\n"), r.stderr
    assert "COORD_LEASE_TTL" in r.stderr and "Traceback" not in r.stderr
