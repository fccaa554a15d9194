"""How embedded mode deals a sweep's repos to its forked worker processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import workers.embedded
from workers.embedded import cgroup_cpus, default_processes, process_groups, slots_of


def test_one_process_per_core_at_most_one_per_repo() -> None:
    repos = {"api": 2, "web": 2, "jobs": 2, "docs": 2}
    groups = process_groups(repos, 2)
    assert len(groups) == 2
    assert sorted(r for g in groups for r in g) == sorted(repos)  # each repo once
    assert [sum(g.values()) for g in groups] == [4, 4]  # slots shared out evenly
    assert len(process_groups(repos, 16)) == 4  # never more processes than repos
    assert process_groups({"api": 3}, 8) == [{"api": 3}]


def test_the_busiest_repos_are_dealt_first() -> None:
    groups = process_groups({"a": 6, "b": 1, "c": 1, "d": 1, "e": 3}, 2)
    assert sorted(sum(g.values()) for g in groups) == [6, 6]
    assert {"a": 6} in groups


@pytest.mark.parametrize(("repos", "threads"), [
    ({"api": 2}, 2),  # one repo: a thread per slot
    ({"api": 2, "web": 1}, 4),  # several: one more, so a full repo's message waits alone
    ({"api": 0}, 1),  # concurrency 0 still gets a thread
])
def test_threads_of_a_worker(repos: dict[str, int], threads: int) -> None:
    assert slots_of(repos) == threads


def test_forked_workers_by_default_on_linux_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(workers.embedded, "cgroup_cpus", lambda: None)
    assert default_processes() == len(os.sched_getaffinity(0)) >= 1
    monkeypatch.setattr(workers.embedded, "cgroup_cpus", lambda: 1)  # a container's --cpus=1
    assert default_processes() == 1
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_processes() == 0  # threads of the sweeping process


def test_a_containers_cpu_quota_caps_the_processes(tmp_path: Path) -> None:
    """A container limited to 2.5 CPUs on a 64-core host sees 64 in its affinity mask:
    a worker of 200 repos forked 64 processes there (#64)."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("250000 100000\n")
    assert cgroup_cpus(v2) == 3
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpus(v1) == 2
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpus(v1) is None
    assert cgroup_cpus(tmp_path / "none") is None
