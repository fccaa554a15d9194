"""The alert rules of ``deploy/``, checked by Prometheus's own ``promtool`` (issue #39
item 18: CoordQueueWithoutWorker spelled ``coord.repo.`` into its expression and never
fired under another COORD_NAMESPACE).

- ``promtool check rules`` reads every rule;
- ``promtool test rules`` runs ``deploy/prometheus/coord-rules.test.yml``, where every
  alert fires at least once and stays quiet where it must, its queues named as under
  another namespace (and the namespace-sensitive rule under the default one too); the
  0.3 rule, put back in a copy of the rules, fails those tests;
- a live ``coord metrics`` scrape under ``COORD_NAMESPACE=team2`` is turned into a
  promtool test of its own: the queue with no worker fires, nothing that must stay
  quiet does, and a live worker on the repo silences it.

promtool comes from Debian's ``prometheus`` package (``.ci/run`` installs that one
binary); without it these tests skip, unless ``COORD_REQUIRE_REDIS=1`` (CI), where that
is a failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import ROOT, Cluster, T, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.timeout(120)

RULES = ROOT / "deploy" / "prometheus" / "coord-rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "coord-rules.test.yml"
NAMESPACE = "team2"
#: CoordQueueWithoutWorker as 0.3 shipped it: the queue's name rebuilt with `coord.`.
OLD_QUEUE_RULE = ('celery_queue_length{queue_name=~".+\\\\.repo\\\\..+"} > 0 and on (queue_name) '
                  '(label_replace(coord_workers_live, "queue_name", "coord.repo.$1", "repo", '
                  '"(.+)") == 0)')

Sample = tuple[str, dict[str, str], float]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        why = ("promtool is not on PATH (Debian: the binary of the `prometheus` package; "
               ".ci/run installs it)")
        if os.environ.get("COORD_REQUIRE_REDIS") == "1":
            pytest.fail(f"{why}; COORD_REQUIRE_REDIS=1", pytrace=False)
        pytest.skip(why)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60)


def rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_no_rule_spells_a_namespace() -> None:
    for alert, rule in rules().items():
        # A queue is matched by its label, whatever its prefix.
        assert not re.search(r'"coord\.|coord\.repo', str(rule["expr"])), alert


def test_promtool_reads_every_rule() -> None:
    r = run_promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout, r.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    r = run_promtool("test", "rules", str(TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


def test_every_alert_fires_in_a_unit_test() -> None:
    doc = yaml.safe_load(TESTS.read_text())
    fired: dict[str, list[dict[str, str]]] = {}
    for t in doc["tests"]:
        for a in t.get("alert_rule_test", []):
            for exp in a.get("exp_alerts") or []:
                fired.setdefault(a["alertname"], []).append(exp["exp_labels"])
    assert set(fired) == set(rules()), set(rules()) ^ set(fired)
    queues = {labels.get("queue_name", "").split(".")[0]
              for labels in fired["CoordQueueWithoutWorker"]}
    assert queues == {NAMESPACE, "coord"}, fired["CoordQueueWithoutWorker"]


def test_the_03_rule_fails_the_unit_tests(tmp_path: Path) -> None:
    """0.3's CoordQueueWithoutWorker, put back in a copy of the rules: the team2 queue's
    alert never fires, and promtool says so."""
    doc = yaml.safe_load(RULES.read_text())
    for g in doc["groups"]:
        for r in g["rules"]:
            if r["alert"] == "CoordQueueWithoutWorker":
                r["expr"] = OLD_QUEUE_RULE
    (tmp_path / "coord-rules.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy(TESTS, tmp_path / "coord-rules.test.yml")
    r = run_promtool("test", "rules", str(tmp_path / "coord-rules.test.yml"))
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "FAILED" in out and "alertname: CoordQueueWithoutWorker" in out, out
    assert "team2.repo.a" in out, out


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as res:
            return str(res.read().decode()) if res.status == 200 else None
    except OSError:
        return None


def series(name: str, labels: dict[str, str]) -> str:
    """A series selector as promtool's ``input_series`` reads it."""
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def live_test(samples: list[Sample], name: str, expected: dict[str, list[dict[str, Any]]]
              ) -> dict[str, Any]:
    """A promtool test over ``samples`` held for 20 minutes, with ``expected`` alerts
    (alertname -> exp_alerts) at minute 10 (past every instant rule's ``for``)."""
    inputs = [{"series": series(n, labels), "values": f"{v:g}x20"}
              for n, labels, v in samples if math.isfinite(v)]
    return {"name": name, "interval": "1m", "input_series": inputs,
            "alert_rule_test": [{"eval_time": "10m", "alertname": alert, "exp_alerts": exp}
                                for alert, exp in expected.items()]}


def test_every_rule_works_under_another_namespace(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    c.env["COORD_NAMESPACE"] = NAMESPACE
    # (a shared resource, so that its gauges are in the scrape: nothing holds it)
    c.write_catalog({"a": 1, "b": 1}, [T("TODO-001", "a", "true"), T("TODO-002", "b", "true")],
                    resources={"db": 1})
    # A run of b's (its worker runs it: the histograms get samples), then a todo of a
    # and no worker for a: its message waits in team2.repo.a.
    c.start_workers(["b"])
    res = c.cli("todo", "run", "TODO-002", "--wait", "--json", "--no-sync")
    assert res.returncode == 0, res.stderr
    res = c.cli("todo", "run", "TODO-001", "--json", "--no-sync")
    assert res.returncode == 0, res.stderr
    port = free_port()
    c.popen("metrics", "--port", str(port))
    text = wait_until(lambda: (t := scrape(port)) and f'"{NAMESPACE}.repo.a"' in t and t, 60,
                      "a scrape showing the queued message")
    samples: list[Sample] = [(s.name, dict(s.labels), float(s.value))
                             for fam in text_string_to_metric_families(text)
                             for s in fam.samples]
    by_name: dict[str, set[str]] = {}
    for n, have, _v in samples:
        by_name.setdefault(n, set()).update(have)
    assert any(n == "celery_queue_length" and l == {"queue_name": f"{NAMESPACE}.repo.a"}
               and v > 0 for n, l, v in samples), text
    for alert, rule in rules().items():
        # Every metric a rule reads is in the exposition (coord_redis_replicas: under
        # Sentinel only; test_the_replica_alert_fires_from_a_live_sentinel_scrape below).
        for m in set(re.findall(r"\b((?:celery|coord)_[a-z0-9_]+)\b", str(rule["expr"]))):
            assert m in by_name or m == "coord_redis_replicas", (alert, m, sorted(by_name))
    # the catalog's shared resource, free: its capacity and nothing held or waiting
    assert [(n, v) for n, l, v in samples if n.startswith("coord_resource_")
            and l == {"resource": "db"}] == [
        ("coord_resource_capacity", 1.0), ("coord_resource_used", 0.0),
        ("coord_resource_waiting", 0.0), ("coord_resource_wait_seconds", 0.0)]
    unattended = next(v for n, _l, v in samples if n == "coord_unattended_repos")
    fires = {
        "CoordQueueWithoutWorker": [{
            "exp_labels": {"severity": "warning", "queue_name": f"{NAMESPACE}.repo.a"},
            "exp_annotations": {"summary": f"{NAMESPACE}.repo.a: messages wait and no worker "
                                           "consumes them"}}],
        "CoordUnattendedRepos": [{
            "exp_labels": {"severity": "critical"},
            "exp_annotations": dict(
                summary=f"{unattended:g} repo(s) have queued todos and no live worker",
                description=str(rules()["CoordUnattendedRepos"]["annotations"]["description"]))}],
        "CoordRedisUnreachable": [], "CoordRepoBreakerOpen": [], "CoordQueueBacklog": [],
        "CoordResourceSaturated": [],
    }
    # A live worker on the repo silences it (the same scrape, the worker gauge at 1).
    served = [(n, l, 1.0 if n == "coord_workers_live" and l.get("repo") == "a" else v)
              for n, l, v in samples]
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [
        live_test(samples, "the live scrape under team2", fires),
        live_test(served, "the same with a worker on a", {"CoordQueueWithoutWorker": []}),
    ]}
    path = tmp_path / "live.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    r = run_promtool("test", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr + "\n" + text


def _samples(text: str) -> list[Sample]:
    return [(s.name, dict(s.labels), float(s.value))
            for fam in text_string_to_metric_families(text) for s in fam.samples]


def test_the_replica_alert_fires_from_a_live_sentinel_scrape(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """CoordRedisWithoutReplica reads ``coord_redis_replicas``, which coord exports under
    Sentinel (``sentinel://``; a lone master elsewhere is the norm, and has no such
    series): a live scrape of a master with its replica is quiet, the same master once
    its replica is gone fires the alert (issue #63 found the rule naming a metric it
    thought coord did not export; the plain-Redis scrape above cannot show it)."""
    from tests.integration.sentinel_bed import SentinelBed, cluster_over

    promtool()
    bed = SentinelBed(tmp_path / "bed", replicas=1)
    try:
        clusters = cluster_over(bed, tmp_path, monkeypatch, request, lease_ttl="8")
        c = next(clusters)
        c.write_catalog({"a": 1}, [T("TODO-001", "a", "true")])
        port = free_port()
        c.popen("metrics", "--port", str(port))

        def replicas(n: int) -> list[Sample] | None:
            text = scrape(port)
            got = _samples(text) if text else []
            return got if ("coord_redis_replicas", {}, float(n)) in got else None

        served = wait_until(lambda: replicas(1), 60, "a scrape with the master's replica")
        bed.kill_replicas()
        alone = wait_until(lambda: replicas(0), 60, "a scrape of the master alone")
        fires = [{"exp_labels": {"severity": "warning"}, "exp_annotations": {
            k: str(v) for k, v in rules()["CoordRedisWithoutReplica"]["annotations"].items()}}]
        tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [
            live_test(served, "a Sentinel master with its replica", {"CoordRedisWithoutReplica": []}),
            live_test(alone, "the same master alone", {"CoordRedisWithoutReplica": fires}),
        ]}
        path = tmp_path / "sentinel.test.yml"
        path.write_text(yaml.safe_dump(tests, sort_keys=False))
        r = run_promtool("test", "rules", str(path))
        assert r.returncode == 0, r.stdout + r.stderr
        next(clusters, None)  # its teardown
    finally:
        bed.close()
