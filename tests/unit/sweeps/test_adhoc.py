"""`coord run`'s spec: ad-hoc RUN-<repo> todos, providers first, the command untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.models import Catalog
from coordination.errors import PlanError, UsageError
from coordination.keys import Keys
from coordination.sweeps.adhoc import run_spec
from coordination.sweeps.spec import SweepSpec

pytestmark = pytest.mark.timeout(60)


def fleet(deps: list[tuple[str, str]], **repo: object) -> Catalog:
    return Catalog.model_validate({
        "version": 1,
        "repos": [{"name": n, "tags": ["python"], **repo} for n in ("db", "api", "web", "jobs")],
        "coordination": {"dependencies": [
            {"id": f"DEP-{i:03d}", "consumer": c, "provider": p}
            for i, (c, p) in enumerate(deps, 1)]}})


DEPS = [("web", "api"), ("api", "db"), ("jobs", "db")]


def test_providers_first_and_the_command_as_typed(tmp_path: Path) -> None:
    cmd = 'make test && echo "$COORD_REPO"'
    spec = run_spec(Keys("t"), fleet(DEPS), tmp_path / "eco.yaml", cmd,
                    ["db", "api", "web", "jobs"])
    assert spec.levels == [["RUN-db"], ["RUN-api", "RUN-jobs"], ["RUN-web"]]
    assert spec.todos["RUN-web"].preds == ["RUN-api"]
    assert spec.todos["RUN-db"].succs == ["RUN-api", "RUN-jobs"]
    assert {t.run for t in spec.todos.values()} == {cmd}  # no repo pasted in
    api = spec.todos["RUN-api"]
    assert api.repo == "api" and api.queue == Keys("t").repo_queue("api")
    assert api.path == str(tmp_path / "api") and api.env["COORD_REPO_PATH"] == api.path
    assert api.env["COORD_REPO_TAGS"] == "python" and api.cache is None
    assert SweepSpec.from_json(spec.to_json()).todos["RUN-api"].run == cmd


def test_order_through_unselected_repos_reduced_and_order_none(tmp_path: Path) -> None:
    spec = run_spec(Keys("t"), fleet(DEPS), None, "true", ["web", "db"])
    assert spec.levels == [["RUN-db"], ["RUN-web"]]  # web -> api -> db: api not selected
    assert spec.todos["RUN-web"].preds == ["RUN-db"]
    spec = run_spec(Keys("t"), fleet(DEPS), None, "true", ["web", "jobs"])
    assert spec.levels == [["RUN-jobs", "RUN-web"]]  # siblings through db stay unordered
    # web -> api -> db and web -> db: web waits for api alone (db before api says it)
    spec = run_spec(Keys("t"), fleet([*DEPS, ("web", "db")]), None, "true",
                    ["db", "api", "web"])
    assert spec.todos["RUN-web"].preds == ["RUN-api"]
    assert spec.levels == [["RUN-db"], ["RUN-api"], ["RUN-web"]]
    spec = run_spec(Keys("t"), fleet(DEPS), None, "true", ["db", "api"], order="none")
    assert spec.levels == [["RUN-api", "RUN-db"]]


def test_a_cycle_through_unselected_repos_only_is_not_the_runs(tmp_path: Path) -> None:
    # api -> db -> jobs -> api: with api alone selected, it waits for nothing
    spec = run_spec(Keys("t"), fleet([("api", "db"), ("db", "jobs"), ("jobs", "api")]), None,
                    "true", ["api", "web"])
    assert spec.levels == [["RUN-api", "RUN-web"]]
    # with db too, the cycle is theirs: one group, ordered by the edge that closes no
    # cycle (api consumes db): db, then api
    spec = run_spec(Keys("t"), fleet([("api", "db"), ("db", "jobs"), ("jobs", "api")]), None,
                    "true", ["api", "db"])
    assert spec.levels == [["RUN-db"], ["RUN-api"]]
    with pytest.raises(PlanError) as err:
        run_spec(Keys("t"), fleet([("api", "db"), ("db", "jobs"), ("jobs", "api")]), None,
                 "true", ["api", "db"], cycles="error")
    assert "cycle among api, db: api -> db" in str(err.value)


def test_a_thousand_repo_run_is_ordered_fast() -> None:
    import random
    import time

    rng = random.Random(7)
    names = [f"svc-{i:04d}" for i in range(1000)]
    deps = [(names[i], names[j]) for i in range(1, 1000)
            for j in rng.sample(range(i), min(i, 2))]
    cat = Catalog.model_validate({
        "version": 1, "repos": [{"name": n} for n in names],
        "coordination": {"dependencies": [{"id": f"DEP-{k:04d}", "consumer": c, "provider": p}
                                          for k, (c, p) in enumerate(deps, 1)]}})
    t0 = time.perf_counter()
    every = run_spec(Keys("t"), cat, None, "true", names)
    half = run_spec(Keys("t"), cat, None, "true", names[::2])
    took = time.perf_counter() - t0
    assert len(every.todos) == 1000 and len(half.todos) == 500
    # Every edge of the catalog holds in the full run (its order implies each one).
    level = {t: i for i, lv in enumerate(every.levels) for t in lv}
    assert all(level[f"RUN-{p}"] < level[f"RUN-{c}"] for c, p in deps)
    assert took < 5.0, took  # generous: a few hundred ms on a loaded 2-core machine


def test_cache_and_pace_come_with_the_flag_and_the_repo(tmp_path: Path) -> None:
    spec = run_spec(Keys("t"), fleet([], pace={"key": "repo", "rate": "10/minute"}), None,
                    "true", ["api"], cache=True)
    assert spec.todos["RUN-api"].cache == {"env": [], "inputs": [], "probes": []}
    assert spec.todos["RUN-api"].pace == ["repo:api"] and spec.paces["repo:api"][0] == 6.0


def test_a_cycle_is_refused_naming_it_with_cycles_error() -> None:
    with pytest.raises(PlanError) as err:
        run_spec(Keys("t"), fleet([("api", "db"), ("db", "api")]), None, "true", ["db", "api"],
                 cycles="error")
    assert "cycle among api, db" in str(err.value)
    assert "--cycles group" in (err.value.hint or "") and "--order none" in (err.value.hint or "")


def test_a_cycle_runs_as_a_group_one_repo_at_a_time_by_default() -> None:
    spec = run_spec(Keys("t"), fleet([("api", "db"), ("db", "api"), ("web", "db")]), None,
                    "true", ["web", "db", "api"])
    # one repo at a time, as the edge that closes no cycle orders them (api consumes db;
    # db -> api closes the cycle, by name the later of the two)
    assert spec.levels == [["RUN-db"], ["RUN-api"], ["RUN-web"]]
    assert spec.todos["RUN-web"].preds == ["RUN-api"]  # after the group's last member


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(UsageError):
        run_spec(Keys("t"), fleet([]), None, "  ", ["db"])


def test_a_fleet_run_is_named_by_a_few_of_its_todos() -> None:
    from coordination.cli.sweep_render import subject

    todos = {f"RUN-s{i:04d}": {} for i in range(1000)}
    st = {"sweep_id": "RUN-20261125-ab12", "plan": "", "todos": todos}
    assert subject(st) == "RUN-s0000, RUN-s0001, RUN-s0002 and 997 more"  # type: ignore[arg-type]
    few = {"sweep_id": "RUN-20261125-ab12", "plan": "", "todos": {"RUN-a": {}, "RUN-b": {}}}
    assert subject(few) == "RUN-a, RUN-b"  # type: ignore[arg-type]
