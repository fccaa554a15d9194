"""Every 0.6 field from the command line (DESIGN.md, Version 0.7 additions, M): `plan
create|update --schedule/--timezone/--catchup/--on-push/--due`, `todo create|update
--due/--mask-env`, `repo add|update --forge/--forge-api/--token-env`. As the 0.3 fields'
flags (test_field_flags.py): each sets its field (read back through the loader), keeps
the rest of the file byte for byte, is audited; a bad value is refused with the model's
message, exit 2, the file byte-identical; the empty value or --no-X takes it out again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from tests.unit.support.field_flags import (  # the field flags' fixture and checks
    CATALOG,
    Case,
    _dumped,
    eco_both_paths,
    entries,
    item,
)
from tests.unit.support.cli import coord_inline

pytestmark = pytest.mark.timeout(120)

__all__ = ["eco_both_paths"]  # the fixture, used by name

CASES = [
    Case("plan", "PLAN-001", ("--schedule", "0 3 * * 1-5", "--timezone", "Europe/Berlin"),
         "schedule", {"cron": "0 3 * * 1-5", "timezone": "Europe/Berlin", "catchup": False},
         ("      schedule: {cron: 0 3 * * 1-5, timezone: Europe/Berlin}",),
         (("--no-schedule",), ("--schedule", "")),
         ("--schedule", "61 * * * *"), "cron", "plans[0].schedule.cron"),
    Case("plan", "PLAN-001", ("--schedule", "@daily", "--catchup"), "schedule",
         {"cron": "@daily", "timezone": "UTC", "catchup": True},
         ("      schedule: {cron: '@daily', catchup: true}",), (("--schedule", ""),),
         ("--schedule", "@daily", "--timezone", "Mars/Olympus"), "time zone",
         "plans[0].schedule.timezone"),
    Case("plan", "PLAN-001", ("--on-push", "tag:python", "--on-push-branch", "main"), "on",
         {"push": {"repos": "tag:python", "branch": "main"}},
         ("      'on': {push: {repos: tag:python, branch: main}}",), (("--on-push", ""),),
         ("--on-push", "api", "--on-push-branch", "a..b"), "is not a branch name git accepts",
         "plans[0].on.push.branch"),
    Case("plan", "PLAN-001", ("--due", "2026-12-01T12:00Z"), "due", "2026-12-01T12:00:00Z",
         ("      due: 2026-12-01T12:00Z",), (("--due", ""),)),
    Case("todo", "TODO-001", ("--due", "2026-12-01"), "due", "2026-12-01T23:59:59Z",
         ("      due: 2026-12-01",), (("--due", ""),)),
    Case("todo", "TODO-001", ("--mask-env", "VAULT_TOKEN", "--mask-env", "NPM_TOKEN"),
         "mask_env", ["VAULT_TOKEN", "NPM_TOKEN"],
         ("      mask_env: [VAULT_TOKEN, NPM_TOKEN]",), (("--mask-env", ""),),
         ("--mask-env", "1BAD"), "must match", "todos[0].mask_env"),
    Case("repo", "api", ("--forge", "github:acme/api"), "forge",
         {"kind": "github", "project": "acme/api", "api": None, "token_env": None,
          "webhook_secret_env": None, "auth": "token", "app_id_env": None,
          "app_key_env": None, "ca_file": None},
         ("    forge: {kind: github, project: acme/api}",), (("--forge", ""),),
         ("--forge", "gitlab:acme"), "not a GitLab project path", "repos[0].forge.project"),
    Case("repo", "web", ("--forge", "gitlab:acme/core/web", "--forge-api",
                         "https://git.acme.dev", "--token-env", "ACME_GITLAB_TOKEN"), "forge",
         {"kind": "gitlab", "project": "acme/core/web", "api": "https://git.acme.dev",
          "token_env": "ACME_GITLAB_TOKEN", "webhook_secret_env": None, "auth": "token", "app_id_env": None,
          "app_key_env": None, "ca_file": None},
         ("    forge: {kind: gitlab, project: acme/core/web, api: https://git.acme.dev, "
          "token_env: ACME_GITLAB_TOKEN}",), (("--forge", ""),),
         ("--forge", "github:acme/web", "--forge-api", "http://forge.example"),
         "http://", "repos[1].forge.api"),
]


def _normal(value: object) -> object:
    """A due time as the JSON says it (ISO text, Z for UTC)."""
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return value.replace("+00:00", "Z") if isinstance(value, str) else value


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}:{' '.join(c.args)[:40]}")
def test_a_06_flag_sets_its_field_keeps_the_file_and_is_audited(eco_both_paths: Path,
                                                                case: Case) -> None:
    before = eco_both_paths.read_text()
    r = coord_inline(eco_both_paths, *case.command, *case.args, "--json")
    assert r.code == 0, r.err
    assert _normal(r.json()[case.field]) == case.value
    got = _dumped(getattr(item(eco_both_paths, case.kind, case.key), case.field))
    assert _normal(got) == case.value
    after = eco_both_paths.read_text()
    lines = after.splitlines()
    for line in case.lines:
        assert line in lines, after
    assert [x for x in lines if x not in case.lines] == before.splitlines(), after
    log = entries(eco_both_paths)
    assert len(log) == 1 and case.field in log[0]["changes"][0]["fields"], log
    for clear in case.clear:
        r = coord_inline(eco_both_paths, *case.command, *clear, "--json")
        assert r.code == 0, r.err
        assert eco_both_paths.read_text() == before, clear
        assert getattr(item(eco_both_paths, case.kind, case.key), case.field) in (None, [])
        coord_inline(eco_both_paths, *case.command, *case.args)


@pytest.mark.parametrize("case", [c for c in CASES if c.bad],
                         ids=lambda c: f"{c.kind}:{' '.join(c.bad or ())[:40]}")
def test_a_bad_06_value_is_refused_with_the_models_message(eco_both_paths: Path,
                                                          case: Case) -> None:
    assert case.bad is not None
    before = eco_both_paths.read_bytes()
    r = coord_inline(eco_both_paths, *case.command, *case.bad)
    assert r.code == 2, (r.out, r.err)
    assert case.where in r.err and case.says in r.err, r.err
    assert "nothing was written" in r.err and "Traceback" not in r.err
    assert eco_both_paths.read_bytes() == before
    assert entries(eco_both_paths) == []


def test_flag_mistakes_are_bad_input_naming_the_flag(eco_both_paths: Path) -> None:
    before = eco_both_paths.read_bytes()
    for args, says in (
        (("plan", "update", "PLAN-001", "--due", "2026-12-01T12:00"), "has no time zone"),
        (("plan", "update", "PLAN-001", "--due", "next week"), "not a due time"),
        (("todo", "update", "TODO-001", "--due", "2026-13-01"), "not a due time"),
        (("plan", "update", "PLAN-001", "--schedule", "@daily", "--no-schedule"),
         "both given"),
        (("plan", "update", "PLAN-001", "--no-schedule", "--timezone", "UTC"),
         "belong to a schedule"),
        (("plan", "update", "PLAN-001", "--on-push-branch", "main"), "needs --on-push"),
        (("plan", "create", "--title", "x", "--timezone", "UTC"), "add --schedule"),
        (("repo", "update", "api", "--forge", "github"), "not KIND:PROJECT"),
        (("repo", "add", "docs", "--token-env", "T"), "add --forge"),
        (("repo", "update", "api", "--forge", "", "--token-env", "T"), "nothing to belong"),
    ):
        r = coord_inline(eco_both_paths, *args)
        assert r.code == 2 and says in r.err and "Traceback" not in r.err, (args, r.err)
    assert eco_both_paths.read_bytes() == before and entries(eco_both_paths) == []


def test_partial_schedule_and_forge_edits_keep_the_other_entries(eco_both_paths: Path) -> None:
    assert coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--schedule", "@daily",
                        "--timezone", "Europe/Berlin", "--catchup").code == 0
    r = coord_inline(eco_both_paths, "plan", "update", "PLAN-001", "--schedule", "0 4 * * *",
                     "--no-catchup", "--json")
    assert r.code == 0, r.err
    assert r.json()["schedule"] == {"cron": "0 4 * * *", "timezone": "Europe/Berlin",
                                    "catchup": False}
    assert coord_inline(eco_both_paths, "repo", "update", "api", "--forge", "github:acme/api",
                        "--token-env", "ACME_TOKEN").code == 0
    r = coord_inline(eco_both_paths, "repo", "update", "api", "--token-env", "", "--forge-api",
                     "https://ghe.acme.dev", "--json")
    assert r.code == 0, r.err
    assert r.json()["forge"] == {"kind": "github", "project": "acme/api",
                                 "api": "https://ghe.acme.dev", "token_env": None,
                                 "webhook_secret_env": None, "auth": "token", "app_id_env": None,
          "app_key_env": None, "ca_file": None}


def test_create_commands_take_the_06_fields_in_their_one_edit(eco_both_paths: Path) -> None:
    r = coord_inline(eco_both_paths, "plan", "create", "--title", "Nightly", "--status", "active",
                     "--repos", "api", "--schedule", "0 3 * * 1-5", "--timezone",
                     "Europe/Berlin", "--no-catchup", "--on-push", "api", "--due",
                     "2026-12-01", "--json")
    assert r.code == 0, r.err
    plan = r.json()
    assert plan["schedule"] == {"cron": "0 3 * * 1-5", "timezone": "Europe/Berlin",
                                "catchup": False}
    assert plan["on"] == {"push": {"repos": "api", "branch": None}}
    assert _normal(plan["due"]) == "2026-12-01T23:59:59Z"
    r = coord_inline(eco_both_paths, "todo", "create", "--task", "Rotate", "--repo", "api",
                     "--due", "2026-12-01T13:00+01:00", "--mask-env", "VAULT_TOKEN", "--json")
    assert r.code == 0, r.err
    todo = r.json()
    assert _normal(todo["due"]) in ("2026-12-01T13:00:00+01:00",)
    assert todo["mask_env"] == ["VAULT_TOKEN"]
    r = coord_inline(eco_both_paths, "repo", "add", "docs", "--forge", "gitea:acme/docs",
                     "--forge-api", "http://127.0.0.1:3000", "--token-env", "GITEA_DOCS",
                     "--json")
    assert r.code == 0, r.err
    assert r.json()["forge"]["kind"] == "gitea" and r.json()["forge"]["token_env"] == "GITEA_DOCS"
    cat = CatalogStore(eco_both_paths).load()
    plan_model = cat.plan(plan["id"])
    assert plan_model is not None and plan_model.schedule is not None
    assert [e["op"] for e in entries(eco_both_paths)] == ["create_plan", "create_todo",
                                                           "add_repo"]
    # A bad value on create: nothing created.
    before = eco_both_paths.read_bytes()
    r = coord_inline(eco_both_paths, "plan", "create", "--title", "x", "--schedule", "61 * * * *")
    assert r.code == 2 and "plans[2].schedule.cron" in r.err, r.err
    assert eco_both_paths.read_bytes() == before
    assert CATALOG  # (the catalog the fixture wrote)
