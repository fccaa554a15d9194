"""The settings read the environment exactly as pydantic-settings' environment source
reads it for them (names in any case, the later of two spellings, empty values kept,
unknown variables ignored), values given to ``Settings(...)`` winning; so a value is
accepted, or refused naming its variable, as before the model stopped being a
``BaseSettings`` (pydantic-settings is no longer imported at start-up)."""

from __future__ import annotations

import os
import sys

import pytest
from pydantic import ValidationError

from coordination.errors import SettingsError
from coordination.settings import Settings, load_settings

pydantic_settings = pytest.importorskip("pydantic_settings")

ENVIRONMENTS = [
    {},
    {"COORD_REDIS_URL": "redis://:pw@h:6380/2", "COORD_NAMESPACE": "team-a",
     "COORD_LEASE_TTL": "5", "COORD_SUPERVISE": "no", "COORD_SIGNING_KEY": "k"},
    {"coord_lease_ttl": "7.5", "Coord_Share_Namespace": "YES", "COORD_UI_HOSTS": "A.example.com"},
    {"COORD_NAMESPACE": "a", "coord_namespace": "b"},  # two spellings: the later wins
    {"COORD_REDIS_URL": "", "COORD_FLOWER_AUTH": "", "COORD_UI_USERS": ""},
    {"COORD_USER": "someone", "COORD_NOT_A_SETTING": "x", "OTHER_LEASE_TTL": "1"},
    {"COORD_EMBEDDED_PROCESSES": "0", "COORD_VISIBILITY_TIMEOUT": "90.2",
     "COORD_ECOSYSTEM": "/srv/eco.yaml", "COORD_EDIT_SPLICE": "off"},
]
BAD = [
    {"COORD_LEASE_TTL": "inf"},
    {"COORD_LEASE_TTL": "0.1", "COORD_RETENTION_DAYS": "forever"},
    {"COORD_NAMESPACE": "Bad Name"},
    {"COORD_SUPERVISE": "maybe"},
    {"COORD_MAX_LOST_RUNS": "", "COORD_HEARTBEAT": ""},
    {"coord_ui_hosts": "*"},
]


def _environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.upper().startswith("COORD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _as_pydantic_settings_reads() -> Settings:
    source = pydantic_settings.EnvSettingsSource(Settings, case_sensitive=False,
                                                 env_prefix="COORD_")
    return Settings.model_validate(source())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_settings_read_the_environment_as_pydantic_settings_reads_it(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    _environment(monkeypatch, env)
    assert load_settings() == _as_pydantic_settings_reads()


@pytest.mark.parametrize("env", BAD)
def test_a_bad_value_is_refused_as_pydantic_settings_refused_it(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    _environment(monkeypatch, env)
    with pytest.raises(ValidationError) as theirs:
        _as_pydantic_settings_reads()
    with pytest.raises(ValidationError) as ours:
        Settings()
    assert ours.value.errors(include_context=False) == theirs.value.errors(include_context=False)
    with pytest.raises(SettingsError, match="COORD_"):
        load_settings()


def test_values_given_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch, {"COORD_NAMESPACE": "from-env", "COORD_LEASE_TTL": "5"})
    s = Settings(namespace="given")
    assert (s.namespace, s.lease_ttl) == ("given", 5.0)


@pytest.mark.parametrize("env", [{"coord_audit_key": "first", "COORD_AUDIT_KEY": "second"},
                                 {"Coord_Audit_Key": "only"}, {"COORD_AUDIT_KEY": ""}, {}])
def test_the_audit_key_read_without_the_settings_is_the_settings_key(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """An edit reads COORD_AUDIT_KEY without loading the settings when nothing else has
    (`coord init`); it must be the key the settings would read, two spellings included."""
    from coordination.catalog.audit import log as audit

    _environment(monkeypatch, env)
    key = Settings().audit_key
    expected = key.get_secret_value().encode("utf-8") if key and key.get_secret_value() else None
    monkeypatch.delitem(sys.modules, "coordination.settings")
    assert audit.audit_key() == expected
