"""No edge hides under a box (issue #63): both graphs of the web view route an edge that
skips levels (or columns) through slots of its own, so no point of any edge's path lies
inside a node's box. 0.5 drew the dependency graph's edge from libcore to web (skipping
api) straight through api's box, and an edge to a repo drawn left of its provider down
through the boxes above it, arrow and label hidden."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

import pytest

from coordination.catalog.models import Catalog
from coordination.ui.insight import dependencies
from coordination.ui.layout import NODE_H, NODE_W, layout

pytestmark = pytest.mark.timeout(60)

Box = tuple[float, float, float, float]  # x, y, w, h


def points(d: str, steps: int = 40) -> Iterator[tuple[float, float]]:
    """Points along an SVG path of M, C and L commands (what the layouts write)."""
    tokens = re.findall(r"[MCL]|-?\d+(?:\.\d+)?", d)
    i, x, y = 0, 0.0, 0.0
    while i < len(tokens):
        cmd = tokens[i]
        if cmd == "M":
            x, y = float(tokens[i + 1]), float(tokens[i + 2])
            i += 3
            yield x, y
        elif cmd == "L":
            x2, y2 = float(tokens[i + 1]), float(tokens[i + 2])
            for k in range(1, steps + 1):
                t = k / steps
                yield x + (x2 - x) * t, y + (y2 - y) * t
            x, y = x2, y2
            i += 3
        elif cmd == "C":
            c = [float(v) for v in tokens[i + 1:i + 7]]
            for k in range(1, steps + 1):
                t = k / steps
                a, b, e, f = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
                yield (a * x + b * c[0] + e * c[2] + f * c[4],
                       a * y + b * c[1] + e * c[3] + f * c[5])
            x, y = c[4], c[5]
            i += 7
        else:
            raise AssertionError(f"unexpected path command {cmd!r} in {d!r}")


def under_a_box(d: str, boxes: Iterable[tuple[str, Box]]) -> list[tuple[str, tuple[float, float]]]:
    """The points of ``d`` strictly inside a box (an end touching a box's side is not)."""
    found = []
    listed = list(boxes)
    for px, py in points(d):
        for name, (x, y, w, h) in listed:
            if x + 0.5 < px < x + w - 0.5 and y + 0.5 < py < y + h - 0.5:
                found.append((name, (round(px, 1), round(py, 1))))
    return found


def sweep_boxes(doc: dict) -> list[tuple[str, Box]]:
    return [(n["id"], (n["x"], n["y"], NODE_W, NODE_H)) for n in doc["nodes"]]


def test_an_edge_that_skips_a_level_runs_beside_the_todo_between() -> None:
    # a -> b -> c and a -> c, all in one repo: 0.5 drew a -> c straight through b's box.
    doc = layout({"a": "r", "b": "r", "c": "r"}, [("a", "b"), ("b", "c"), ("a", "c")],
                 [["a"], ["b"], ["c"]])
    boxes = sweep_boxes(doc)
    for e in doc["edges"]:
        assert under_a_box(e["d"], boxes) == [], e
    skip = next(e for e in doc["edges"] if (e["from"], e["to"]) == ("a", "c"))
    b = next(n for n in doc["nodes"] if n["id"] == "b")
    xs = [x for x, _y in points(skip["d"])]
    assert min(xs) <= b["x"] and max(xs) >= b["x"] + NODE_W  # it does cross b's column


def test_no_edge_of_a_random_sweep_passes_under_a_todo() -> None:
    rnd = random.Random(11)
    ids = [f"T{i:03d}" for i in range(120)]
    repo_of = {t: f"repo{rnd.randrange(4)}" for t in ids}
    edges = sorted({(ids[j], ids[i]) for i in range(1, len(ids))
                    for j in rnd.sample(range(max(0, i - 30), i), min(i, 3))})
    level: dict[str, int] = {}
    for t in ids:  # (edges only go from lower to higher index)
        level[t] = max((level[u] + 1 for u, v in edges if v == t), default=0)
    levels = [[t for t in ids if level[t] == k] for k in range(max(level.values()) + 1)]
    doc = layout(repo_of, edges, levels)
    boxes = sweep_boxes(doc)
    assert len(doc["edges"]) == len(edges)
    hidden = {(e["from"], e["to"]): got for e in doc["edges"]
              if (got := under_a_box(e["d"], boxes))}
    assert hidden == {}, list(hidden.items())[:3]


def deps_catalog(deps: list[tuple[str, str, str]], repos: list[str]) -> Catalog:
    return Catalog.model_validate({
        "version": 1, "repos": [{"name": r} for r in repos],
        "coordination": {"dependencies": [
            {"id": f"DEP-{i + 1:03d}", "consumer": c, "provider": p, "type": t}
            for i, (c, p, t) in enumerate(deps)]}})


def dep_boxes(g: dict) -> list[tuple[str, Box]]:
    return [(n["repo"], (n["x"], n["y"], g["node_w"], g["node_h"])) for n in g["nodes"]]


def test_the_dependency_graph_hides_no_edge_nor_label() -> None:
    # The example catalog's shape: api and jobs on libcore, web on api by an `api`
    # dependency (which orders no work: 0.5 drew web in the first column, its arrow down
    # through the boxes above it), and web straight on libcore (skipping api's column).
    g = dependencies(deps_catalog([("api", "libcore", "runtime"), ("jobs", "libcore", "runtime"),
                                   ("web", "api", "api"), ("web", "libcore", "runtime")],
                                  ["libcore", "api", "web", "jobs", "infra"]))
    col = {n["repo"]: n["level"] for n in g["nodes"]}
    assert col["libcore"] < col["api"] < col["web"]  # every provider left of its consumer
    boxes = dep_boxes(g)
    for e in g["edges"]:
        assert under_a_box(e["d"], boxes) == [], e
        lx, ly = e["label"]
        assert not [n for n, (x, y, w, h) in boxes if x < lx < x + w and y < ly < y + h], e


def test_cycles_and_one_column_edges_stay_clear_of_the_boxes() -> None:
    # A runtime cycle cut at one edge (drawn right to left), peers in one column, a chain
    # skipping two columns, a repo depending on itself.
    deps = [("b", "a", "runtime"), ("c", "b", "runtime"), ("a", "c", "runtime"),
            ("d", "c", "runtime"), ("d", "a", "build"), ("e", "d", "peer"),
            ("d", "e", "peer"), ("f", "f", "runtime"), ("g", "a", "dev")]
    g = dependencies(deps_catalog(deps, list("abcdefg")))
    boxes = dep_boxes(g)
    assert len(g["edges"]) == len(deps)
    for e in g["edges"]:
        assert under_a_box(e["d"], boxes) == [], e
        xs = [x for x, _ in points(e["d"])]
        assert max(xs) <= g["width"] and min(xs) >= 0, e


def test_a_cycle_is_cut_at_its_weakest_edge() -> None:
    # libcore -> api -> web (web's edge on api orders no work) -> infra (dev) -> libcore
    # (peer): the cut is the peer edge or the dev one, never the runtime edges.
    deps = [("api", "libcore", "runtime"), ("web", "api", "api"), ("web", "libcore", "runtime"),
            ("infra", "web", "dev"), ("libcore", "infra", "peer")]
    g = dependencies(deps_catalog(deps, ["libcore", "api", "web", "infra"]))
    col = {n["repo"]: n["level"] for n in g["nodes"]}
    assert col["libcore"] < col["api"] < col["web"], col
    backwards = [e["id"] for e in g["edges"] if col[e["consumer"]] <= col[e["provider"]]]
    assert len(backwards) == 1 and backwards[0] in ("DEP-004", "DEP-005"), (backwards, col)
