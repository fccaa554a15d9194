"""What no repo's code coord runs is given (trust/secrets.py), and the keys derived for a
todo's run (trust/runkeys.py), which seal nothing else."""

from __future__ import annotations

import os

import pytest

from coordination.trust import evidence
from coordination.trust.evidence import EvidenceKind
from coordination.trust.runkeys import RunId, run_key, run_policy
from coordination.trust.secrets import (
    FORGE_TOKENS,
    is_secret,
    secret_names,
    without_secrets,
    without_secrets_b,
)
from coordination.trust.signing import Policy

pytestmark = pytest.mark.timeout(30)

ENV = {
    "PATH": "/usr/bin", "HOME": "/home/t",
    "COORD_SIGNING_KEY": "k", "COORD_SIGNING_KEY_PREVIOUS": "old", "COORD_AUDIT_KEY": "a",
    "COORD_MCP_TOKEN": "m", "COORD_SENTINEL_PASSWORD": "s", "COORD_UI_AUTH": "u:p",
    "COORD_FLOWER_AUTH": "f:p", "COORD_FORGE_WEBHOOK_SECRET": "w", "COORD_APPROVE_KEY": "~/.ssh/k",
    "COORD_SOMETHING_NEW_TOKEN": "n", "GITHUB_TOKEN": "g", "GITLAB_TOKEN": "l",
    "GITEA_TOKEN": "e", "MY_FORGE_TOKEN": "mine",
    "COORD_REDIS_URL": "redis://worker:pa%40ss@db.internal:6380/2",
    "COORD_NAMESPACE": "team", "COORD_LEASE_TTL": "10", "COORD_RUN_TOKEN": "given",
    "SOME_TOKEN": "not coord's",
}


def test_no_secret_coord_holds_is_left_and_the_rest_is() -> None:
    out = without_secrets(ENV, token_envs=["MY_FORGE_TOKEN"])
    assert out == {"PATH": "/usr/bin", "HOME": "/home/t",
                   "COORD_REDIS_URL": "redis://db.internal:6380/2",
                   "COORD_NAMESPACE": "team", "COORD_LEASE_TTL": "10",
                   "COORD_RUN_TOKEN": "given", "SOME_TOKEN": "not coord's"}


def test_the_bytes_form_is_the_same_filter() -> None:
    env_b = {os.fsencode(k): os.fsencode(v) for k, v in ENV.items()}
    got = {os.fsdecode(k): os.fsdecode(v) for k, v in without_secrets_b(env_b).items()}
    assert got == without_secrets(ENV)
    assert "MY_FORGE_TOKEN" in got  # (named by no repo's forge: here)


def test_one_list_a_repos_forge_token_env_joins() -> None:
    assert set(FORGE_TOKENS) <= secret_names()
    assert "CORP_GH_TOKEN" in secret_names(["CORP_GH_TOKEN"])
    assert not is_secret("CORP_GH_TOKEN") and is_secret("CORP_GH_TOKEN",
                                                        secret_names(["CORP_GH_TOKEN"]))


def test_a_land_command_keeps_the_forge_tokens_not_coords() -> None:
    out = without_secrets(ENV, forge_tokens=False)
    assert out["GITHUB_TOKEN"] == "g" and "COORD_SIGNING_KEY" not in out
    assert out["COORD_REDIS_URL"] == "redis://db.internal:6380/2"


RUN = RunId("S-1", "TODO-001", 2, "PLAN-001")


def test_a_run_key_is_its_own_and_seals_nothing_the_signing_key_checks() -> None:
    key = "k" * 32
    derived = run_key(key, RUN)
    assert derived != run_key(key, RunId("S-1", "TODO-001", 1, "PLAN-001"))
    assert derived != run_key(key, RunId("S-1", "TODO-002", 2, "PLAN-001"))
    assert derived != run_key(key, RunId("S-1", "TODO-001", 2, "PLAN-002"))
    assert derived != run_key("j" * 32, RUN)
    # a gate decision sealed with the run's key: refused where decisions are read
    about = evidence.decision_about("S-1", "TODO-009")
    body = {"decision": "approved"}
    forged = evidence.seal(EvidenceKind.decision, about, body, (derived,))
    forged.pop("kid")
    why = evidence.refusal(EvidenceKind.decision, about, forged, Policy((key,)), "decision")
    assert why is not None and "signature invalid" in why
    # and what it seals is taken only as that run's
    ctx = evidence.seal(EvidenceKind.context, {"scope": "sweep:S-1", "key": "x"}, body,
                        (derived,))
    assert evidence.refusal(EvidenceKind.context, {"scope": "sweep:S-1", "key": "x"}, ctx,
                            run_policy(Policy((key,)), RUN), "ctx") is None
    other = RunId("S-1", "TODO-002", 2, "PLAN-001")
    assert evidence.refusal(EvidenceKind.context, {"scope": "sweep:S-1", "key": "x"}, ctx,
                            run_policy(Policy((key,)), other), "ctx") is not None


def test_a_record_names_its_run_or_none() -> None:
    assert RunId.of(RUN.document()) == RUN
    for bad in (None, "S-1", {**RUN.document(), "run": "2"}, {**RUN.document(), "run": -1},
                {**RUN.document(), "todo": None}, {"sweep": "S-1"}):
        assert RunId.of(bad) is None, bad


def test_every_secret_variable_the_catalog_names_is_held_out(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """#78: a repo's token_env, app_key_env and webhook_secret_env reach no todo (the
    tutorial's FORGE_TOKEN was in every test run's environment), nor the App key by its
    default name; a land command keeps the tokens, not the others."""
    from types import SimpleNamespace

    from coordination.trust import secrets

    monkeypatch.setattr(secrets, "_held", frozenset())
    monkeypatch.setattr(secrets, "_held_tokens", frozenset())
    forges = [SimpleNamespace(token_env="FORGE_TOKEN", webhook_secret_env="HOOK_SECRET"),
              SimpleNamespace(token_env=None, app_key_env="CORP_APP_KEY"), None]
    names, tokens = secrets.catalog_secret_names(forges)
    assert names == {"FORGE_TOKEN", "HOOK_SECRET", "CORP_APP_KEY"} and tokens == {"FORGE_TOKEN"}
    env = {"PATH": "/bin", "FORGE_TOKEN": "t" * 20, "HOOK_SECRET": "h" * 20,
           "CORP_APP_KEY": "k" * 20, "GITHUB_APP_PRIVATE_KEY": "p" * 20,
           "COORD_SIGNING_KEY_FILE": "/etc/coord/key"}
    assert without_secrets(env) == {"PATH": "/bin", "FORGE_TOKEN": "t" * 20,
                                    "HOOK_SECRET": "h" * 20, "CORP_APP_KEY": "k" * 20}
    secrets.hold_names(names, tokens)
    assert without_secrets(env) == {"PATH": "/bin"}
    env_b = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    assert without_secrets_b(env_b) == {b"PATH": b"/bin"}
    assert without_secrets(env, forge_tokens=False) == {
        "PATH": "/bin", "FORGE_TOKEN": "t" * 20, "GITHUB_APP_PRIVATE_KEY": "p" * 20}


def test_the_values_held_are_every_secrets_and_the_redis_password(monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    from coordination.trust import secrets

    monkeypatch.setattr(secrets, "_held", frozenset({"FORGE_TOKEN"}))
    env = {"FORGE_TOKEN": "forge-token-value", "COORD_SIGNING_KEY": "signing-key-value",
           "COORD_REDIS_URL": "redis://w:pa%40ssword1@h:6379/0", "PATH": "/usr/bin:/bin",
           "SHORT_TOKEN": "x", "COORD_UI_AUTH": "ab"}
    got = secrets.held_secret_values(env, extra=["key-from-its-file"])
    assert set(got) == {"forge-token-value", "signing-key-value", "pa%40ssword1",
                        "pa@ssword1", "key-from-its-file"}


def test_a_values_forms_are_its_cases_and_its_base64_at_every_alignment() -> None:
    import base64

    from coordination.trust.secrets import value_forms

    value = "ghp_MixedCaseToken0123456789"
    forms = value_forms(value)
    assert value in forms and value.lower() in forms and value.upper() in forms
    for printed in (value, value + "\n", "x" + value, "xy" + value + "\n", "abc" + value):
        encoded = base64.b64encode(printed.encode()).decode()
        assert any(f in encoded for f in forms if f not in (value, value.lower(),
                                                            value.upper())), printed
    assert all(len(f) >= 8 for f in value_forms("short-secret"))
