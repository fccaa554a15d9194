"""Fixture fleets in the shape of real ones (issue 48): a Node toolchain, Go modules, two
Cargo workspaces, each with its manifests and dependency edges; writing one as a
catalog, running coord on it, and checking that what ran kept the ordering edges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.integration.helpers import ROOT, read_lines

# Logs when it starts and ends in its repo (named by the environment only), slowly
# enough that two repos run at once would interleave.
CMD = ('echo "start $COORD_REPO" >> ../order.log; sleep 0.3; '
       'echo "end $COORD_REPO" >> ../order.log')

DEFAULT_BY = ("runtime", "build", "peer")

#: (consumer, provider, type, manifest in the consumer, the text on the provider's line,
#: indirect)
Dep = tuple[str, str, str, str, str, bool]


def write_fleet(root: Path, manifests: dict[str, dict[str, str]], deps: list[Dep], *,
                order: dict[str, Any] | None = None, for_each: str = "*",
                extra_repo: dict[str, dict[str, Any]] | None = None) -> Path:
    """The checkouts' manifests, and a catalog naming each dependency with its type and
    the manifest line that gives it; a plan with one ``deps: follow`` template."""
    for repo, files in manifests.items():
        for rel, text in files.items():
            path = root / "repos" / repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    items = []
    for i, (c, p, kind, rel, needle, indirect) in enumerate(deps, 1):
        lines = (root / "repos" / c / rel).read_text().splitlines()
        (line,) = [n for n, text in enumerate(lines, 1) if needle in text]
        items.append({"id": f"DEP-{i:03d}", "consumer": c, "provider": p, "type": kind,
                      **({"indirect": True} if indirect else {}),
                      "source": {"file": rel, "line": line}})
    doc: dict[str, Any] = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", **(extra_repo or {}).get(r, {})}
                  for r in manifests],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "test the fleet", "status": "active"}],
            "todos": [{"id": "TODO-010", "task": "test", "plan": "PLAN-001",
                       "for_each": for_each, "deps": "follow", "run": CMD, "timeout": 60}],
            "dependencies": items},
        **({"order": order} if order else {}),
    }
    eco = root / "ecosystem.yaml"
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco


def coord(eco: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`coord --file ECO ARGS`, embedded (no COORD_REDIS_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                           *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def take_log(root: Path) -> list[str]:
    """The run's start/end lines, and the log cleared for the next run."""
    log = root / "repos" / "order.log"
    lines = read_lines(log)
    log.unlink(missing_ok=True)
    return lines


def ordering_edges(deps: list[Dep], by: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(c, p) for c, p, kind, _, _, indirect in deps if kind in by and not indirect]


def check_run(lines: list[str], repos: list[str], edges: list[tuple[str, str]],
              groups: Sequence[list[str]] = ()) -> None:
    """Each repo ran once; a consumer started after its provider ended (both outside
    one group); a group's members one at a time in the order given (its run order), the
    first after every
    provider of the group ended, every consumer of the group after the last ended."""
    at = {ln: i for i, ln in enumerate(lines)}
    assert sorted(ln.split()[1] for ln in lines if ln.startswith("start")) == sorted(repos), lines
    group = {r: i for i, g in enumerate(groups) for r in g}
    for c, p in edges:
        if c in repos and p in repos and not (c in group and group.get(p) == group[c]):
            # across a group: the group's last member ends before its consumers start,
            # its first starts after its providers end
            provider_end = groups[group[p]][-1] if p in group else p
            consumer_start = groups[group[c]][0] if c in group else c
            assert at[f"end {provider_end}"] < at[f"start {consumer_start}"], (c, p, lines)
    for g in groups:
        for a, b in zip(g, g[1:]):  # never overlapping, in the order given
            assert at[f"end {a}"] < at[f"start {b}"], (g, lines)


def run_json(eco: Path, *args: str) -> dict[str, Any]:
    r = coord(eco, "run", CMD, "--repos", "*", "--json", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def assert_refused(eco: Path, root: Path, args: list[str], cycle: str) -> None:
    """Exit 2 naming the cycle, and nothing ran: for `coord run` and `plan sweep`."""
    for cmd in (["run", CMD, "--repos", "*", *args], ["plan", "sweep", "PLAN-001", *args]):
        r = coord(eco, *cmd)
        assert r.returncode == 2, r.stdout + r.stderr
        said = " ".join(r.stderr.split())  # as wrapped to the terminal's width
        assert cycle in said and "--cycles group" in said, r.stderr
        assert take_log(root) == [], cmd

NODE = {
    "md-util": {"package.json": '{\n  "name": "md-util",\n  "version": "2.0.0"\n}\n'},
    "md-parse": {"package.json": (
        '{\n  "name": "md-parse",\n  "dependencies": {\n    "md-util": "^2.0.0"\n  },\n'
        '  "devDependencies": {\n    "mdcli": "^1.0.0"\n  }\n}\n')},
    "md-render": {"package.json": (
        '{\n  "name": "md-render",\n  "dependencies": {\n    "md-util": "^2.0.0"\n  },\n'
        '  "peerDependencies": {\n    "md-parse": "^3.0.0"\n  },\n'
        '  "devDependencies": {\n    "mdcli": "^1.0.0"\n  }\n}\n')},
    "mdcli": {"package.json": (
        '{\n  "name": "mdcli",\n  "bin": "cli.js",\n  "dependencies": {\n'
        '    "md-parse": "^3.0.0",\n    "md-render": "^3.0.0"\n  }\n}\n')},
    "site": {"package.json": (
        '{\n  "name": "site",\n  "dependencies": {\n    "mdcli": "^1.0.0"\n  },\n'
        '  "optionalDependencies": {\n    "md-render": "^3.0.0"\n  }\n}\n')},
}


NODE_DEPS: list[Dep] = [
    ("md-parse", "md-util", "runtime", "package.json", '"md-util"', False),
    ("md-parse", "mdcli", "dev", "package.json", '"mdcli"', False),
    ("md-render", "md-util", "runtime", "package.json", '"md-util"', False),
    ("md-render", "md-parse", "peer", "package.json", '"md-parse"', False),
    ("md-render", "mdcli", "dev", "package.json", '"mdcli"', False),
    ("mdcli", "md-parse", "runtime", "package.json", '"md-parse"', False),
    ("mdcli", "md-render", "runtime", "package.json", '"md-render"', False),
    ("site", "mdcli", "runtime", "package.json", '"mdcli"', False),
    ("site", "md-render", "optional", "package.json", '"md-render"', False),
]

NODE_REPOS = list(NODE)

NODE_GROUP = ["md-parse", "md-render", "mdcli"]

#: What ordering by runtime and dev edges says of the node fleet's loop.
NODE_DEV_CYCLE = ("dependency cycle among md-parse, md-render, mdcli: "
                  "md-parse -> mdcli (DEP-002 dev, package.json:7); "
                  "mdcli -> md-parse (DEP-006 runtime, package.json:5)")

GO = {
    "prom-common": {"go.mod": (
        "module github.com/prom/common\n\ngo 1.21\n\nrequire (\n"
        "\tgithub.com/prom/client v1.19.0 // indirect\n)\n")},
    "prom-client": {"go.mod": (
        "module github.com/prom/client\n\ngo 1.21\n\nrequire (\n"
        "\tgithub.com/prom/common v0.48.0\n"
        "\tgithub.com/prom/alertmanager v0.27.0 // indirect\n)\n")},
    "alertmanager": {
        "go.mod": "module github.com/prom/alertmanager\n\ngo 1.21\n\n"
                  "require github.com/prom/common v0.48.0\n",
        "api/go.mod": "module github.com/prom/alertmanager/api\n\ngo 1.21\n\n"
                      "require github.com/prom/client v1.19.0\n"},
    "node-exporter": {"go.mod": "module github.com/prom/node_exporter\n\ngo 1.21\n\n"
                                "require github.com/prom/common v0.48.0\n"},
}


GO_DEPS: list[Dep] = [
    ("prom-common", "prom-client", "runtime", "go.mod", "prom/client", True),
    ("prom-client", "prom-common", "runtime", "go.mod", "prom/common v", False),
    ("prom-client", "alertmanager", "runtime", "go.mod", "prom/alertmanager", True),
    ("alertmanager", "prom-common", "runtime", "go.mod", "prom/common", False),
    ("alertmanager", "prom-client", "runtime", "api/go.mod", "prom/client", False),  # nested
    ("node-exporter", "prom-common", "runtime", "go.mod", "prom/common", False),
]

GO_REPOS = list(GO)

CARGO = {
    "tokio-ws": {
        "Cargo.toml": '[workspace]\nmembers = ["tokio", "tokio-macros"]\n',
        "tokio/Cargo.toml": ('[package]\nname = "tokio"\nversion = "1.37.0"\n\n'
                             '[dependencies]\ntokio-macros = { path = "../tokio-macros" }\n\n'
                             '[dev-dependencies]\ntracing = "0.1"\n'),
        "tokio-macros/Cargo.toml": '[package]\nname = "tokio-macros"\nversion = "2.2.0"\n'},
    "tracing-ws": {
        "Cargo.toml": '[workspace]\nmembers = ["tracing", "tracing-core"]\n',
        "tracing/Cargo.toml": ('[package]\nname = "tracing"\nversion = "0.1.40"\n\n'
                               '[dependencies]\ntracing-core = { path = "../tracing-core" }\n'
                               'tokio = { version = "1", optional = false }\n'),
        "tracing-core/Cargo.toml": '[package]\nname = "tracing-core"\nversion = "0.1.32"\n'},
    "app": {"Cargo.toml": ('[package]\nname = "app"\nversion = "0.1.0"\n\n'
                           '[dependencies]\ntracing = "0.1"\n\n'
                           '[build-dependencies]\ntokio = "1"\n')},
}


CARGO_DEPS: list[Dep] = [
    ("tokio-ws", "tracing-ws", "dev", "tokio/Cargo.toml", "tracing", False),
    ("tracing-ws", "tokio-ws", "runtime", "tracing/Cargo.toml", "tokio", False),
    ("app", "tracing-ws", "runtime", "Cargo.toml", "tracing", False),
    ("app", "tokio-ws", "build", "Cargo.toml", "tokio", False),
]

CARGO_REPOS = list(CARGO)

CARGO_CYCLE = ("dependency cycle among tokio-ws, tracing-ws: "
               "tokio-ws -> tracing-ws (DEP-001 dev, tokio/Cargo.toml:9); "
               "tracing-ws -> tokio-ws (DEP-002 runtime, tracing/Cargo.toml:7)")
