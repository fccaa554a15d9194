"""Fixture fleets in the shape of real ones (issue 48), run for real (embedded sweeps:
a private redis-server and worker processes), ordered by the one dependency ordering:

- a Node toolchain whose CLI repo is a dev dependency of the libraries it runs on;
- Go modules with mutual ``// indirect`` requires and a nested module;
- two Cargo workspaces with a dev/runtime loop;
- a fleet mixing ``main`` and ``master`` default branches (real git, bare remotes).

The manifests are written in each checkout and the catalog names them with the types
and ``file:line`` a reader of those manifests gives (written here by hand: what reads
manifests is another module's). Each fleet: `coord run` and a ``for_each`` +
``deps: follow`` sweep succeed in an order consistent with the ordering edges, a cycle
among them is one group (its repos one at a time, in the order its edges that close no
cycle give, after its providers and before its consumers) with a warning naming it, ``cycles: error`` refuses (exit 2,
nothing run), and ``--order-by runtime,dev`` brings a dev cycle back as a group.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.fleets import (
    CARGO, CARGO_CYCLE, CARGO_DEPS, CARGO_REPOS, CMD, DEFAULT_BY, Dep, GO, GO_DEPS,
    GO_REPOS, NODE, NODE_DEPS, NODE_DEV_CYCLE, NODE_GROUP, NODE_REPOS, assert_refused, check_run, coord,
    ordering_edges, run_json, take_log, write_fleet)
from tests.integration.helpers import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


# -- Node: a CLI that is a dev dependency of the libraries it is built from ----------------


def test_node_toolchain_cli_is_a_dev_dependency_of_its_libraries(tmp_path: Path) -> None:
    eco = write_fleet(tmp_path, NODE, NODE_DEPS)
    # dev and optional edges do not order: no cycle, providers first
    doc = run_json(eco)
    assert doc["warnings"] == []
    assert [r["repo"] for r in doc["summary"]] == ["md-util", "md-parse", "md-render", "mdcli",
                                                   "site"]
    assert [r["level"] for r in doc["summary"]] == [0, 1, 2, 3, 4]
    check_run(take_log(tmp_path), NODE_REPOS, ordering_edges(NODE_DEPS, DEFAULT_BY))
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr
    check_run(take_log(tmp_path), NODE_REPOS, ordering_edges(NODE_DEPS, DEFAULT_BY))

    # --order-by runtime,dev: the cycle is back, as one group, warned
    by = ("runtime", "dev")
    cycle = NODE_DEV_CYCLE
    doc = run_json(eco, "--order-by", "runtime,dev")
    (w,) = doc["warnings"]
    # inside the group the runtime edges mdcli -> md-parse, md-render order it; the dev
    # edges back to mdcli close the cycle and are dropped
    assert w.startswith(cycle) and "one at a time: md-parse, then md-render, then mdcli" in w, w
    assert "dropped as closing one: md-parse -> mdcli (DEP-002 dev)" in w, w
    assert [(r["repo"], r["group"]) for r in doc["summary"]] == [
        ("md-util", None), ("md-parse", 1), ("md-render", 1), ("mdcli", 1), ("site", None)]
    check_run(take_log(tmp_path), NODE_REPOS, ordering_edges(NODE_DEPS, by), [NODE_GROUP])
    human = coord(eco, "run", CMD, "--repos", "*", "--order-by", "runtime,dev")
    assert human.returncode == 0, human.stderr
    assert "warning: " + cycle in " ".join(human.stderr.split()), human.stderr
    table = [ln.split() for ln in human.stdout.splitlines() if ln.split()[:1] in (
        ["0"], ["1"], ["2"])]
    assert [row[1] for row in table] == ["md-util", "md-parse", "md-render", "mdcli", "site"]
    assert [row[2:4] for row in table if row[1] in NODE_GROUP] == [["cycle", "1"]] * 3
    take_log(tmp_path)
    r = coord(eco, "plan", "sweep", "PLAN-001", "--again", "--wait", "--order-by",
              "runtime,dev")
    assert r.returncode == 0, r.stderr
    assert "TODO-010 (deps: follow): " + cycle in " ".join(r.stderr.split()), r.stderr
    check_run(take_log(tmp_path), NODE_REPOS, ordering_edges(NODE_DEPS, by), [NODE_GROUP])
    listed = json.loads(coord(eco, "repo", "list", "--order", "--order-by", "runtime,dev",
                              "--json").stdout)
    assert listed["levels"] == [[["md-util"]], [NODE_GROUP], [["site"]]]

    # cycles: error refuses, nothing run; the hint (--cycles group) works when followed
    assert_refused(eco, tmp_path, ["--order-by", "runtime,dev", "--cycles", "error"], cycle)
    eco = write_fleet(tmp_path, NODE, NODE_DEPS, order={"by": ["runtime", "dev"],
                                                        "cycles": "error"})
    assert_refused(eco, tmp_path, [], cycle)
    doc = run_json(eco, "--cycles", "group")
    assert len(doc["warnings"]) == 1
    check_run(take_log(tmp_path), NODE_REPOS, ordering_edges(NODE_DEPS, by), [NODE_GROUP])
    r = coord(eco, "plan", "sweep", "PLAN-001", "--cycles", "group", "--wait")
    assert r.returncode == 0, r.stderr
    check_run(take_log(tmp_path), NODE_REPOS, ordering_edges(NODE_DEPS, by), [NODE_GROUP])


# -- Go: mutual // indirect requires, and a nested module ------------------------------------


def test_go_modules_with_mutual_indirect_requires_and_a_nested_module(tmp_path: Path) -> None:
    eco = write_fleet(tmp_path, GO, GO_DEPS)
    edges = ordering_edges(GO_DEPS, DEFAULT_BY)
    doc = run_json(eco)
    assert doc["warnings"] == []  # the only cycles go through indirect requires
    assert [r["repo"] for r in doc["summary"]] == ["prom-common", "node-exporter", "prom-client",
                                                   "alertmanager"]
    check_run(take_log(tmp_path), GO_REPOS, edges)
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    check_run(take_log(tmp_path), GO_REPOS, edges)
    # indirect edges never order, whatever the types: cycles: error has nothing to refuse
    doc = run_json(eco, "--order-by", "runtime,dev", "--cycles", "error")
    assert doc["warnings"] == []
    check_run(take_log(tmp_path), GO_REPOS, edges)
    # bad flags: exit 2 naming what is wrong, nothing run
    bad = coord(eco, "run", CMD, "--repos", "*", "--order-by", "runtime,indirekt")
    assert bad.returncode == 2 and "indirekt" in bad.stderr, bad.stderr
    bad = coord(eco, "run", CMD, "--repos", "*", "--order", "none", "--cycles", "error")
    assert bad.returncode == 2 and "--order none" in bad.stderr, bad.stderr
    assert take_log(tmp_path) == []
    # made direct, the loop is a real one: a group, warned with the go.mod lines
    direct = [(c, p, k, f, n, False) for c, p, k, f, n, _ in GO_DEPS]
    eco = write_fleet(tmp_path, GO, direct)
    doc = run_json(eco)
    (w,) = doc["warnings"]
    # the nested module's require (api/go.mod) is alertmanager's
    assert w.startswith("dependency cycle among alertmanager, prom-client, prom-common: "
                        "alertmanager -> prom-client (DEP-005 runtime, api/go.mod:5); "
                        "prom-client -> alertmanager (DEP-003 runtime, go.mod:7)"), w
    # every edge runtime: taken by name, prom-client -> alertmanager and prom-common ->
    # prom-client close the cycles and are dropped; the rest order the group
    assert [(d["consumer"], d["provider"]) for d in doc["cycle_edges_dropped"]] == [
        ("prom-client", "alertmanager"), ("prom-common", "prom-client")]
    check_run(take_log(tmp_path), GO_REPOS, ordering_edges(direct, DEFAULT_BY),
              [["prom-common", "prom-client", "alertmanager"]])


# -- Cargo: two workspaces in a dev/runtime loop ------------------------------------------


def test_two_cargo_workspaces_with_a_dev_runtime_loop(tmp_path: Path) -> None:
    eco = write_fleet(tmp_path, CARGO, CARGO_DEPS)
    doc = run_json(eco)
    assert doc["warnings"] == []
    assert [r["repo"] for r in doc["summary"]] == ["tokio-ws", "tracing-ws", "app"]
    check_run(take_log(tmp_path), CARGO_REPOS, ordering_edges(CARGO_DEPS, DEFAULT_BY))
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    check_run(take_log(tmp_path), CARGO_REPOS, ordering_edges(CARGO_DEPS, DEFAULT_BY))

    by = ("runtime", "dev")
    doc = run_json(eco, "--order-by", "runtime,dev")
    (w,) = doc["warnings"]
    assert w.startswith(CARGO_CYCLE), w
    check_run(take_log(tmp_path), CARGO_REPOS, ordering_edges(CARGO_DEPS, by),
              [["tokio-ws", "tracing-ws"]])
    assert_refused(eco, tmp_path, ["--order-by", "runtime,dev", "--cycles", "error"],
                   CARGO_CYCLE)
    # eager (each todo once its own blockers end) keeps the group one at a time too,
    # and --save-as keeps the chain as blocked_by, each todo titled after its repo
    doc = run_json(eco, "--order-by", "runtime,dev", "--strategy", "eager",
                   "--save-as", "Cargo loop")
    check_run(take_log(tmp_path), CARGO_REPOS, ordering_edges(CARGO_DEPS, by),
              [["tokio-ws", "tracing-ws"]])
    saved = {t["repo"]: t for t in yaml.safe_load(eco.read_text())["coordination"]["todos"]
             if t.get("plan") == doc["saved_as"]["plan"]}
    assert saved["tracing-ws"]["blocked_by"] == [saved["tokio-ws"]["id"]]
    assert saved["app"]["blocked_by"] == [saved["tracing-ws"]["id"]]
    assert {r: t["task"] for r, t in saved.items()} == {r: f"{r}: {CMD}" for r in saved}
    # the catalog's order: says the same for every command; a flag overrides it
    eco = write_fleet(tmp_path, CARGO, CARGO_DEPS, order={"by": ["runtime", "build", "dev"]})
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert r.returncode == 0, r.stderr
    (w,) = json.loads(r.stdout)["warnings"]
    assert w.startswith("TODO-010 (deps: follow): " + CARGO_CYCLE), w
    check_run(take_log(tmp_path), CARGO_REPOS, ordering_edges(CARGO_DEPS, by),
              [["tokio-ws", "tracing-ws"]])
    dry = json.loads(coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--again",
                           "--json").stdout)
    assert [f["code"] for f in dry["warnings"]] == ["dependency-cycle"]
    assert dry["levels"] == [["TODO-010[tokio-ws]"], ["TODO-010[tracing-ws]"], ["TODO-010[app]"]]
    assert json.loads(coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--again", "--json",
                            "--order-by", "runtime").stdout).get("warnings", []) == []


# -- a fleet mixing main and master ------------------------------------------------------------

def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd,
                   check=True, capture_output=True)


def test_a_fleet_mixing_main_and_master(tmp_path: Path) -> None:
    """`changed:` with no ref compares each repo with its own default branch (origin/HEAD,
    from a clone of a bare remote), so a run and a template over what changed work on a
    fleet where `changed:main` cannot."""
    branches = {"alpha": "main", "beta": "master", "gamma": "master", "delta": "main"}
    for name, branch in branches.items():
        seed = tmp_path / "seed" / name
        seed.mkdir(parents=True)
        _git(seed, "init", "-q", "-b", branch)
        (seed / "README").write_text(f"{name}\n")
        _git(seed, "add", "README")
        _git(seed, "commit", "-q", "-m", "first")
        _git(tmp_path, "clone", "-q", "--bare", str(seed), f"remotes/{name}.git")
        _git(tmp_path, "clone", "-q", f"remotes/{name}.git", f"repos/{name}")
        _git(tmp_path / "repos" / name, "switch", "-q", "-c", "feature")
    for name in ("alpha", "beta", "gamma"):  # delta did not change
        checkout = tmp_path / "repos" / name
        (checkout / "CHANGE").write_text("x\n")
        _git(checkout, "add", "CHANGE")
        _git(checkout, "commit", "-q", "-m", "change")
    deps: list[Dep] = [("beta", "alpha", "runtime", "README", "beta", False),
                       ("gamma", "beta", "runtime", "README", "gamma", False),
                       ("delta", "gamma", "runtime", "README", "delta", False)]
    eco = write_fleet(tmp_path, {n: {} for n in branches}, deps, for_each="changed:")
    r = coord(eco, "run", CMD, "--repos", "changed:main")  # one ref for all: cannot tell
    assert r.returncode == 2 and "beta" in r.stderr and "gamma" in r.stderr, r.stderr
    r = coord(eco, "run", CMD, "--repos", "changed:", "--json")
    assert r.returncode == 0, r.stderr
    assert [row["repo"] for row in json.loads(r.stdout)["summary"]] == ["alpha", "beta", "gamma"]
    check_run(take_log(tmp_path), ["alpha", "beta", "gamma"], ordering_edges(deps, DEFAULT_BY))
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait")
    assert r.returncode == 0, r.stderr
    check_run(take_log(tmp_path), ["alpha", "beta", "gamma"], ordering_edges(deps, DEFAULT_BY))
    shown = json.loads(coord(eco, "repo", "list", "--repos", "changed:", "--json").stdout)
    assert [x["name"] for x in shown] == ["alpha", "beta", "gamma"]


def test_node_toolchain_cycle_group_on_real_workers(cluster: Cluster) -> None:
    """Distributed: one `coord worker` per repo on the session redis-server, the catalog
    ordering by dev edges too; the group still runs one repo at a time, in name order,
    after md-util and before site, for `coord run` (eager) and a deps: follow sweep."""
    eco = write_fleet(cluster.root, NODE, NODE_DEPS, order={"by": ["runtime", "dev"]})
    cluster.eco = eco
    cluster.start_workers(NODE_REPOS)
    edges = ordering_edges(NODE_DEPS, ("runtime", "dev"))
    res = cluster.cli("run", CMD, "--repos", "*", "--strategy", "eager", "--wait", "--json",
                      timeout=200)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["warnings"]) == 1 and "md-parse -> mdcli (DEP-002 dev" in doc["warnings"][0]
    check_run(take_log(cluster.root), NODE_REPOS, edges, [NODE_GROUP])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--json", timeout=200)
    assert res.returncode == 0, res.stderr
    (w,) = json.loads(res.stdout)["warnings"]
    assert w.startswith("TODO-010 (deps: follow): dependency cycle among md-parse, md-render, "
                        "mdcli"), w
    check_run(take_log(cluster.root), NODE_REPOS, edges, [NODE_GROUP])
