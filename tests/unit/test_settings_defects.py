"""COORD_VISIBILITY_TIMEOUT and COORD_RETENTION_DAYS from the environment, as a user sets them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coordination.errors import SettingsError
from coordination.settings import load_settings

URL = "redis://127.0.0.1:1/0"  # never connected to: the app is only configured


def visibility() -> int:
    from workers.app import create_app

    opts = create_app(load_settings()).conf.broker_transport_options
    return int(opts["visibility_timeout"])


def test_visibility_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_REDIS_URL", URL)
    default = visibility()
    assert default >= 4800  # unset: the computed value, as before
    monkeypatch.setenv("COORD_VISIBILITY_TIMEOUT", "900")
    assert visibility() == 900
    # A fraction of a second must not become 0 (kombu would hand every unacked
    # message out again at once): it is rounded up.
    monkeypatch.setenv("COORD_VISIBILITY_TIMEOUT", "0.5")
    assert visibility() == 1
    monkeypatch.setenv("COORD_VISIBILITY_TIMEOUT", "90.2")
    assert visibility() == 91
    for bad in ("0", "-5", "soon"):
        monkeypatch.setenv("COORD_VISIBILITY_TIMEOUT", bad)
        with pytest.raises(SettingsError, match="COORD_VISIBILITY_TIMEOUT"):
            load_settings()


def test_retention_days_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().retention_days == 30
    monkeypatch.setenv("COORD_RETENTION_DAYS", "7.5")
    assert load_settings().retention_days == 7.5
    for bad in ("0", "-1", "forever"):
        monkeypatch.setenv("COORD_RETENTION_DAYS", bad)
        with pytest.raises(SettingsError, match="COORD_RETENTION_DAYS"):
            load_settings()


@pytest.mark.parametrize("name", ["COORD_LEASE_TTL", "COORD_SUPERVISE_INTERVAL",
                                  "COORD_RETENTION_DAYS", "COORD_HISTORY_DAYS"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_no_setting_takes_a_number_that_is_not_finite(monkeypatch: pytest.MonkeyPatch,
                                                      name: str, value: str) -> None:
    """A bound like gt=0 lets "inf" through: every setting refuses it, naming itself."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_the_signing_key_is_read_once_from_its_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """#78: COORD_SIGNING_KEY_FILE gives the key without it sitting in any environment."""
    for name in [k for k in os.environ if k.upper().startswith("COORD_SIGNING_KEY")]:
        monkeypatch.delenv(name)
    key = tmp_path / "key"
    key.write_text("  the-key-in-its-file \n")
    monkeypatch.setenv("COORD_SIGNING_KEY_FILE", str(key))
    s = load_settings()
    assert s.signing_keys == ["the-key-in-its-file"]
    key.write_text("another")  # read once: the settings keep what they read
    assert s.signing_keys == ["the-key-in-its-file"]

    monkeypatch.setenv("COORD_SIGNING_KEY", "the-key-in-its-file")
    with pytest.raises(SettingsError) as both:
        load_settings()
    assert "COORD_SIGNING_KEY and COORD_SIGNING_KEY_FILE are both set" in str(both.value)
    assert both.value.exit_code == 2 and "the-key-in-its-file" not in str(both.value)
    monkeypatch.delenv("COORD_SIGNING_KEY")

    for text, said in (("", "is empty"), ("one\ntwo", "more than one line")):
        key.write_text(text)
        with pytest.raises(SettingsError, match=said):
            load_settings()
    key.unlink()
    with pytest.raises(SettingsError, match=r"COORD_SIGNING_KEY_FILE: cannot read .*key"):
        load_settings()
