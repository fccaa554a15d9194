"""No route from a todo to a key (#78): a todo's own script reads what it can of `/proc`.

0.6 took coord's secrets out of a todo's environment, but the todo ran as its worker's OS
user and read the worker's ``/proc/<pid>/environ``: the signing key, and the Redis
password of its ACL user. A repo's forge token (``token_env``) and webhook secret
(``webhook_secret_env``) were in every todo's own environment, by any name but the
defaults. Here a script committed in the repo, run as a todo by a real `coord worker`
on a real redis-server, looks for them everywhere it can:

- its own environment (by name), its ancestors' ``/proc/<pid>/environ`` (the worker's),
  and every ``/proc/*/environ`` it can read (by value: the key, the token, the webhook
  secret, the Redis password);
- and prints the forge token (read from a file in the checkout: a todo may come upon a
  secret elsewhere) as is, base64-encoded and lower-cased: every form reads ``***``.

Two ways a worker keeps its todos out, each mounted for real:

1. a worker running as root runs its todos as another user (``--todo-user``, a user this
   test creates): root's processes are that user's to read in no way; and ``coord
   doctor`` warns of a worker holding a key that runs its todos as root;
2. a worker and its todos of one (non-root) user: the worker is not dumpable, so the
   todo, of its user, is refused the worker's ``/proc/<pid>/environ``; the todo itself
   is dumpable again (an exec resets it: it reads its own). The worker runs as the
   user this test creates; this machine's Python lives under root's home, so the worker
   (and so its todos, alike) holds CAP_DAC_READ_SEARCH to reach it: it reads files, and
   gives nothing over other processes (reading one's environ is a ptrace check, which a
   dumpable worker of the same user passes and a non-dumpable one fails).

Both need root (to create the user, to change user): skipped otherwise, saying why.
"""

from __future__ import annotations

import base64
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.helpers import PLAN, ROOT, Cluster, Worker, close_after_test

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "todo-keys-signing-key-" + uuid.uuid4().hex
TOKEN = "ghp_ForgeTokenOfTheTutorial" + uuid.uuid4().hex[:12].upper()
HOOK = "hook-secret-" + uuid.uuid4().hex
PASSWORD = "worker-redis-pw-" + uuid.uuid4().hex[:12]
SECRETS = {"key": KEY, "token": TOKEN, "hook": HOOK, "redis password": PASSWORD}

# The attacker's script, committed in the repo. $1: the file it writes what it found to.
ATTACK = r"""
out="$1"; : > "$out"
echo "uid $(id -u)" >> "$out"
cat /proc/$$/environ > /dev/null 2>&1 && echo "self readable" >> "$out"
for name in COORD_SIGNING_KEY COORD_SIGNING_KEY_FILE FORGE_TOKEN HOOK_SECRET; do
  env | grep -q "^$name=" && echo "own env has $name" >> "$out"
done
case "$COORD_REDIS_URL" in *@*) echo "own env has a redis password" >> "$out";; esac
pid=$$
while :; do
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$pid/status)
  { [ -n "$pid" ] && [ "$pid" -gt 1 ]; } || break
  if cat /proc/$pid/environ > /dev/null 2>&1; then
    echo "ancestor $pid readable" >> "$out"
  else
    echo "ancestor $pid denied" >> "$out"
  fi
done
for d in /proc/[0-9]*; do
  [ "$d" = /proc/$$ ] && continue
  env_of=$(tr '\0' '\n' < "$d/environ" 2>/dev/null) || continue
  for what in {SECRETS}; do
    case "$env_of" in *"$what"*) echo "a secret in $d/environ" >> "$out";; esac
  done
done
"""

CATALOG = """version: 1
repos:
  - name: a
    path: repos/a
    forge: {{kind: github, project: acme/a, token_env: FORGE_TOKEN, webhook_secret_env: HOOK_SECRET}}
  - name: b
    path: repos/b
coordination:
  plans:
    - {{id: {plan}, title: attack, status: active}}
  todos:
    - id: TODO-001
      task: reads what it can of /proc
      repo: a
      plan: {plan}
      run: >-
        sh attack.sh found.txt; cat token.txt; base64 < token.txt; tr A-Z a-z < token.txt;
        echo "uid=$(id -u)" >> "$COORD_OUTPUT"
"""


@pytest.fixture
def os_user() -> Iterator[pwd.struct_passwd]:
    """A user of this machine made for the test (useradd), removed after it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it creates a user and runs todos as it")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("needs useradd and userdel")
    name = "coordt" + uuid.uuid4().hex[:8]
    made = subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], capture_output=True,
                          text=True, timeout=30)
    if made.returncode != 0:
        pytest.skip(f"useradd failed: {made.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=30)
        try:  # (a group of the user's name, where useradd made one)
            grp.getgrnam(name)
            subprocess.run(["groupdel", name], capture_output=True, timeout=30)
        except KeyError:
            pass


@pytest.fixture
def keyed_world(redis_url: str, os_user: pwd.struct_passwd, request: pytest.FixtureRequest
          ) -> Iterator[Cluster]:
    """A catalog and its checkouts in a directory of the test's user (the pytest
    directory is root's only), the repo's attack committed; the workers' Redis URL names
    an ACL user with a password; every secret in the workers' environment."""
    root = Path(tempfile.mkdtemp(prefix="coord-todo-keys-"))
    c = Cluster(root, redis_url)
    try:
        for repo in ("a", "b"):
            c.repo_dir(repo).mkdir(parents=True)
        (root / "home").mkdir()  # the user's own HOME (a worker started as it)
        c.eco.write_text(CATALOG.format(plan=PLAN))
        checkout = c.repo_dir("a")
        words = " ".join(f'"{v}"' for v in SECRETS.values())
        (checkout / "attack.sh").write_text(ATTACK.replace("{SECRETS}", words))
        (checkout / "token.txt").write_text(TOKEN + "\n")
        for args in (["init", "-q"], ["add", "-A"],
                     ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm",
                      "the attack"]):
            subprocess.run(["git", *args], cwd=checkout, check=True, capture_output=True)
        for d, _dirs, files in os.walk(root):
            os.chown(d, os_user.pw_uid, os_user.pw_gid)
            for f in files:
                os.chown(os.path.join(d, f), os_user.pw_uid, os_user.pw_gid)
        root.chmod(0o755)
        admin = redis.Redis.from_url(redis_url)
        admin.acl_setuser("coord-todo-keys", enabled=True, passwords=[f"+{PASSWORD}"],
                          keys=["*"], channels=["*"], commands=["+@all"], reset=True)
        admin.close()
        head, _, rest = redis_url.partition("://")
        c.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1", FORGE_TOKEN=TOKEN,
                     HOOK_SECRET=HOOK, HOME=str(root),
                     COORD_REDIS_URL=f"{head}://coord-todo-keys:{PASSWORD}@{rest}")
        yield c
    finally:
        close_after_test(request, [c])
        shutil.rmtree(root, ignore_errors=True)


def found(c: Cluster) -> list[str]:
    return (c.repo_dir("a") / "found.txt").read_text().splitlines()


def assert_nothing_leaked(c: Cluster, sid: str, lines: list[str], worker: int) -> None:
    """What the attack found holds no secret, and what the run left shows none."""
    assert not [x for x in lines if x.startswith("own env has")], lines
    assert f"ancestor {worker} denied" in lines, lines
    # (below the worker: the todo's own shells; above it: whoever started it)
    above = [x for x in lines if x.startswith("ancestor")]
    above = above[above.index(f"ancestor {worker} denied"):]
    assert not [x for x in above if x.endswith(" readable")], lines
    assert not [x for x in lines if x.startswith("a secret in")], lines
    st = c.status(sid)
    tail = str(st["todos"]["TODO-001"].get("output_tail"))
    logs = c.cli("logs", "TODO-001", "--sweep", sid).stdout
    events = c.cli("events", "--sweep", sid, "--json").stdout
    assert "***" in tail and "***" in logs, (tail, logs)
    forms = (TOKEN, TOKEN.lower(), base64.b64encode(TOKEN.encode()).decode()[:24],
             base64.b64encode((TOKEN + "\n").encode()).decode()[:24])
    for text in (tail, logs, events, json.dumps(st)):
        for form in forms:
            assert form not in text, f"{form!r} shows in {text[:2000]}"


def test_a_todo_of_another_user_reads_nothing_of_its_root_worker(
        keyed_world: Cluster, os_user: pwd.struct_passwd) -> None:
    c = keyed_world
    w = c.start_worker("a", extra=["--todo-user", os_user.pw_name,
                                   "--path", str(c.repo_dir("a"))])
    root_runs = c.start_worker("b")  # a keyed worker whose todos run as root
    sid = c.start_sweep()
    st = c.wait_sweep(sid, timeout=120)
    todo = st["todos"]["TODO-001"]
    assert st["status"] == "succeeded", todo.get("output_tail")
    lines = found(c)
    assert f"uid {os_user.pw_uid}" in lines, lines  # run as the user, not as root
    assert todo["outputs"] == {"uid": str(os_user.pw_uid)}  # its results file was its own
    assert_nothing_leaked(c, sid, lines, w.pid)

    doc = json.loads(c.cli("doctor", "--json").stdout)
    warned = [f for f in doc["findings"] if f["check"] == "workers.todo_user"
              and f["level"] == "warning"]
    assert len(warned) == 1, doc["findings"]
    assert f"-{root_runs.pid}@" in warned[0]["message"] and "--todo-user" in warned[0]["fix"]


@pytest.mark.parametrize("repos", [("a",), ("a", "b")], ids=["one repo", "several repos"])
def test_a_todo_of_its_workers_own_user_cannot_read_the_worker(
        keyed_world: Cluster, os_user: pwd.struct_passwd, repos: tuple[str, ...]) -> None:
    """Several repos: the worker processes a starter forked (workers/starter.py), their
    parent (the process started) and their shared warden are all searched too."""
    c = keyed_world
    w = start_as(c, os_user, *repos)
    sid = c.start_sweep()
    st = c.wait_sweep(sid, timeout=120)
    todo = st["todos"]["TODO-001"]
    assert st["status"] == "succeeded", todo.get("output_tail")
    lines = found(c)
    assert f"uid {os_user.pw_uid}" in lines, lines  # the worker's own user
    assert "self readable" in lines, lines  # the todo is dumpable again (an exec)
    assert_nothing_leaked(c, sid, lines, w.pid)
    if len(repos) > 1:  # the process that ran it, the process started's fork, too
        [ran] = [r for r in c.rt.workers.live() if r.name == todo["worker"]]
        assert ran.pid != w.pid and f"ancestor {ran.pid} denied" in lines, lines
    doc = json.loads(c.cli("doctor", "--json").stdout)
    assert not [f for f in doc["findings"] if f["check"] == "workers.todo_user"
                and f["level"] == "warning"], doc["findings"]


def start_as(c: Cluster, user: pwd.struct_passwd, repo: str, *more: str) -> Worker:
    """`coord worker` as ``user`` (see the module docstring for the capability), of
    ``repo`` and ``more`` repos."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to start a worker as another user")
    log = c.logs / f"worker-{len(c.workers)}-{repo}.log"
    argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
            *c.argv("worker", *(w for r in (repo, *more) for w in ("--repo", r)),
                    "--loglevel", "INFO")]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, cwd=ROOT, env={**c.env, "HOME": str(c.root / "home")},
                                stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    w = Worker(repo, proc, log)
    c.workers.append(w)
    c.wait_ready(w)
    assert re.search(rf"^Uid:\s+{user.pw_uid}\b", Path(f"/proc/{w.pid}/status").read_text(),
                     re.M), "the worker runs as the test's user"
    return w
