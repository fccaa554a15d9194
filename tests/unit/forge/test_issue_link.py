"""`coord issue link` (issue #83, item 3): a catalog issue mirrored to a forge issue of
one of its repos, over the stub forge: linking pushes title and state and records
``forge_issue:``; bad input changes nothing and calls no forge; `issue update/close`
push; the forge's verified ``issues`` deliveries bring title and state back (a
stranger's unsigned one changes nothing); a sync that completes the issue's plan
comments once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.audit import log as audit
from coordination.catalog.manager import CoordinationManager
from coordination.errors import CatalogError, UsageError
from coordination.forge.base import ForgeSpec
from coordination.forge.issue_link import (
    apply_issue_event,
    comment_plan_completed,
    link_issue,
    push_issue,
)
from coordination.forge.issues import IssueEvent, issue_event, issue_number
from coordination.forge.stub import StubForges
from coordination.forge.webhooks import sign

pytestmark = pytest.mark.timeout(60)

GH = ForgeSpec("github", "acme/api", "https://api.github.com", "GITHUB_TOKEN")


def _catalog(tmp_path: Path, *, issue_repos: list[str], status: str = "open",
             extra: str = "") -> Path:
    path = tmp_path / "ecosystem.yaml"
    path.write_text(f"""version: 1
repos:
  - {{name: api, path: api, forge: {{kind: github, project: acme/api}}}}
  - {{name: web, path: web, forge: {{kind: gitea, project: acme/web,
      api: https://git.example.com/api/v1}}}}
  - {{name: docs, path: docs}}
coordination:
  issues:
    - id: ISSUE-001
      title: Drop Python 3.11
      description: "every service"
      status: {status}
      repos: [{", ".join(issue_repos)}]{extra}
""")
    return path


def _forge_issue(path: Path) -> Any:
    return yaml.safe_load(path.read_text())["coordination"]["issues"][0].get("forge_issue")


# where an issue's page is ----------------------------------------------------------------

@pytest.mark.parametrize(("spec", "url", "number"), [
    (GH, "https://github.com/acme/api/issues/12", 12),
    (GH, "https://github.com/ACME/Api/issues/3/", 3),
    (GH, "https://github.com/acme/api/pull/12", None),
    (GH, "https://github.com/acme/other/issues/12", None),
    (GH, "https://evil.example/acme/api/issues/12", None),
    (GH, "https://github.com/acme/api/issues/12?x=1", None),
    (GH, "https://github.com/acme/api/issues/0", None),
    (GH, "https://github.com/acme/api/-/issues/12", None),
    (ForgeSpec("github", "acme/api", "https://ghe.example.com/api/v3", "T"),
     "https://ghe.example.com/acme/api/issues/4", 4),
    (ForgeSpec("github", "acme/api", "https://api.octo.ghe.com", "T"),
     "https://octo.ghe.com/acme/api/issues/4", 4),
    (ForgeSpec("gitlab", "grp/sub/api", "https://gitlab.com/api/v4", "T"),
     "https://gitlab.com/grp/sub/api/-/issues/7", 7),
    (ForgeSpec("gitea", "acme/web", "https://git.example.com/gitea/api/v1", "T"),
     "https://git.example.com/gitea/acme/web/issues/9", 9),
    (ForgeSpec("gitea", "acme/web", "https://git.example.com/gitea/api/v1", "T"),
     "https://git.example.com/acme/web/issues/9", None),
    (ForgeSpec("gitea", "acme/web", "http://127.0.0.1:3000/api/v1", "T"),
     "http://127.0.0.1:3001/acme/web/issues/9", None),
])
def test_an_issue_page_is_one_of_the_project_on_its_forge(spec: ForgeSpec, url: str,
                                                          number: int | None) -> None:
    assert issue_number(url, spec) == number


def test_the_catalog_refuses_a_forge_issue_that_is_no_issue_page(tmp_path: Path) -> None:
    path = _catalog(tmp_path, issue_repos=["api"],
                    extra="\n      forge_issue: https://github.com/acme/api/pull/3")
    with pytest.raises(CatalogError, match="forge_issue"):
        CoordinationManager(path).reads.catalog()


# linking -----------------------------------------------------------------------------------

def test_create_opens_the_issue_pushes_its_state_and_records_the_link(tmp_path: Path) -> None:
    path = _catalog(tmp_path, issue_repos=["api", "docs"], status="resolved")
    forges = StubForges()
    done = link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=forges)
    issues = forges["acme/api"].issue_tracker()
    assert done.created and done.number == 1 and done.repo == "api"
    assert issues.issues[1].title == "Drop Python 3.11"
    assert issues.issues[1].state == "closed"  # resolved in coord: closed on the forge
    assert _forge_issue(path) == "https://github.com/acme/api/issues/1"
    ops = [e["op"] for e in audit.read(audit.log_path(path))]
    assert ops == ["link_issue"]


def test_an_existing_issue_is_linked_and_takes_coords_title(tmp_path: Path) -> None:
    path = _catalog(tmp_path, issue_repos=["api"])
    forges = StubForges()
    forge = forges(CoordinationManager(path).reads.catalog().repo("api"))  # type: ignore[arg-type]
    made = forge.issue_tracker().create_issue("old words")
    done = link_issue(CoordinationManager(path), "ISSUE-001", url=made.url, factory=forges)
    assert not done.created and done.title == "Drop Python 3.11" and done.state == "open"
    assert forge.issue_tracker().issues[made.number].title == "Drop Python 3.11"
    assert _forge_issue(path) == made.url


@pytest.mark.parametrize(("repos", "words"), [
    (["docs"], "names 0 repos with a forge"),
    (["api", "web"], "names 2 repos with a forge"),
])
def test_create_needs_exactly_one_repo_with_a_forge(tmp_path: Path, repos: list[str],
                                                   words: str) -> None:
    path = _catalog(tmp_path, issue_repos=repos)
    before = path.read_bytes()
    forges = StubForges()
    with pytest.raises(UsageError, match=words) as err:
        link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=forges)
    assert err.value.exit_code == 2 and "--forge-issue" in str(err.value.hint)
    assert path.read_bytes() == before and forges.forges == {}


@pytest.mark.parametrize("url", [
    "https://github.com/acme/other/issues/1",      # another project
    "https://gitlab.com/acme/api/-/issues/1",      # another forge
    "https://github.com/acme/api/pull/1",          # a pull request's page
    "not a url",
])
def test_a_url_that_is_no_issue_of_the_issues_repos_changes_nothing(tmp_path: Path,
                                                                    url: str) -> None:
    path = _catalog(tmp_path, issue_repos=["api", "docs"])
    before = path.read_bytes()
    forges = StubForges()
    with pytest.raises(UsageError, match="is not an issue of the forge project") as err:
        link_issue(CoordinationManager(path), "ISSUE-001", url=url, factory=forges)
    assert "api (github: acme/api)" in err.value.message
    assert path.read_bytes() == before and forges.forges == {}


def test_an_issue_the_forge_does_not_show_is_bad_input(tmp_path: Path) -> None:
    path = _catalog(tmp_path, issue_repos=["api"])
    before = path.read_bytes()
    with pytest.raises(UsageError, match="is not an issue acme/api shows"):
        link_issue(CoordinationManager(path), "ISSUE-001",
                   url="https://github.com/acme/api/issues/41", factory=StubForges())
    assert path.read_bytes() == before


def test_the_cli_refuses_bad_input_with_exit_2_and_changes_nothing(tmp_path: Path) -> None:
    from tests.unit.support.cli import clean_error, coord

    path = _catalog(tmp_path, issue_repos=["docs"])
    before = path.read_bytes()
    for args in (("--create",), ("--forge-issue", "https://github.com/acme/api/issues/1"),
                 (), ("--create", "--forge-issue", "https://github.com/acme/api/issues/1")):
        r = coord(path, "issue", "link", "ISSUE-001", *args, "--json")
        clean_error(r, 2)
        assert r.stdout == "" and path.read_bytes() == before, (args, r.stderr)
    r = coord(path, "issue", "link", "ISSUE-009", "--create")
    clean_error(r, 2)


# keeping in step ---------------------------------------------------------------------------

def test_close_and_reopen_are_pushed(tmp_path: Path) -> None:
    path = _catalog(tmp_path, issue_repos=["api"])
    forges = StubForges()
    mgr = CoordinationManager(path)
    link_issue(mgr, "ISSUE-001", create=True, factory=forges)
    issues = forges["acme/api"].issue_tracker()
    mgr.issues.close("ISSUE-001")
    assert push_issue(mgr, "ISSUE-001", factory=forges) is not None
    assert issues.issues[1].state == "closed"
    mgr.issues.update("ISSUE-001", status="in_progress", title="Drop 3.11 everywhere")
    push_issue(mgr, "ISSUE-001", factory=forges)
    assert (issues.issues[1].state, issues.issues[1].title) == ("open", "Drop 3.11 everywhere")


def _event(number: int, *, title: str = "Renamed on the forge", state: str = "closed",
           project: str = "acme/api") -> IssueEvent:
    return IssueEvent("github", project, number, "closed", title, state)  # type: ignore[arg-type]


def test_a_forge_event_brings_title_and_state_back_and_an_echo_writes_nothing(
        tmp_path: Path) -> None:
    path = _catalog(tmp_path, issue_repos=["api"])
    forges = StubForges()
    link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=forges)
    log = audit.log_path(path)
    assert apply_issue_event(path, _event(1))["issues"] == ["ISSUE-001"]
    issue = CoordinationManager(path).reads.get_issue("ISSUE-001")
    assert (issue.title, issue.status.value) == ("Renamed on the forge", "closed")
    entries = len(audit.read(log))
    before = path.read_bytes()
    assert apply_issue_event(path, _event(1))["issues"] == []  # the same again: an echo
    assert apply_issue_event(path, _event(2))["linked"] == []  # another forge issue
    assert apply_issue_event(path, _event(1, project="acme/web"))["linked"] == []
    assert path.read_bytes() == before and len(audit.read(log)) == entries
    apply_issue_event(path, _event(1, state="open"))
    assert CoordinationManager(path).reads.get_issue("ISSUE-001").status.value == "open"


@pytest.mark.parametrize(("kind", "name", "payload"), [
    ("github", "issues", {"action": "closed", "issue": {
        "number": 4, "title": "T", "state": "closed", "html_url": "u"},
        "repository": {"full_name": "acme/api"}}),
    ("gitea", "issues", {"action": "reopened", "issue": {
        "number": 4, "title": "T", "state": "open"}, "repository": {"full_name": "acme/web"}}),
    ("gitlab", "Issue Hook", {"object_attributes": {
        "iid": 4, "title": "T", "state": "closed", "action": "close"},
        "project": {"path_with_namespace": "grp/api"}}),
])
def test_each_forges_issue_delivery_is_read(kind: str, name: str,
                                            payload: dict[str, Any]) -> None:
    event = issue_event(kind, name, payload, "d-1")  # type: ignore[arg-type]
    assert event is not None and event.number == 4 and event.title == "T"
    assert event.state == ("open" if kind == "gitea" else "closed")
    pr = {"action": "closed", "issue": {"number": 4, "title": "T", "state": "closed",
                                        "pull_request": {"url": "x"}},
          "repository": {"full_name": "acme/api"}}
    assert issue_event("github", "issues", pr, None) is None  # a pull request's: not ours


def test_a_strangers_unsigned_issue_delivery_changes_nothing(rt: Any, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from coordination.ui.hooks import Hooks

    path = _catalog(tmp_path, issue_repos=["api"])
    link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=StubForges())
    before = path.read_bytes()
    body = json.dumps({"action": "closed", "issue": {
        "number": 1, "title": "owned", "state": "closed", "html_url": "x"},
        "repository": {"full_name": "acme/api"}}).encode()
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1",
               "Content-Type": "application/json"}
    hooks = Hooks(rt, path, env={"COORD_FORGE_WEBHOOK_SECRET": "the-secret"})
    with TestClient(hooks.app()) as client:
        for forged in ({}, sign("github", body, "not-the-secret")):
            res = client.post("/hooks/github", content=body, headers={**headers, **forged})
            assert res.status_code == 401, res.text
        assert path.read_bytes() == before
        res = client.post("/hooks/github", content=body,
                          headers={**headers, **sign("github", body, "the-secret")})
        assert res.status_code == 200 and res.json()["issues"] == ["ISSUE-001"], res.text
    issue = CoordinationManager(path).reads.get_issue("ISSUE-001")
    assert (issue.title, issue.status.value) == ("owned", "closed")


# the plan completes ------------------------------------------------------------------------

def test_a_sync_that_completes_the_plan_comments_once(rt: Any, tmp_path: Path) -> None:
    from coordination.sweeps import SweepService
    from tests.unit.support.sweeps import PLAN, write_catalog
    from workers.embedded import embedded_workers

    path = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "blocked_by": ["ISSUE-001"]},
        {"id": "TODO-002", "repo": "web", "run": "true"},
    ], issues=[{"id": "ISSUE-001", "title": "Drop 3.11", "status": "resolved",
                "repos": ["api"]}])
    doc = yaml.safe_load(path.read_text())
    doc["repos"][0]["forge"] = {"kind": "github", "project": "acme/api"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    forges = StubForges()
    link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=forges)
    issues = forges["acme/api"].issue_tracker()
    svc = SweepService(rt, path)
    svc.forge_factory = forges
    with embedded_workers(rt, {"api": 1, "web": 1}):
        sid = svc.start(PLAN)
        st = svc.wait(sid, timeout=60)
        synced = svc.sync(sid, status=st)
        assert synced["plan_completed"] is True
        assert synced["forge_issues"] == [{"issue": "ISSUE-001", "commented": True,
                                           "forge_issue": "https://github.com/acme/api/issues/1"}]
        assert len(issues.comments[1]) == 1 and PLAN in issues.comments[1][0]
        again = svc.sync(sid, status=st)  # synced again: the plan was completed already
        assert "forge_issues" not in again
    assert len(issues.comments[1]) == 1


def test_a_sync_that_completes_a_plan_with_no_linked_issue_asks_no_forge(
        rt: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No issue of the catalog is linked to a forge issue: the forge is not asked to
    comment after the sweep; the plan completes as before."""
    import coordination.forge.issue_link as issue_link
    from coordination.sweeps import SweepService
    from tests.unit.support.sweeps import PLAN, write_catalog
    from workers.embedded import embedded_workers

    def asked(*_a: object, **_k: object) -> list[dict[str, object]]:
        raise AssertionError("the forge was asked for a plan with no linked issue")

    monkeypatch.setattr(issue_link, "comment_plan_completed", asked)
    path = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "blocked_by": ["ISSUE-001"]},
    ], issues=[{"id": "ISSUE-001", "title": "Drop 3.11", "status": "resolved",
                "repos": ["api"]}])
    svc = SweepService(rt, path)
    with embedded_workers(rt, {"api": 1}):
        sid = svc.start(PLAN)
        synced = svc.sync(sid, status=svc.wait(sid, timeout=60))
    assert synced["plan_completed"] is True and "forge_issues" not in synced


def test_a_forge_that_fails_the_comment_is_listed_not_raised(tmp_path: Path) -> None:
    from coordination.errors import ForgeUnavailable

    path = _catalog(tmp_path, issue_repos=["api"], extra="""
  plans:
    - {id: PLAN-001, title: p, status: completed}
  todos:
    - {id: TODO-001, task: t, repo: api, plan: PLAN-001, status: completed,
       blocked_by: [ISSUE-001]}""")
    forges = StubForges()
    link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=forges)
    issues = forges["acme/api"].issue_tracker()

    def down(number: int, body: str) -> None:
        raise ForgeUnavailable("GitHub answered 502", forge="github", project="acme/api")

    issues.comment_issue = down  # type: ignore[method-assign]
    told = comment_plan_completed(path, "PLAN-001", factory=forges)
    assert told[0]["commented"] is False and "502" in str(told[0]["error"])


def test_gitlabs_issues_are_its_project_issues_and_notes() -> None:
    """GitLab's issue calls, pinned: the paths, bodies and answers as its API docs give
    them (docs.gitlab.com/api/issues, /api/notes); tests/integration/test_issue_link.py
    runs them against the fake GitLab too."""
    import httpx

    from coordination.forge import open_forge
    from coordination.forge.base import Options
    from coordination.forge.issues import tracker_for

    seen: list[tuple[str, str, Any]] = []
    state = {"title": "t", "state": "opened"}

    def answer(request: httpx.Request) -> httpx.Response:
        body: Any = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.raw_path.decode(), body))
        if request.url.path.endswith("/notes"):
            return httpx.Response(201, json={"id": 1, "body": body["body"]})
        if request.method in ("POST", "PUT"):
            state["title"] = body.get("title", state["title"])
            if "state_event" in body:
                state["state"] = "closed" if body["state_event"] == "close" else "opened"
        return httpx.Response(201 if request.method == "POST" else 200, json={
            "iid": 5, "title": state["title"], "state": state["state"],
            "web_url": "https://gitlab.example.com/grp/api/-/issues/5"})

    spec = ForgeSpec("gitlab", "grp/api", "https://gitlab.example.com/api/v4", "GL_TOKEN")
    forge = open_forge(spec, {"GL_TOKEN": "glpat-0123456789"},
                       Options(transport=httpx.MockTransport(answer)))
    issues = tracker_for(forge)
    made = issues.create_issue("Drop 3.11", "why")
    assert (made.number, made.state) == (5, "open")
    assert issue_number(made.url, spec) == 5
    assert issues.edit_issue(5, title="Drop 3.11!", state="closed").state == "closed"
    assert issues.edit_issue(5, state="open").state == "open"
    issues.comment_issue(5, "done")
    base = "/api/v4/projects/grp%2Fapi/issues"
    assert seen == [
        ("POST", base, {"title": "Drop 3.11", "description": "why"}),
        ("PUT", f"{base}/5", {"title": "Drop 3.11!", "state_event": "close"}),
        ("PUT", f"{base}/5", {"state_event": "reopen"}),
        ("POST", f"{base}/5/notes", {"body": "done"}),
    ]


def test_the_mcp_tools_push_close_and_title_too(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.forge import issue_link
    from coordination.mcp_server.operations import Operations

    path = _catalog(tmp_path, issue_repos=["api"])
    forges = StubForges()
    link_issue(CoordinationManager(path), "ISSUE-001", create=True, factory=forges)
    monkeypatch.setattr(issue_link, "forge_for", forges)
    issues = forges["acme/api"].issue_tracker()
    Operations(path).close_issue("ISSUE-001")
    assert issues.issues[1].state == "closed"
    Operations(path).update_issue("ISSUE-001", status="open", title="Renamed by an agent")
    assert (issues.issues[1].state, issues.issues[1].title) == ("open", "Renamed by an agent")
