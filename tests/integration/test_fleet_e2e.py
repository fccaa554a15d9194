"""Issue 48's fixture fleets end to end: laid out as real git checkouts with real
manifests, `coord init` writes the catalog (the types and ``indirect`` flags it infers
are asserted against what :mod:`test_fleet_order`'s hand-written catalogs say), then
`coord run` and a ``for_each`` + ``deps: follow`` sweep run over that catalog (embedded:
a private redis-server and its worker, nothing started here) in an order consistent with
the ordering edges, a cycle among them warned and run as one group, ``cycles: error``
refusing (exit 2, nothing run), ``--order-by runtime,dev`` bringing a dev cycle back as a
group, and the catalog still without drift afterwards (`init --check` exit 0). And a
fleet of clones mixing ``main`` and ``master`` (bare remotes): init reads each default
branch from ``origin/HEAD``, so ``changed:`` compares each repo with its own.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.change_repos import commit, git, remote_with
from tests.integration.fleets import (
    CARGO, CARGO_DEPS, CMD, DEFAULT_BY, GO, GO_DEPS, NODE, NODE_DEPS, NODE_DEV_CYCLE, NODE_GROUP, Dep,
    assert_refused, check_run, coord, ordering_edges, run_json, take_log)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def checkouts(root: Path, manifests: dict[str, dict[str, str]]) -> Path:
    """Each repo a git checkout (one commit on main) holding its manifests, under
    ``root/repos``; the catalog `coord init` writes there."""
    for repo, files in manifests.items():
        d = root / "repos" / repo
        for rel, text in files.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_text(text)
        subprocess.run("git init -q -b main && git add -A && git -c user.email=t@t "
                       "-c user.name=t commit -q -m first", shell=True, cwd=d, check=True,
                       capture_output=True)
    return root / "repos" / "ecosystem.yaml"


def init(eco: Path, deps: list[Dep]) -> None:
    """`coord init` writes the catalog; its dependencies are exactly ``deps``: the
    consumer, provider, type, indirect flag and the manifest line of each."""
    r = coord(eco, "init", str(eco.parent))
    assert r.returncode == 0, r.stdout + r.stderr
    want = set()
    for c, p, kind, rel, needle, indirect in deps:
        lines = (eco.parent / c / rel).read_text().splitlines()
        (line,) = [n for n, text in enumerate(lines, 1) if needle in text]
        want.add((c, p, kind, indirect, rel, line))
    got = {(d["consumer"], d["provider"], d["type"], d.get("indirect", False),
            d["source"]["file"], d["source"]["line"])
           for d in yaml.safe_load(eco.read_text())["coordination"]["dependencies"]}
    assert got == want


def plan(eco: Path, order: dict[str, Any] | None = None, for_each: str = "*") -> None:
    """A plan with one ``for_each`` (every repo) + ``deps: follow`` template added to
    the catalog init wrote (and its ``order:``, when given)."""
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["plans"] = [{"id": "PLAN-001", "title": "test the fleet",
                                     "status": "active"}]
    doc["coordination"]["todos"] = [{"id": "TODO-010", "task": "test", "plan": "PLAN-001",
                                     "for_each": for_each, "deps": "follow", "run": CMD,
                                     "timeout": 60}]
    doc.pop("order", None)
    if order:
        doc["order"] = order
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))


def sweep(eco: Path, *args: str) -> str:
    """`plan sweep PLAN-001 --again --wait ARGS` succeeds; its stderr, unwrapped."""
    r = coord(eco, "plan", "sweep", "PLAN-001", "--again", "--wait", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return " ".join(r.stderr.split())


def no_drift(eco: Path) -> None:
    r = coord(eco, "init", "--check")
    assert r.returncode == 0, r.stdout + r.stderr


def run_and_sweep_unwarned(eco: Path, root: Path, repos: list[str],
                           edges: list[tuple[str, str]], order: list[str]) -> None:
    """`coord run` (its summary in ``order``) and a sweep of the plan, neither warning,
    each run ``repos`` once each in an order ``edges`` allow."""
    doc = run_json(eco)
    assert doc["warnings"] == []
    assert [r["repo"] for r in doc["summary"]] == order
    check_run(take_log(root), repos, edges)
    assert "warning" not in sweep(eco)
    check_run(take_log(root), repos, edges)


def test_node_toolchain_from_init(tmp_path: Path) -> None:
    eco = checkouts(tmp_path, NODE)
    init(eco, NODE_DEPS)
    plan(eco)
    repos = list(NODE)
    # dev (the CLI) and optional edges do not order: no cycle, providers first
    run_and_sweep_unwarned(eco, tmp_path, repos, ordering_edges(NODE_DEPS, DEFAULT_BY),
                           ["md-util", "md-parse", "md-render", "mdcli", "site"])
    # --order-by runtime,dev: the CLI's loop is one group, warned in dep list's direction
    by = ("runtime", "dev")
    cycle = NODE_DEV_CYCLE
    doc = run_json(eco, "--order-by", "runtime,dev")
    (w,) = doc["warnings"]
    assert w.startswith(cycle), w
    assert [(r["repo"], r["group"]) for r in doc["summary"]] == [
        ("md-util", None), ("md-parse", 1), ("md-render", 1), ("mdcli", 1), ("site", None)]
    check_run(take_log(tmp_path), repos, ordering_edges(NODE_DEPS, by), [NODE_GROUP])
    said = sweep(eco, "--order-by", "runtime,dev")
    assert "warning: TODO-010 (deps: follow): " + cycle in said, said
    check_run(take_log(tmp_path), repos, ordering_edges(NODE_DEPS, by), [NODE_GROUP])
    assert_refused(eco, tmp_path, ["--order-by", "runtime,dev", "--cycles", "error"], cycle)
    no_drift(eco)  # the dev edges stay in the catalog: ordering does not need them gone


def test_go_modules_from_init(tmp_path: Path) -> None:
    eco = checkouts(tmp_path, GO)
    init(eco, GO_DEPS)  # the // indirect requires flagged, the nested module's is the repo's
    plan(eco)
    repos = list(GO)
    edges = ordering_edges(GO_DEPS, DEFAULT_BY)
    # no warning: the only loops go through indirect requires
    run_and_sweep_unwarned(eco, tmp_path, repos, edges,
                           ["prom-common", "node-exporter", "prom-client", "alertmanager"])
    # indirect edges never order, whatever the types: cycles: error has nothing to refuse
    plan(eco, order={"by": ["runtime", "dev"], "cycles": "error"})
    assert "warning" not in sweep(eco)
    check_run(take_log(tmp_path), repos, edges)
    no_drift(eco)


def test_cargo_workspaces_from_init(tmp_path: Path) -> None:
    eco = checkouts(tmp_path, CARGO)
    init(eco, CARGO_DEPS)  # workspace members' manifests give their workspace's edges
    plan(eco)
    repos = list(CARGO)
    run_and_sweep_unwarned(eco, tmp_path, repos, ordering_edges(CARGO_DEPS, DEFAULT_BY),
                           ["tokio-ws", "tracing-ws", "app"])
    # the catalog's order: with dev edges, for every command: the loop is one group
    by = ("runtime", "dev")
    cycle = ("dependency cycle among tokio-ws, tracing-ws: "
             "tokio-ws -> tracing-ws (DEP-003 dev, tokio/Cargo.toml:9); "
             "tracing-ws -> tokio-ws (DEP-004 runtime, tracing/Cargo.toml:7)")
    plan(eco, order={"by": ["runtime", "build", "dev"]})
    (w,) = run_json(eco)["warnings"]
    assert w.startswith(cycle), w
    check_run(take_log(tmp_path), repos, ordering_edges(CARGO_DEPS, by),
              [["tokio-ws", "tracing-ws"]])
    said = sweep(eco)
    assert "warning: TODO-010 (deps: follow): " + cycle in said, said
    check_run(take_log(tmp_path), repos, ordering_edges(CARGO_DEPS, by),
              [["tokio-ws", "tracing-ws"]])
    plan(eco, order={"by": ["runtime", "build", "dev"], "cycles": "error"})
    assert_refused(eco, tmp_path, [], cycle)
    no_drift(eco)


def test_a_fleet_mixing_main_and_master_from_init(tmp_path: Path) -> None:
    branches = {"alpha": "main", "beta": "master", "gamma": "master", "delta": "main"}
    needs = {"beta": "alpha", "gamma": "beta", "delta": "gamma"}
    repos = tmp_path / "repos"
    for name, branch in branches.items():
        manifest = {"name": name, **({"dependencies": {needs[name]: "^1"}} if name in needs
                                     else {})}
        bare = remote_with(tmp_path, name, {"package.json": json.dumps(manifest, indent=2)},
                           branch=branch)
        git(tmp_path, "clone", "-q", str(bare), str(repos / name))
        git(repos / name, "switch", "-q", "-c", "feature")
    for name in ("alpha", "beta", "gamma"):  # delta did not change
        commit(repos / name, "CHANGE", "x\n")
    eco = repos / "ecosystem.yaml"
    deps: list[Dep] = [(c, p, "runtime", "package.json", f'"{p}"', False)
                       for c, p in needs.items()]
    init(eco, deps)
    written = yaml.safe_load(eco.read_text())
    assert {r["name"]: r["default_branch"] for r in written["repos"]} == branches
    plan(eco, for_each="changed:")
    doc = run_json(eco)  # --repos '*': all four, providers first
    assert [r["repo"] for r in doc["summary"]] == ["alpha", "beta", "gamma", "delta"]
    take_log(tmp_path)
    r = coord(eco, "run", CMD, "--repos", "changed:", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [row["repo"] for row in json.loads(r.stdout)["summary"]] == ["alpha", "beta", "gamma"]
    edges = ordering_edges(deps, DEFAULT_BY)
    check_run(take_log(tmp_path), ["alpha", "beta", "gamma"], edges)
    sweep(eco)
    check_run(take_log(tmp_path), ["alpha", "beta", "gamma"], edges)
    no_drift(eco)
