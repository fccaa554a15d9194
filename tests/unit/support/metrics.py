"""Prometheus samples read back from a scrape, for the unit tests of the metrics exporter
and of what a sweep counts."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from coordination.ops.metrics import exposition, registry
from coordination.runtime.context import Runtime
from tests.unit.support.sweeps import write_catalog

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(rt: Runtime, catalog: Path | None) -> Samples:
    text = exposition(registry(rt, catalog)).decode()
    return parse(text)


def parse(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


def three(root: Path) -> Path:
    return write_catalog(root, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "exit 3", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
    ])
