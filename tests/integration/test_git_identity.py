"""Who coord says someone is, as git itself resolves it in the checkout (#59): a
repository's own ``user.email`` over the user's global one, and the global config's
conditional includes (``includeIf "gitdir:..."``: a work address for work checkouts)
evaluated where the command runs. 0.5 handed every git call the user's global config as
command-scope entries, which outrank the repository's: the audit log, a gate's approver
("may not approve") and revert commits named the global address.

Real git (a HOME with a global config), a real redis-server, a real `coord worker` and
the real CLI; for the revert, bare remotes and the lander.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.change_repos import World, git
from tests.integration.helpers import PLAN, Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HOME_ADDRESS = "ana@home.example"
WORK_ADDRESS = "ana@work.example"


def global_config(home: Path, text: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(f"[user]\n\tname = Ana\n\temail = {HOME_ADDRESS}\n{text}")
    return home


def plain_git(cwd: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def test_the_audit_log_and_a_gates_approver_are_the_repositorys_address(
        cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    home = global_config(tmp_path / "home")
    env = dict(os.environ, HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    for k in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL"):
        env.pop(k, None)
    plain_git(c.root, "init", "-q", env=env)
    plain_git(c.root, "config", "user.email", WORK_ADDRESS, env=env)  # this fleet's address
    assert plain_git(c.root, "config", "user.email", env=env) == WORK_ADDRESS  # git says so
    c.env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    c.env.pop("COORD_USER", None)
    c.repo_dir("a").mkdir(parents=True)
    c.eco.write_text(f"""version: 1
repos:
  - {{name: a, path: repos/a}}
coordination:
  plans:
    - {{id: {PLAN}, title: gated, status: active}}
  todos:
    - {{id: TODO-001, task: build, repo: a, plan: {PLAN}, run: "true"}}
    - {{id: TODO-002, task: approval, repo: a, plan: {PLAN}, blocked_by: [TODO-001],
        gate: {{approvals: 1, from: [{WORK_ADDRESS}]}}}}
""")
    c.start_worker("a")
    sid = c.start_sweep()
    c.wait_todo(sid, "TODO-002", {"awaiting_approval"})
    res = c.cli("approve", "TODO-002", "--sweep", sid, "--json")
    assert res.returncode == 0, res.stderr  # 0.5: "ana@home.example may not approve"
    assert json.loads(res.stdout)["approvals"] == [WORK_ADDRESS]
    assert c.wait_sweep(sid, 60)["status"] == "succeeded"
    doc = c.cli_json("audit")
    entries = doc["entries"] if isinstance(doc, dict) else doc
    whos = {e["who"] for e in entries}
    assert whos == {WORK_ADDRESS}, entries


def test_a_revert_commit_is_by_the_address_git_has_in_the_checkout(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.settings import get_settings

    # The work checkouts get their address from the global config's conditional include;
    # they set none of their own.
    work = tmp_path / "w"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig-work").write_text(f"[user]\n\temail = {WORK_ADDRESS}\n")
    global_config(home, f'[includeIf "gitdir:{work}/checkouts/"]\n'
                        f"\tpath = {home}/.gitconfig-work\n")
    monkeypatch.setenv("HOME", str(home))
    for k in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME",
              "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    get_settings.cache_clear()
    w = World(work, ["libz", "core"])
    for n in w.names:
        git(w.repos.checkout(n), "config", "--unset", "user.email")
        git(w.repos.checkout(n), "config", "--unset", "user.name")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1")
    assert plain_git(w.repos.checkout("core"), "var", "GIT_AUTHOR_IDENT", env=env
                     ).startswith(f"Ana <{WORK_ADDRESS}>")  # what git itself says there
    w.drafted_and_verified()
    assert w.lander().land().state == "landed"
    from coordination.change.revert import Reverter

    assert Reverter(w.rt, w.cp).revert().state == "reverted"
    for n in w.names:
        assert git(w.repos.remote(n), "log", "-1", "--format=%an <%ae>|%ce", "main") == \
            f"Ana <{WORK_ADDRESS}>|{WORK_ADDRESS}", n
