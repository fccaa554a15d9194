"""One change across a generated 30-repo fleet, from one template (#41 item 2), on real
`coord worker` processes, a real redis-server and real git (bare repositories as
remotes, a post-receive hook in each logging ``<repo> <ref> <old> <new>`` to one file:
the order of pushes across remotes).

The fleet has three layers: 3 libs, 12 mids (each using one or two libs) and 15 apps
(each using one or two mids). Three change plans share it, each its own branch and base
(``main``, ``b2``, ``b3``), so their outcomes are independent; their sweeps run at once
on three workers of ten repos each (the module's fixture), then each case lands its own:

- PLAN-001: edit + commit every repo (``deps: follow``) and verify every repo; landed in
  dependency order, then reverted in the reverse order;
- PLAN-002: the same, one repo's verify instance fails: nothing lands anywhere;
- PLAN-003: ``land: per-wave``, the canary (the libs and a mid and an app) first, a soak,
  then the rest; its verify template runs in the canary's repos.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.change_repos import git
from tests.integration.helpers import Cluster
from tests.servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

LIBS = [f"lib-{i}" for i in range(3)]
MIDS = [f"mid-{i:02d}" for i in range(12)]
APPS = [f"app-{i:02d}" for i in range(15)]
NAMES = LIBS + MIDS + APPS


def _edges() -> list[tuple[str, str]]:
    """(consumer, provider): each mid uses a lib (every fourth two), each app a mid
    (every third two)."""
    out = []
    for i, m in enumerate(MIDS):
        out.append((m, LIBS[i % 3]))
        if i % 4 == 0:
            out.append((m, LIBS[(i + 1) % 3]))
    for j, a in enumerate(APPS):
        out.append((a, MIDS[j % 12]))
        if j % 3 == 0:
            out.append((a, MIDS[(j + 5) % 12]))
    return out


EDGES = _edges()
#: The canary wave: every lib, and a mid and an app whose providers are in it too.
CANARY = ["lib-0", "lib-1", "lib-2", "mid-01", "app-01"]
SOAK = 1.0
FAILING = "mid-05"

#: The edit: the repo reaches the command through its environment only. Idempotent, as
#: a fleet-wide edit must be: a todo whose lease was lost (a loaded machine) runs again in
#: the worktree the lost run left.
EDIT = 'grep -qsx "$COORD_REPO" CHANGES || echo "$COORD_REPO" >> CHANGES'
#: The lease's TTL: the helpers' 2 s is short for 3 sweeps at once on 2 loaded cores.
LEASE_TTL = 5
#: A verify instance: its repo's candidate has the edit, and so has a lib's (another
#: repo's candidate, given to every verify todo).
CHECK = 'grep -qx "$COORD_REPO" CHANGES && grep -qx lib-0 "$COORD_CANDIDATE_LIB_0_PATH/CHANGES"'


def change_plan(pid: str, branch: str, base: str, edit: str, verify: str, *,
                verify_on: str, verify_run: str = CHECK, **extra: Any
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A change plan of two templates: ``edit`` (every repo, commit ``Bump in {repo}``,
    ``deps: follow``), then ``verify`` (``verify_on``), waiting for every edit."""
    plan = {"id": pid, "title": f"bump ({branch})", "status": "active",
            "change": {"branch": branch, "base": base, **extra.pop("change", {})}, **extra}
    return plan, [
        {"id": edit, "task": "bump", "plan": pid, "for_each": "*", "deps": "follow",
         "run": EDIT, "commit": "Bump in {repo}", "timeout": 60},
        {"id": verify, "task": "check", "plan": pid, "for_each": verify_on, "verify": True,
         "run": verify_run, "blocked_by": [edit], "timeout": 60}]


def catalog() -> dict[str, Any]:
    plans, todos = [], []
    for plan, ts in (
            change_plan("PLAN-001", "bump", "main", "TODO-010", "TODO-011", verify_on="*"),
            change_plan("PLAN-002", "broken", "b2", "TODO-020", "TODO-021", verify_on="tag:mid",
                        verify_run=f'test "$COORD_REPO" != {FAILING} && {CHECK}'),
            change_plan("PLAN-003", "waved", "b3", "TODO-030", "TODO-031", verify_on="tag:lib",
                        change={"land": "per-wave"},
                        waves=[{"name": "canary", "tags": ["canary"], "soak": f"{SOAK:g}s"},
                               {"name": "rest", "tags": ["svc"]}])):
        plans.append(plan)
        todos += ts
    return {"version": 1,
            "repos": [{"name": n, "path": f"checkouts/{n}",
                       "tags": ["svc", n.split("-")[0]] + (["canary"] if n in CANARY else [])}
                      for n in NAMES],
            "coordination": {"plans": plans, "todos": todos,
                             "dependencies": [{"id": f"DEP-{i + 1:03d}", "consumer": c,
                                               "provider": p}
                                              for i, (c, p) in enumerate(EDGES)]}}


def make_fleet(root: Path) -> str:
    """Bare remotes (branches main, b2, b3 at one seed commit) and a clone of each; made
    by copying one remote and one clone (a git process per repo would take seconds).
    The seed's SHA."""
    seed = root / "seed"
    git(root, "init", "--quiet", "-b", "main", str(seed))
    (seed / "README").write_text("seed\n")
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "seed")
    sha = git(seed, "rev-parse", "HEAD")
    proto = root / "proto.git"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(proto))
    git(seed, "push", "--quiet", str(proto), "main", "main:b2", "main:b3")
    clone = root / "proto-clone"
    git(root, "clone", "--quiet", str(proto), str(clone))
    for k, v in (("user.name", "t"), ("user.email", "t@t")):
        git(clone, "config", k, v)
    config = (clone / ".git" / "config").read_text()
    log = root / "pushes.log"
    for name in NAMES:
        remote = root / "remotes" / f"{name}.git"
        shutil.copytree(proto, remote)
        hook = remote / "hooks" / "post-receive"
        hook.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            while read old new ref; do echo "{name} $ref $old $new" >> {log}; done
            """))
        hook.chmod(0o755)
        checkout = root / "checkouts" / name
        shutil.copytree(clone, checkout, symlinks=True)
        (checkout / ".git" / "config").write_text(config.replace(str(proto), str(remote)))
    return sha


@dataclass
class Fleet:
    cluster: Cluster
    seed: str
    #: plan -> the `plan sweep --wait --json` process's (exit code, document, stderr)
    swept: dict[str, tuple[int, dict[str, Any], str]]

    @property
    def root(self) -> Path:
        return self.cluster.root

    def remote(self, name: str) -> Path:
        return self.root / "remotes" / f"{name}.git"

    def pushes(self, ref: str) -> list[tuple[str, str, str]]:
        """(repo, old, new) of every push to ``ref`` (refs/heads/...), in order."""
        log = self.root / "pushes.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(r, old, new) for r, rf, old, new in (ln.split() for ln in lines) if rf == ref]

    def coord(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        res = self.cluster.cli(*args, timeout=120)
        if expect is not None:
            assert res.returncode == expect, (
                f"coord {' '.join(args)} exited {res.returncode}, wanted {expect}\n"
                f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}")
        return res

    def json(self, *args: str, expect: int = 0) -> Any:
        return json.loads(self.coord(*args, "--json", expect=expect).stdout)

    def status(self, plan: str) -> Any:
        """`coord change status PLAN --json`'s document, read in this process."""
        from coordination.catalog.file.store import CatalogStore
        from coordination.catalog.selection.templates import expand
        from coordination.change.reading import status_document

        return status_document(self.cluster.rt, expand(CatalogStore(self.cluster.eco).load(),
                                                       self.root), self.root, plan)

    def events(self, plan: str) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.cluster.rt.events.read() if e.data.get("plan") == plan]


def before(order: list[str], what: str) -> None:
    """Every provider comes before its consumers in ``order``."""
    at = {r: i for i, r in enumerate(order)}
    late = [(c, p) for c, p in EDGES if at[p] > at[c]]
    assert not late, f"{what}: consumers before their providers: {late}\n{order}"


@pytest.fixture(scope="module")
def fleet(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Fleet]:
    """The fleet, its catalog, three workers of ten repos each, and the three plans'
    sweeps, run at once to their end."""
    client = redis_server.client()
    client.flushall()
    client.close()
    root = tmp_path_factory.mktemp("fleet")
    seed = make_fleet(root)
    c = Cluster(root, redis_server.url)
    c.env = {k: v for k, v in c.env.items()
             if not k.startswith("COORD_") or k in ("COORD_REDIS_URL", "COORD_SUPERVISE_INTERVAL")}
    c.env["COORD_LEASE_TTL"] = str(LEASE_TTL)
    c.eco.write_text(yaml.safe_dump(catalog(), sort_keys=False))
    try:
        ws = [c.start_worker(NAMES[i], wait=False,
                             extra=[x for n in NAMES[i + 1:i + 10] for x in ("--repo", n)])
              for i in range(0, 30, 10)]
        for w in ws:
            c.wait_ready(w)
        procs = {p: c.popen("plan", "sweep", p, "--wait", "--json")
                 for p in ("PLAN-001", "PLAN-002", "PLAN-003")}
        swept = {}
        for p, proc in procs.items():
            out, err = proc.communicate(timeout=150)
            swept[p] = (proc.returncode, json.loads(out) if out.strip() else {}, err)
        yield Fleet(c, seed, swept)
    except BaseException:
        print(c.log_tails())
        raise
    finally:
        c.close()


@pytest.fixture(scope="module")
def landed(fleet: Fleet) -> dict[str, Any]:
    """PLAN-001 landed (`change land --wait --json`)."""
    code, doc, err = fleet.swept["PLAN-001"]
    assert code == 0, err[-3000:]
    out: dict[str, Any] = fleet.json("change", "land", "PLAN-001", "--wait")
    return out


def test_one_template_lands_every_repo_in_dependency_order(fleet: Fleet,
                                                          landed: dict[str, Any]) -> None:
    code, doc, err = fleet.swept["PLAN-001"]
    sid = doc["sweep_id"]
    st = fleet.cluster.status(sid)
    instances = {f"TODO-010[{n}]" for n in NAMES} | {f"TODO-011[{n}]" for n in NAMES}
    assert {t: v["status"] for t, v in st["todos"].items()} == dict.fromkeys(instances,
                                                                           "succeeded")
    # deps: follow on the workers: each consumer's edit started after its providers' ended
    cps = {t: fleet.cluster.checkpoint(sid, t) for t in instances}
    for c, p in EDGES:
        assert float(cps[f"TODO-010[{p}]"]["finished_at"]) <= float(
            cps[f"TODO-010[{c}]"]["started_at"]), (c, p)

    assert landed["state"] == "landed" and sorted(landed["landed"]) == sorted(NAMES)
    order = landed["order"]
    before(order, "the landing order")
    pushes = fleet.pushes("refs/heads/main")
    assert [r for r, _, _ in pushes] == order  # one push per repo, in that order
    said = [e["repo"] for e in fleet.events("PLAN-001") if e["kind"] == "repo.landed"]
    assert said == order
    for repo, old, new in pushes:
        # exactly its commit, on top of the seed, with its own edit and its name
        assert old == fleet.seed and git(fleet.remote(repo), "rev-parse", "main") == new
        assert git(fleet.remote(repo), "rev-list", "--count", f"{fleet.seed}..main") == "1"
        assert git(fleet.remote(repo), "log", "-1", "--format=%s", "main") == f"Bump in {repo}"
        assert git(fleet.remote(repo), "show", "main:CHANGES") == repo
    assert fleet.pushes("refs/heads/b2") == fleet.pushes("refs/heads/b3") == []

    # the sweep's events and filters take instance ids as they are
    evs = fleet.json("events", "--sweep", sid)
    assert {e["todo_id"] for e in evs if e["todo_id"]} == instances
    assert {e["todo_id"] for e in evs if e["kind"] == "todo.succeeded"} == instances
    hist = fleet.json("history", "search", "TODO-010[mid-05]", "--kind", "todo")
    assert [(r["todo_id"], r["repo"], r["status"]) for r in hist] == [
        ("TODO-010[mid-05]", "mid-05", "succeeded")]


def test_one_repo_s_verify_failing_lands_nothing(fleet: Fleet) -> None:
    code, doc, err = fleet.swept["PLAN-002"]
    assert code == 1, err[-3000:]
    sid = doc["sweep_id"]
    st = fleet.cluster.status(sid)
    assert st["todos"][f"TODO-021[{FAILING}]"]["status"] == "failed"
    assert sum(v["status"] == "succeeded" for v in st["todos"].values()) == 30 + 11
    failing = f"TODO-021[{FAILING}]"

    dry = fleet.json("change", "land", "PLAN-002", "--dry-run", expect=1)
    assert dry["landable"] is False
    assert [b for b in dry["blockers"] if b["kind"] == "verify"] == [
        {"kind": "verify", "id": failing, "why": dry["blockers"][0]["why"]}]
    assert all(b["id"] == failing for b in dry["blockers"]), dry["blockers"]
    status = fleet.status("PLAN-002")
    assert status["landable"] is False and len(status["repos"]) == 30
    assert status["verify"][failing]["verdict"] == "failed"
    assert {v["verdict"] for t, v in status["verify"].items() if t != failing} == {"passed"}
    land = fleet.coord("change", "land", "PLAN-002", "--wait", expect=1)
    assert failing in land.stderr
    assert fleet.pushes("refs/heads/b2") == []  # nothing reached any remote
    assert {git(fleet.remote(n), "rev-parse", "b2") for n in NAMES} == {fleet.seed}
    assert not [e for e in fleet.events("PLAN-002") if e["kind"].startswith(("repo.", "change."))]


def test_landed_per_wave_with_a_soak_between(fleet: Fleet) -> None:
    code, doc, err = fleet.swept["PLAN-003"]
    assert code == 0, err[-3000:]
    # the waves are the landing's: the sweep ran every repo at once (the canary's verify
    # instances waited for the rest's edits)
    spec = json.loads(fleet.cluster.rt.checkpoints.get_sweep(doc["sweep_id"])["spec"])
    assert spec.get("waves") in (None, [])
    dry = fleet.coord("change", "land", "PLAN-003", "--dry-run").stdout
    assert "PLAN-003 is ready: would land 30 repos in 2 waves" in dry
    canary = [ln for ln in dry.splitlines() if ln.startswith("  wave 1 canary: ")]
    assert canary and canary[0].endswith(", then soak 1s"), dry
    assert sorted(canary[0][len("  wave 1 canary: "):-len(", then soak 1s")].split(", ")) == \
        sorted(CANARY)
    out = fleet.json("change", "land", "PLAN-003", "--wait")
    assert out["state"] == "landed", out
    assert [(w["name"], w["state"]) for w in out["waves"]] == [("canary", "landed"),
                                                               ("rest", "landed")]
    pushed = [r for r, _, _ in fleet.pushes("refs/heads/b3")]
    assert sorted(pushed[:5]) == sorted(CANARY) and sorted(pushed) == sorted(NAMES)
    before(pushed, "the per-wave landing")
    evs = {(e["kind"], e.get("wave")): e for e in fleet.events("PLAN-003")}
    assert ("change.wave_soaking", "canary") in evs, sorted(evs)
    landed_canary = evs[("change.wave_landed", "canary")]["ts"]
    soaking = evs[("change.wave_soaking", "canary")]
    rest = evs[("change.wave_landing", "rest")]["ts"]
    assert landed_canary <= soaking["ts"] < rest
    assert rest >= soaking["until"] and rest - landed_canary >= SOAK
    assert ("change.wave_soaking", "rest") not in evs  # no soak after the last wave
    landed_at = {e["repo"]: e["ts"] for e in fleet.events("PLAN-003") if e["kind"] == "repo.landed"}
    assert max(landed_at[r] for r in CANARY) <= landed_canary < soaking["until"] <= min(
        landed_at[r] for r in NAMES if r not in CANARY)

    status = fleet.json("change", "status", "PLAN-003")
    assert sorted(status["repos"]) == sorted(NAMES)
    assert {r["state"] for r in status["repos"].values()} == {"landed"}
    human = fleet.coord("change", "status", "PLAN-003").stdout
    assert "repos: 30 - landed 30" in human
    assert "wave 1 canary (5): landed 5" in human and "wave 2 rest (25): landed 25" in human
    assert "needs attention: none" in human
    assert not [ln for ln in human.splitlines() if ln[:1].isdigit()]  # no repo listed


def test_revert_takes_the_template_change_out_of_every_repo_consumers_first(
        fleet: Fleet, landed: dict[str, Any]) -> None:
    assert landed["state"] == "landed"
    n = len(fleet.pushes("refs/heads/main"))
    out = fleet.json("change", "revert", "PLAN-001")
    assert out["state"] == "reverted"
    assert out["reverted"] == list(reversed(landed["order"]))
    pushed = [r for r, _, _ in fleet.pushes("refs/heads/main")[n:]]
    assert pushed == out["reverted"]
    before(list(reversed(pushed)), "the revert order, reversed")
    seed_tree = git(fleet.remote("lib-0"), "rev-parse", f"{fleet.seed}^{{tree}}")
    for repo in NAMES:
        r = fleet.remote(repo)
        assert git(r, "rev-parse", "main^{tree}") == seed_tree
        assert git(r, "rev-list", "--count", f"{fleet.seed}..main") == "2"
        assert "Coord-Change: PLAN-001" in git(r, "log", "-1", "--format=%B", "main")
    status = fleet.status("PLAN-001")
    assert {r["state"] for r in status["repos"].values()} == {"reverted"}
