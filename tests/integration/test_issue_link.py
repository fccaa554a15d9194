"""`coord issue link` as a user runs it (issue #83, item 3), against the HTTP fakes of
GitHub, Gitea and GitLab (every request and answer checked against the forge's
description; GitLab's written from its API docs): `issue link --create` opens the forge
issue, `issue close` closes it, a person renaming and reopening it on the forge is brought back into the catalog by `coord forge webhook`
(signed deliveries only: a stranger's unsigned one changes nothing), and a URL of another
project is refused with exit 2 and nothing changed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.forges import TOKEN_ENV, FakeForge
from tests.servers import free_port, term_then_kill
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

SECRET = "issue-hook-s3cret"
ROOT = Path(__file__).resolve().parents[2]


def _env(fake: FakeForge) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update({TOKEN_ENV: fake.token, "COORD_FORGE_WEBHOOK_SECRET": SECRET,
                "COORD_REDIS_URL": os.environ["COORD_REDIS_URL"]})
    return env


def _coord(cat: Path, fake: FakeForge, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(cat),
                           *args], capture_output=True, text=True, env=_env(fake), cwd=ROOT,
                          timeout=90)


def _catalog(tmp_path: Path, fake: FakeForge) -> Path:
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text(f"""version: 1
repos:
  - name: api
    path: api
    forge: {{kind: {fake.kind}, project: acme/api, api: "{fake.api}", token_env: {TOKEN_ENV}}}
  - {{name: docs, path: docs}}
coordination:
  issues:
    - id: ISSUE-001
      title: Drop Python 3.11
      description: every service moves to 3.13
      status: open
      repos: [api, docs]
""")
    return cat


def _issue(cat: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(cat.read_text())["coordination"]["issues"][0])


def _stranger(kind: str, number: int, origin: str) -> tuple[bytes, dict[str, str]]:
    """An issues delivery as a stranger sends it: the right shape, no signature."""
    if kind == "gitlab":
        doc: dict[str, Any] = {"object_kind": "issue", "project": {
            "path_with_namespace": "acme/api"}, "object_attributes": {
            "iid": number, "title": "owned", "state": "opened", "action": "reopen"}}
        return json.dumps(doc).encode(), {"X-Gitlab-Event": "Issue Hook"}
    doc = {"action": "reopened", "number": number, "issue": {
        "number": number, "title": "owned", "state": "open",
        "html_url": f"{origin}/acme/api/issues/{number}"},
        "repository": {"full_name": "acme/api"}}
    header = "X-GitHub-Event" if kind == "github" else "X-Gitea-Event"
    return json.dumps(doc).encode(), {header: "issues"}


@pytest.mark.parametrize("fake_forge", ["github", "gitea", "gitlab"], indirect=True)
def test_link_close_and_the_forge_webhook_as_a_user_runs_them(
        fake_forge: FakeForge, tmp_path: Path, redis_url: str) -> None:
    fake = fake_forge
    project = fake.add_project("acme/api")
    cat = _catalog(tmp_path, fake)

    # --create: opened in the project of the issue's one repo with a forge
    r = _coord(cat, fake, "issue", "link", "ISSUE-001", "--create", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    number = doc["number"]
    assert doc["created"] is True and doc["repo"] == "api" and doc["state"] == "open"
    assert project.issues[number].title == "Drop Python 3.11"
    assert "every service moves to 3.13" in project.issues[number].body
    dash = "/-" if fake.kind == "gitlab" else ""
    assert _issue(cat)["forge_issue"] == f"{fake.origin}/acme/api{dash}/issues/{number}"

    # coord closes it: the forge issue is closed
    r = _coord(cat, fake, "issue", "close", "ISSUE-001")
    assert r.returncode == 0, r.stderr
    assert project.issues[number].state == "closed"

    # a URL of another project: exit 2, nothing changed, nothing asked of the forge
    fake.add_project("acme/other")
    other = fake.add_issue("acme/other", "not ours")
    before, asked = cat.read_bytes(), len(fake.seen)
    r = _coord(cat, fake, "issue", "link", "ISSUE-001", "--forge-issue",
               f"{fake.origin}/acme/other/issues/{other.number}")
    assert r.returncode == 2 and "is not an issue of the forge project" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert cat.read_bytes() == before and len(fake.seen) == asked

    # the forge's webhook: a person renames and reopens it there
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(cat), "forge",
         "webhook", "--port", str(port)], env=_env(fake), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, timeout=60, what="coord forge webhook to listen")
        hook = f"http://127.0.0.1:{port}/hooks/{fake.kind}"

        # a stranger's unsigned delivery: refused, the catalog as it was
        body, headers = _stranger(fake.kind, number, fake.origin)
        req = urllib.request.Request(hook, data=body, method="POST", headers={
            **headers, "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 401
        assert cat.read_bytes() == before

        fake.add_webhook(hook, SECRET)
        fake.edit_issue_by_hand("acme/api", number, title="Drop Python 3.11 and 3.12",
                                state="open")
        fake.settle()
        wait_for(lambda: _issue(cat)["status"] == "open"
                 and _issue(cat)["title"] == "Drop Python 3.11 and 3.12",
                 timeout=30, what="the forge's edit in the catalog")
        assert all(d.status == 200 for d in fake.deliveries), [
            (d.event, d.status) for d in fake.deliveries]
    finally:
        term_then_kill(proc.pid, group=False, grace=10, poll=0.1)
        proc.wait(10)
