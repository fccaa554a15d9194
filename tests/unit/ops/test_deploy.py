"""The alert rules and the Grafana dashboard in deploy/: valid, and every metric they
name is one coord exposes (a renamed metric fails here, not silently in production)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from coordination.ops.metrics import exposition, families, overdue_family
from coordination.runtime.metrics import Counters, Recovery, ResourceUse, Snapshot
from coordination.runtime.workers import WorkerRecord
from coordination.status import BreakerState

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "coord-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "coord.json"
NAME = re.compile(r"\b((?:celery|coord)_[a-z0-9_]+)\b")


class Given(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snap, ["api"], lambda r: f"coord.repo.{r}")
        yield overdue_family({"PLAN-001": [0.0]}, 1.0)  # (the catalog's, beside the snapshot)


def exposed() -> set[str]:
    """Every sample name of a scrape in which each family has a sample."""
    c = Counters.parse({"sent:api": "2", "ended:api:succeeded": "1", "ended:api:failed": "1",
                        "lost:api": "1", "dur:api:succeeded:3": "2", "dur_ms:api": "5000"})
    snap = Snapshot(counters=c, sweeps={"S": "running"}, todos={("queued", "api"): 1},
                    workers=[WorkerRecord(name="w", host="h", pid=1, repos=["api"])],
                    queues={"coord.repo.api": 3}, breakers={"api": BreakerState.open},
                    resources={"db": ResourceUse(capacity=2, used=2, waiting=1,
                                                 wait_seconds=5.0)},
                    recovery={"api": Recovery(last=60.0, mean=60.0, count=1)})
    reg = CollectorRegistry()
    reg.register(Given(snap))
    text = exposition(reg).decode()
    names = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    # the collector's own samples: Redis read or not, and (Sentinel only) its replicas
    return names | {"coord_redis_up", "coord_redis_replicas"}


def test_the_rules_file_is_valid_and_names_only_exposed_metrics() -> None:
    doc = yaml.safe_load(RULES.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert rules and all(r.get("alert") and r.get("expr") for r in rules)
    used = {n for r in rules for n in NAME.findall(str(r["expr"]))}
    assert used and used <= exposed(), used - exposed()
    if shutil.which("promtool"):
        res = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr


def test_the_dashboard_is_valid_json_and_names_only_exposed_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    used = {n for e in exprs for n in NAME.findall(e)}
    used |= {n for v in dash["templating"]["list"] for n in NAME.findall(str(v.get("query")))}
    assert used <= exposed(), used - exposed()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_the_check_sees_an_unknown_metric() -> None:
    assert "coord_todos_in_flight" not in exposed()
    assert {"celery_task_sent_total", "celery_task_runtime_bucket", "celery_worker_up",
            "celery_queue_length", "coord_todo_duration_seconds_bucket",
            "coord_lost_runs_total", "coord_unattended_repos", "coord_resource_used",
            "coord_resource_capacity", "coord_resource_wait_seconds",
            "coord_repo_recovery_seconds"} <= exposed()


def test_the_redis_memory_rule_names_redis_exporters_metrics() -> None:
    """redis_exporter (oliver006) names them so; coord does not expose them."""
    doc = yaml.safe_load(RULES.read_text())
    [rule] = [r for g in doc["groups"] for r in g["rules"] if r["alert"] == "CoordRedisMemoryHigh"]
    assert set(re.findall(r"\bredis_[a-z_]+", rule["expr"])) == {
        "redis_memory_used_bytes", "redis_memory_max_bytes"}
