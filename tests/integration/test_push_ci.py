"""CI integration, as a user runs it: `coord trigger push` (a forge's push webhook takes
the same path) starts a sweep whose pushed repo's todos run on the pushed commit (a
worktree at the SHA, ``COORD_PUSH_SHA``; fetched from the repo's remote when the
checkout lacks it), the other repos' todos on their checkouts as always, and posts
``coord/<PLAN>`` on the commit (pending, then success or failure) on a fake forge that
validates every request against the forge's description. Real git (a bare repository
as the remote), a real redis-server and real `coord worker` processes; embedded too. A
forge that is down: the sweep still ends, and says it.

Without a signing key, a Redis writer rewrites a push sweep's stored spec before the
workers read it: its forge pointed at a listener of its own with another variable the
worker holds as the token, or its remote at another repository holding another commit.
The worker takes the forge and the remote from its own catalog: the listener hears
nothing, nothing is fetched from the other repository, and each refusal is said."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.forges import TOKEN_ENV
from tests.forges.server import FakeForge
from tests.integration.change_repos import Repos, git, make_repos, remote_with
from tests.integration.helpers import ROOT, Cluster
from tests.waiting import wait_for
from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

UI = "http://ui.example:8080"


def catalog(root: Path, api: str, kind: str = "github") -> Path:
    """core (a clone of a bare remote, with ``forge:``) and api (a plain directory, no
    forge) that depends on it; PLAN-001 runs on a push to core, its todo of core then
    api's. Each todo appends where it ran, HEAD and ``COORD_PUSH_SHA`` to seen.log; core's
    fails on a commit that has fail.txt."""
    (root / "repos" / "api").mkdir(parents=True, exist_ok=True)
    seen = root / "seen.log"
    line = ("printf '%s %s %s %s\\n' {repo} \"$(pwd -P)\" \"$(git rev-parse HEAD 2>/dev/null "
            "|| echo none)\" \"${{COORD_PUSH_SHA:-none}}\" >> " + str(seen))
    core = line.format(repo="core") + " && test ! -e fail.txt"
    eco = root / "ecosystem.yaml"
    eco.write_text(f"""\
version: 1
repos:
  - {{name: core, path: checkouts/core,
     forge: {{kind: {kind}, project: acme/core, api: "{api}", token_env: {TOKEN_ENV}}}}}
  - {{name: api, path: repos/api}}
coordination:
  dependencies:
    - {{id: DEP-001, consumer: api, provider: core}}
  plans:
    - {{id: PLAN-001, title: on pushes to core, on: {{push: {{repos: "...core"}}}}}}
  todos:
    - {{id: TODO-001, task: test core, repo: core, plan: PLAN-001, run: {json.dumps(core)}}}
    - {{id: TODO-002, task: test api, repo: api, plan: PLAN-001, blocked_by: [TODO-001],
       run: {json.dumps(line.format(repo="api"))}}}
""")
    return eco


def seen(root: Path) -> dict[str, list[str]]:
    """What each todo saw (its last run): repo -> [cwd, HEAD, COORD_PUSH_SHA]."""
    log = root / "seen.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return {p[0]: p[1:] for p in (line.split() for line in lines)}


def recording(fake: FakeForge) -> list[tuple[str, str, str, str | None]]:
    """Every commit status the fake is given from now on: (sha, context, state in coord's
    words, target_url), in order."""
    posted: list[tuple[str, str, str, str | None]] = []
    said = fake.status_event
    words = {"failed": "failure", "running": "pending"}

    def status_event(p: Any, sha: str, check: str, state: str) -> None:
        s = p.statuses[sha][check]
        posted.append((sha, check, words.get(s.state, s.state), s.target_url))
        said(p, sha, check, state)

    fake.status_event = status_event  # type: ignore[method-assign]
    return posted


def statuses_of(posted: list[tuple[str, str, str, str | None]], sha: str, n: int
                ) -> list[tuple[str, str, str | None]]:
    """The statuses posted on ``sha``, once there are ``n``: the same word posted again
    (an ender and a pass at once, under load) counted once."""
    def got() -> list[tuple[str, str, str | None]] | None:
        mine: list[tuple[str, str, str | None]] = []
        for h, c, s, u in posted:
            if h == sha and (not mine or mine[-1] != (c, s, u)):
                mine.append((c, s, u))
        return mine if len(mine) >= n else None

    return wait_for(got, 30, f"{n} commit statuses on {sha}")  # type: ignore[no-any-return]


def now_on(fake: FakeForge, sha: str) -> str:
    """The status the forge shows on ``sha`` now (what branch protection reads)."""
    return fake.projects["acme/core"].statuses[sha]["coord/PLAN-001"].state


def worktrees_of(checkout: Path) -> list[str]:
    return [ln for ln in git(checkout, "worktree", "list", "--porcelain").splitlines()
            if ln.startswith("worktree ")]


def commit(repos: Repos, name: str, filename: str) -> str:
    """A commit pushed to ``name``'s remote from another clone: the checkout lacks it."""
    return repos.push_from_elsewhere(name, filename)


@pytest.mark.parametrize("fake_forge", ["github"], indirect=True)
def test_a_push_runs_the_pushed_repos_todos_on_the_commit_and_posts_its_status(
        cluster: Cluster, fake_forge: FakeForge) -> None:
    c, fake = cluster, fake_forge
    repos = make_repos(c.root, ["core"])
    checkout = repos.checkout("core")
    before = git(checkout, "rev-parse", "HEAD")
    # the repository's own hooks never run for coord's worktree (its todos' code may
    # have written them)
    hooked = c.root / "hooked"
    hook = checkout / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {hooked}\n")
    hook.chmod(0o755)
    fake.add_project("acme/core")
    posted = recording(fake)
    catalog(c.root, fake.api)
    c.env.update({TOKEN_ENV: fake.token, "COORD_UI_URL": UI})
    c.start_workers(["core", "api"])

    sha = commit(repos, "core", "pushed.txt")
    assert git(checkout, "cat-file", "-t", sha, check=False) != "commit"  # not fetched yet
    doc = c.cli_json("trigger", "push", "--repo", "core", "--ref", sha, "--wait")
    sid = doc["started"][0]["sweep_id"]
    assert [e["status"] for e in doc["ended"]] == ["succeeded"], doc
    ran = seen(c.root)
    # core's todo ran on the pushed commit, in a worktree of its own, told the SHA
    cwd, head, told = ran["core"]
    assert (head, told) == (sha, sha)
    assert Path(cwd) != checkout.resolve() and not Path(cwd).exists()  # removed after
    # api's todo ran where it always does, told nothing
    assert ran["api"] == [str((c.root / "repos" / "api").resolve()), "none", "none"]
    # the checkout is as it was, and keeps no worktree
    assert git(checkout, "rev-parse", "HEAD") == before
    assert worktrees_of(checkout) == [f"worktree {checkout.resolve()}"]
    assert not hooked.exists()
    assert statuses_of(posted, sha, 2) == [
        ("coord/PLAN-001", "pending", f"{UI}/sweeps/{sid}"),
        ("coord/PLAN-001", "success", f"{UI}/sweeps/{sid}")]
    assert now_on(fake, sha) == "success"

    # a commit whose todo fails: failure posted on it; the sweep is failed
    bad = commit(repos, "core", "fail.txt")
    doc = c.cli_json("trigger", "push", "--repo", "core", "--ref", bad, "--wait", expect=1)
    assert [e["status"] for e in doc["ended"]] == ["failed"], doc
    assert seen(c.root)["core"][1:] == [bad, bad]
    assert [s for _, s, _ in statuses_of(posted, bad, 2)] == ["pending", "failure"]
    assert now_on(fake, bad) == "failure"

    # a commit the remote does not have: the todo fails saying so, failure posted
    missing = "ab" * 20
    doc = c.cli_json("trigger", "push", "--repo", "core", "--ref", missing, "--wait",
                     expect=1)
    st = c.cli_json("sweep", "status", doc["started"][0]["sweep_id"])
    reason = c.checkpoint(st["sweep_id"], "TODO-001").get("reason") or ""
    assert (f"the pushed commit {missing} of core: not in its checkout nor on its remote "
            "'origin' (its branch main fetched): was it pushed there?") in reason, reason
    assert [s for _, s, _ in statuses_of(posted, missing, 2)] == ["pending", "failure"]
    assert worktrees_of(checkout) == [f"worktree {checkout.resolve()}"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_a_forge_that_is_down_is_said_and_the_sweep_still_ends(cluster: Cluster) -> None:
    c = cluster
    repos = make_repos(c.root, ["core"])
    catalog(c.root, f"http://127.0.0.1:{_closed_port()}")
    c.env[TOKEN_ENV] = "some-token"
    c.start_workers(["core", "api"])
    sha = commit(repos, "core", "pushed.txt")
    doc = c.cli_json("trigger", "push", "--repo", "core", "--ref", sha, "--wait")
    sid = doc["started"][0]["sweep_id"]
    assert [e["status"] for e in doc["ended"]] == ["succeeded"], doc
    assert seen(c.root)["core"][1:] == [sha, sha]

    def said() -> list[dict[str, Any]] | None:
        got = [e for e in c.events(sid) if e["kind"] == "commit_status.failed"]
        return got if len(got) >= 2 else None

    events = wait_for(said, 30, "two commit_status.failed events")
    # (the end's post tried again by a pass that came while the ender tried, under load:
    # the same word)
    assert {(e["repo"], e["sha"], e["context"]) for e in events} == {
        ("core", sha, "coord/PLAN-001")}
    assert events[0]["state"] == "pending"
    assert {e["state"] for e in events[1:]} == {"success"}
    assert all(e["reason"] for e in events)


@pytest.mark.parametrize("fake_forge", ["gitlab"], indirect=True)
def test_embedded_a_push_runs_on_the_commit_and_posts_its_status(
        tmp_path: Path, fake_forge: FakeForge) -> None:
    """Embedded (no Redis URL): `coord trigger push --wait` starts a detached `plan sweep`
    that runs it; the same worktree, the same statuses."""
    fake = fake_forge
    fake.add_project("acme/core")
    posted = recording(fake)
    repos = make_repos(tmp_path, ["core"])
    eco = catalog(tmp_path, fake.api, kind="gitlab")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT), COORD_UI_URL=UI,
               **{TOKEN_ENV: fake.token})
    sha = commit(repos, "core", "pushed.txt")
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                          "trigger", "push", "--repo", "core", "--ref", sha, "--wait", "--json"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    sid = doc["started"][0]["sweep_id"]
    assert seen(tmp_path)["core"][1:] == [sha, sha]
    assert statuses_of(posted, sha, 2) == [
        ("coord/PLAN-001", "pending", f"{UI}/sweeps/{sid}"),
        ("coord/PLAN-001", "success", f"{UI}/sweeps/{sid}")]
    assert worktrees_of(repos.checkout("core")) == [
        f"worktree {repos.checkout('core').resolve()}"]


@pytest.mark.parametrize("fake_forge", ["github"], indirect=True)
def test_a_forges_push_webhook_runs_on_the_commit_and_posts_its_status(
        cluster: Cluster, fake_forge: FakeForge, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forge's push webhook takes `coord trigger push`'s path: the same worktree at
    the pushed commit, the same statuses, the link from the receiver's COORD_UI_URL."""
    from starlette.testclient import TestClient

    from coordination.forge.webhooks import sign
    from coordination.runtime.context import get_runtime
    from coordination.ui.hooks import Hooks

    c, fake = cluster, fake_forge
    repos = make_repos(c.root, ["core"])
    fake.add_project("acme/core")
    posted = recording(fake)
    eco = catalog(c.root, fake.api)
    c.env[TOKEN_ENV] = fake.token
    c.start_workers(["core", "api"])
    for k, v in {**c.env, "COORD_UI_URL": UI}.items():
        if k.startswith("COORD_") or k == TOKEN_ENV:
            monkeypatch.setenv(k, v)
    sha = commit(repos, "core", "pushed.txt")
    body = json.dumps({"ref": "refs/heads/main", "before": "1" * 40, "after": sha,
                       "repository": {"full_name": "acme/core"}}).encode()
    client = TestClient(Hooks(get_runtime(eco), eco,
                              env={"COORD_FORGE_WEBHOOK_SECRET": "s3"}).app())
    res = client.post("/hooks/github", content=body,
                      headers={"X-GitHub-Event": "push", "Content-Type": "application/json",
                               "X-GitHub-Delivery": "d-1", **sign("github", body, "s3")})
    assert res.status_code == 200, res.text
    sid = res.json()["started"][0]["sweep_id"]
    assert c.wait_ended(sid)["status"] == "succeeded"
    assert seen(c.root)["core"][1:] == [sha, sha]
    assert statuses_of(posted, sha, 2) == [
        ("coord/PLAN-001", "pending", f"{UI}/sweeps/{sid}"),
        ("coord/PLAN-001", "success", f"{UI}/sweeps/{sid}")]


def rewrite_push(c: Cluster, sweep_id: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """A Redis writer with no key (a raw client, never coord) edits the ``push`` of the
    sweep's stored spec (unsigned: the deployment has no key)."""
    raw = redis.Redis.from_url(c.redis_url)
    try:
        where = c.rt.keys.sweep(sweep_id)
        text = json.loads(raw.hget(where, "spec") or b"null")  # (a record's fields: JSON)
        doc = json.loads(text) if isinstance(text, str) else text
        edit(doc["push"])
        forged = json.dumps(doc)
        raw.hset(where, "spec", json.dumps(forged) if isinstance(text, str) else forged)
    finally:
        raw.close()


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP listener of the writer's (its address, and every request it hears: its
    line, headers and body), answering as a forge would."""
    heard: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            heard.append(f"{self.command} {self.path}\n{self.headers}{self.body()!r}")
            self.answer(201)

        do_GET = do_PUT = do_PATCH = do_POST  # noqa: N815

    server = serve(Handler)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v3", heard
    finally:
        stop_serving(server)


@pytest.mark.parametrize("fake_forge", ["github"], indirect=True)
def test_a_keyless_writer_cannot_send_a_workers_secret_to_its_own_forge(
        cluster: Cluster, fake_forge: FakeForge, listener: tuple[str, list[str]]) -> None:
    c, fake = cluster, fake_forge
    elsewhere, heard = listener
    repos = make_repos(c.root, ["core"])
    fake.add_project("acme/core")
    posted = recording(fake)
    catalog(c.root, fake.api)
    secret = "cloud-secret-the-worker-holds"
    c.env.update({TOKEN_ENV: fake.token, "CLOUD_SECRET_KEY": secret})
    sha = commit(repos, "core", "pushed.txt")
    sid = c.cli_json("trigger", "push", "--repo", "core", "--ref", sha)["started"][0]["sweep_id"]
    assert statuses_of(posted, sha, 1)[0][1] == "pending"  # (the starter's, honest)

    def elsewhere_with_another_token(push: dict[str, Any]) -> None:
        push["forge"].update(api=elsewhere, token_env="CLOUD_SECRET_KEY")

    rewrite_push(c, sid, elsewhere_with_another_token)
    c.start_workers(["core", "api"])  # (they read the spec as the writer left it)
    assert c.wait_ended(sid)["status"] == "succeeded"

    def refused() -> list[dict[str, Any]] | None:
        return [e for e in c.events(sid) if e["kind"] == "commit_status.failed"
                and e["state"] == "success"] or None

    said = wait_for(lambda: heard or refused(), 30, "the end's post, or its refusal")
    assert heard == [], heard  # not a request, let alone the secret
    # refused and said, naming what the spec changed; the forge keeps the honest pending
    # (a spec that names another forge than the catalog's is no sweep to vouch for)
    reason = said[0]["reason"]
    assert "forge.api" in reason and "forge.token_env" in reason, reason
    assert secret not in reason
    assert now_on(fake, sha) == "pending"
    assert [s for _, _, s, _ in posted] == ["pending"]


def test_a_keyless_writer_cannot_make_a_worker_fetch_from_its_own_repository(
        cluster: Cluster) -> None:
    c = cluster
    repos = make_repos(c.root, ["core"])
    checkout = repos.checkout("core")
    catalog(c.root, f"http://127.0.0.1:{_closed_port()}")
    c.env[TOKEN_ENV] = "some-token"
    theirs = remote_with(c.root / "theirs", "core", {"planted.txt": "theirs\n"})
    planted = git(theirs, "rev-parse", "main")
    sha = commit(repos, "core", "pushed.txt")
    sid = c.cli_json("trigger", "push", "--repo", "core", "--ref", sha)["started"][0]["sweep_id"]

    def from_theirs(push: dict[str, Any]) -> None:
        push.update(url=str(theirs), remote=str(theirs), sha=planted)

    rewrite_push(c, sid, from_theirs)
    c.start_workers(["core", "api"])  # (they read the spec as the writer left it)
    assert c.wait_ended(sid)["status"] == "failed"
    # core's todo never ran (on their commit or any), and nothing was fetched from there
    assert "core" not in seen(c.root)
    assert git(checkout, "cat-file", "-t", planted, check=False) != "commit"
    reason = c.checkpoint(sid, "TODO-001").get("reason") or ""
    assert "url" in reason and "remote" in reason and "catalog" in reason, reason
    assert worktrees_of(checkout) == [f"worktree {checkout.resolve()}"]
