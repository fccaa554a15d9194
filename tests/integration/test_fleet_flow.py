"""From a folder of repos to a sweep: a generated tree of real git repos (Python, Node
and Go manifests naming each other), `coord init`, the catalog checked as plans are,
`coord run` on real `coord worker` processes in the inferred order (each consumer's
command starts after its providers' ended), `init --check` after a repo and a
dependency were added, `--apply`; then the selectors a user types (globs, role:, the
^ forms, changed:REF against the merge-base), each on the same tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.change_repos import commit, git
from tests.integration.helpers import Cluster, read_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# py-cli -> py-api -> py-core ; web -> ui-kit ; svc-billing -> svc-gateway -> svc-events
TREE: dict[str, dict[str, str]] = {
    "py-core": {"pyproject.toml": '[project]\nname = "acme-core"\nversion = "2.0"\n'},
    "py-api": {"pyproject.toml": ('[project]\nname = "acme-api"\n'
                                  'dependencies = ["acme-core>=2", "httpx"]\n')},
    "py-cli": {"requirements.txt": "click>=8\nacme-api==1.*  # the client\n"},
    "ui-kit": {"package.json": '{"name": "@acme/ui-kit", "version": "3.0.0"}\n'},
    "web": {"package.json": ('{"name": "@acme/web",\n "dependencies": {"@acme/ui-kit": "^3",'
                             ' "react": "^18"}}\n')},
    "svc-events": {"go.mod": "module github.com/acme/events\n\ngo 1.22\n"},
    "svc-gateway": {"go.mod": ("module github.com/acme/gateway\n\ngo 1.22\n\n"
                               "require github.com/acme/events v0.4.0\n")},
    "svc-billing": {"go.mod": ("module github.com/acme/billing\n\ngo 1.22\n\nrequire (\n"
                               "\tgithub.com/acme/gateway v1.2.0\n\tgolang.org/x/text v0.14.0\n)\n")},
}
EDGES = {("py-api", "py-core"), ("py-cli", "py-api"), ("web", "ui-kit"),
         ("svc-gateway", "svc-events"), ("svc-billing", "svc-gateway")}
# Appends "start|end REPO SECONDS" to one file beside the checkouts; the repo comes from
# the environment only.
CMD = ('echo "start $COORD_REPO $(date +%s.%N)" >> ../runs.log; sleep 0.3; '
       'echo "end $COORD_REPO $(date +%s.%N)" >> ../runs.log')


def checkout(path: Path, files: dict[str, str]) -> Path:
    """A git repo at ``path`` holding ``files`` in one commit on main."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for rel, text in files.items():
        (path / rel).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path


def tree(root: Path) -> Path:
    """``root/src``: a checkout per repo of TREE."""
    src = root / "src"
    for name, files in TREE.items():
        checkout(src / name, files)
    return src


def spans(log: Path) -> dict[str, tuple[float, float]]:
    """repo -> (start, end) of its last run in ``log``."""
    out: dict[str, list[float]] = {}
    for line in read_lines(log):
        what, repo, ts = line.split()
        out.setdefault(repo, [0.0, 0.0])[0 if what == "start" else 1] = float(ts)
    return {r: (s, e) for r, (s, e) in out.items()}


def test_init_validate_run_in_inferred_order_then_drift_and_apply(cluster: Cluster) -> None:
    src = tree(cluster.root)
    cluster.eco = src / "ecosystem.yaml"
    doc = cluster.cli_json("init", str(src))
    assert doc["created"] is True and doc["repos_found"] == len(TREE)
    assert {(d["consumer"], d["provider"]) for d in doc["dependencies_added"]} == EDGES

    # The catalog is one the rest of coord takes: a plan over every repo validates.
    plan = cluster.cli_json("plan", "create", "--title", "Fleet", "--repos", "tag:*")
    assert sorted(plan["repos"]) == sorted(TREE)
    cluster.cli_json("todo", "create", "--task", "lint", "--repo", "py-api", "--plan",
                     plan["id"], "--run", "true")
    checked = cluster.cli_json("plan", "validate", plan["id"])
    assert checked["errors"] == 0, checked

    # Two real workers share the eight repos; providers' commands end before consumers'
    # start, for every inferred edge (eager: each todo sent once its providers ended).
    cluster.start_worker("py-core", extra=[a for r in ("py-api", "py-cli", "ui-kit")
                                           for a in ("--repo", r)])
    cluster.start_worker("web", extra=[a for r in ("svc-events", "svc-gateway", "svc-billing")
                                       for a in ("--repo", r)])
    done = cluster.cli_json("run", CMD, "--repos", "tag:*", "--strategy", "eager", "--wait",
                            timeout=120)
    assert done["status"] == "succeeded", done
    assert sorted(done["repos"]) == sorted(TREE)
    ran = spans(src / "runs.log")
    assert sorted(ran) == sorted(TREE)
    for consumer, provider in EDGES:
        assert ran[consumer][0] >= ran[provider][1], (consumer, provider, ran)
    # Independent repos were not serialised behind each other: the roots overlapped.
    roots = [ran[r] for r in ("py-core", "ui-kit", "svc-events")]
    assert max(s for s, _ in roots) < min(e for _, e in roots), roots

    # The fleet moves: a new Go service on the gateway; py-cli's tests start using core.
    checkout(src / "svc-audit", {"go.mod": ("module github.com/acme/audit\n\ngo 1.22\n\n"
                                            "require github.com/acme/gateway v1.3.0\n")})
    commit(src / "py-cli", "requirements-test.txt", "acme-core\n")
    drift = cluster.cli_json("init", "--check", expect=1)
    assert [r["name"] for r in drift["repos_added"]] == ["svc-audit"]
    assert [(d["consumer"], d["provider"], d["type"]) for d in drift["dependencies_added"]] == [
        ("py-cli", "py-core", "dev"), ("svc-audit", "svc-gateway", "runtime")]
    assert drift["repos_gone"] == [] and drift["dependencies_lost"] == []
    applied = cluster.cli_json("init", "--check", "--apply")["applied"]
    assert applied["repos_added"] == ["svc-audit"] and len(applied["dependencies_added"]) == 2
    assert cluster.cli_json("init", "--check")["drift"] is False
    # The applied edge orders the next run: audit after the gateway it now depends on.
    (src / "runs.log").unlink()
    cluster.start_worker("svc-audit")
    again = cluster.cli_json("run", CMD, "--repos", "svc-audit...", "--wait", timeout=120)
    assert again["repos"] == ["svc-events", "svc-gateway", "svc-audit"]
    ran = spans(src / "runs.log")
    assert ran["svc-gateway"][1] <= ran["svc-audit"][0]
    # Without the gateway selected, billing still runs after events (through it).
    (src / "runs.log").unlink()
    pair = cluster.cli_json("run", CMD, "--repos", "svc-billing,svc-events", "--wait",
                            "--strategy", "eager", timeout=120)
    assert pair["status"] == "succeeded", pair
    ran = spans(src / "runs.log")
    assert sorted(ran) == ["svc-billing", "svc-events"]
    assert ran["svc-events"][1] <= ran["svc-billing"][0], ran


def test_selectors_on_a_generated_tree(cluster: Cluster) -> None:
    src = tree(cluster.root)
    cluster.eco = src / "ecosystem.yaml"
    cluster.cli_json("init", str(src))
    cluster.cli_json("repo", "update", "py-api", "--role", "service")
    cluster.cli_json("repo", "update", "svc-gateway", "--role", "service")

    def names(sel: str) -> list[str]:
        return [r["name"] for r in cluster.cli_json("repo", "list", "--repos", sel)]

    assert names("svc-*") == ["svc-billing", "svc-events", "svc-gateway"]
    assert names("role:service") == ["py-api", "svc-gateway"]
    assert names("role:serv*,!py-*") == ["svc-gateway"]
    assert names("...^svc-events") == ["svc-billing", "svc-gateway"]  # its consumers
    assert names("svc-billing^...") == ["svc-events", "svc-gateway"]  # its providers
    assert names("tag:node") == ["ui-kit", "web"]
    # changed:REF, against the merge-base: py-api's branch has a commit of its own;
    # ui-kit's forked before main moved on and has none (main's commit is not its change).
    git(src / "py-api", "switch", "-q", "-c", "topic")
    commit(src / "py-api", "NOTES", "mine\n")
    git(src / "ui-kit", "branch", "behind")
    commit(src / "ui-kit", "README", "landed on main\n")
    git(src / "ui-kit", "switch", "-q", "behind")
    assert names("changed:main") == ["py-api"]
    assert names("...changed:main") == ["py-api", "py-cli"]  # Nx's affected
    miss = cluster.cli("repo", "list", "--repos", "svc-gatway")
    assert miss.returncode == 2 and "did you mean svc-gateway" in miss.stderr
