"""The one dependency ordering (coordination.catalog.selection.ordering): which edges order, a
cycle one group after its providers and before its consumers, ordered inside by the
edges that close no cycle,
the warning's text in `dep list`'s direction, ``cycles: error``, and the overrides."""

from __future__ import annotations

from typing import Any

import pytest

from coordination.catalog.models import Catalog
from coordination.catalog.selection.ordering import effective, order_repos, overriding, parse_types
from coordination.errors import PlanError, UsageError

pytestmark = pytest.mark.timeout(30)


def fleet(deps: list[tuple[str, str, str] | tuple[str, str, str, dict[str, Any]]],
          repos: str = "cli lib-a lib-b site db", order: dict[str, Any] | None = None
          ) -> Catalog:
    items = []
    for k, d in enumerate(deps, 1):
        extra = d[3] if len(d) > 3 else {}  # type: ignore[misc]
        items.append({"id": f"DEP-{k:03d}", "consumer": d[0], "provider": d[1], "type": d[2],
                      **extra})
    return Catalog.model_validate({"version": 1, "repos": [{"name": n} for n in repos.split()],
                                   "coordination": {"dependencies": items},
                                   **({"order": order} if order else {})})


# The Node toolchain's shape: cli runs on the libraries; each library dev-depends on cli.
TOOLCHAIN: list[Any] = [
    ("cli", "lib-a", "runtime", {"source": {"file": "package.json", "line": 14}}),
    ("cli", "lib-b", "runtime", {"source": {"file": "package.json", "line": 15}}),
    ("lib-a", "cli", "dev", {"source": {"file": "package.json", "line": 30}}),
    ("lib-b", "cli", "dev", {"source": {"file": "package.json", "line": 31}}),
    ("lib-a", "db", "runtime"),
    ("site", "cli", "runtime"),
]
ALL = ["cli", "lib-a", "lib-b", "site", "db"]


def test_dev_optional_and_indirect_edges_do_not_order_by_default() -> None:
    cat = fleet([*TOOLCHAIN, ("db", "site", "optional"),
                 ("db", "lib-b", "runtime", {"indirect": True})])
    o = order_repos(cat, ALL)
    assert o.groups == [] and o.warnings == []
    assert o.levels == [[["db"], ["lib-b"]], [["lib-a"]], [["cli"]], [["site"]]]
    assert o.after == {"db": [], "lib-b": [], "lib-a": ["db"], "cli": ["lib-a", "lib-b"],
                       "site": ["cli"]}


def test_a_cycle_is_one_group_chained_by_its_edges_between_providers_and_consumers() -> None:
    """Inside the group the runtime edges cli -> lib-a, cli -> lib-b still order (the
    dev edges back to cli close the cycle and are dropped): the libraries run first,
    in name order (nothing orders them between themselves), then cli."""
    o = order_repos(fleet(TOOLCHAIN), ALL, by="runtime,dev")
    assert o.groups == [["cli", "lib-a", "lib-b"]]
    assert o.levels == [[["db"]], [["lib-a", "lib-b", "cli"]], [["site"]]]
    # the first member after every provider of the group; the rest one at a time
    assert o.after["lib-a"] == ["db"] and o.after["lib-b"] == ["lib-a"]
    assert o.after["cli"] == ["lib-b"]
    assert o.after["site"] == ["cli"]  # after the group's last member
    assert o.run_order() == ["db", "lib-a", "lib-b", "cli", "site"]
    assert o.group_of() == {"cli": 1, "lib-a": 1, "lib-b": 1}
    assert o.dropped == [{"consumer": "lib-a", "provider": "cli", "id": "DEP-003",
                          "type": "dev"},
                         {"consumer": "lib-b", "provider": "cli", "id": "DEP-004",
                          "type": "dev"}]


def test_inside_a_group_the_edges_closing_no_cycle_order_it() -> None:
    """phpunit's family with --order-by runtime,dev: every package dev-needs phpunit,
    which needs them all at runtime; comparator needs diff and exporter at runtime.
    Name order would run comparator before diff; the group runs as the DAG left when
    the dev edges closing the cycles are dropped, and says which it dropped."""
    deps: list[Any] = [("phpunit", p, "runtime") for p in ("comparator", "diff", "exporter")]
    deps += [("comparator", "diff", "runtime"), ("comparator", "exporter", "runtime")]
    deps += [(p, "phpunit", "dev") for p in ("comparator", "diff", "exporter")]
    cat = fleet(deps, repos="phpunit comparator diff exporter")
    o = order_repos(cat, ["phpunit", "comparator", "diff", "exporter"], by="runtime,dev")
    assert o.groups == [["comparator", "diff", "exporter", "phpunit"]]
    assert o.run_order() == ["diff", "exporter", "comparator", "phpunit"]
    assert {(d["consumer"], d["provider"], d["type"]) for d in o.dropped} == {
        ("comparator", "phpunit", "dev"), ("diff", "phpunit", "dev"),
        ("exporter", "phpunit", "dev")}
    (w,) = o.warnings
    assert "one at a time: diff, then exporter, then comparator, then phpunit" in w
    assert "dropped as closing one: comparator -> phpunit (DEP-006 dev)" in w
    # a cycle of runtime edges only: the weakest kept first does not apply; the edge
    # taken last (by name) is the one dropped, and the rest still order
    ring = fleet([("a", "b", "runtime"), ("b", "c", "runtime"), ("c", "a", "runtime")])
    o = order_repos(ring, ["a", "b", "c"])
    assert o.run_order() == ["c", "b", "a"] and [(d["consumer"], d["provider"])
                                                 for d in o.dropped] == [("c", "a")]


def test_a_three_repo_cycle_warning_explains_every_member() -> None:
    """The shortest cycle through the first member passes through two of the three;
    the third gets the shortest cycle through it (it was left unexplained)."""
    (w,) = order_repos(fleet(TOOLCHAIN), ALL, by="runtime,dev").warnings
    first, _, rest = w.partition("; and through lib-b: ")
    assert "lib-b" not in first.split(": ", 1)[1]
    assert rest.startswith("lib-b -> cli (DEP-004 dev, package.json:31); "
                           "cli -> lib-b (DEP-002 runtime, package.json:15)")
    # a ring of three: the first cycle passes through all, nothing added
    ring = fleet([("a", "b", "runtime"), ("b", "c", "runtime"), ("c", "a", "runtime")])
    (w,) = order_repos(ring, ["a", "b", "c"]).warnings
    assert w.startswith("dependency cycle among a, b, c: a -> b (DEP-001 runtime); "
                        "b -> c (DEP-002 runtime); c -> a (DEP-003 runtime); they run")


def test_the_warning_names_the_cycle_consumer_to_provider_with_type_and_line() -> None:
    (w,) = order_repos(fleet(TOOLCHAIN), ALL, by="runtime,dev").warnings
    assert w.startswith("dependency cycle among cli, lib-a, lib-b: "
                        "cli -> lib-a (DEP-001 runtime, package.json:14); "
                        "lib-a -> cli (DEP-003 dev, package.json:30)")
    assert "one group, one at a time: lib-a, then lib-b, then cli" in w


def test_cycles_error_refuses_with_the_same_text_and_a_hint_that_works() -> None:
    cat = fleet(TOOLCHAIN, order={"by": ["runtime", "dev"], "cycles": "error"})
    with pytest.raises(PlanError) as err:
        order_repos(cat, ALL)
    assert err.value.exit_code == 2
    assert str(err.value.message) == ("dependency cycle among cli, lib-a, lib-b: "
                                      "cli -> lib-a (DEP-001 runtime, package.json:14); "
                                      "lib-a -> cli (DEP-003 dev, package.json:30); "
                                      "and through lib-b: "
                                      "lib-b -> cli (DEP-004 dev, package.json:31); "
                                      "cli -> lib-b (DEP-002 runtime, package.json:15)")
    assert "--cycles group" in (err.value.hint or "")
    # followed: --cycles group runs it as the group
    assert order_repos(cat, ALL, cycles="group").groups == [["cli", "lib-a", "lib-b"]]


def test_a_cycle_through_unselected_repos_groups_the_selected_ones() -> None:
    cat = fleet([("lib-a", "db", "runtime"), ("db", "lib-b", "runtime"),
                 ("lib-b", "site", "runtime"), ("site", "lib-a", "peer")])
    o = order_repos(cat, ["lib-b", "lib-a"])
    assert o.groups == [["lib-a", "lib-b"]]
    assert "lib-a -> db (DEP-001 runtime); db -> lib-b (DEP-002 runtime); lib-b -> site " \
        "(DEP-003 runtime); site -> lib-a (DEP-004 peer)" in o.warnings[0]
    # one of them alone: a cycle through unselected repos only is not the selection's
    assert order_repos(cat, ["lib-a"]).groups == []


def test_the_catalogs_order_and_the_commands_override() -> None:
    cat = fleet(TOOLCHAIN, order={"by": ["runtime", "dev"]})
    assert order_repos(cat, ALL).groups == [["cli", "lib-a", "lib-b"]]
    with overriding(cat, "runtime", None):
        assert effective(cat).by == parse_types("runtime")
        assert order_repos(cat, ALL).groups == []
    assert order_repos(cat, ALL).groups  # restored after the command


def test_an_unknown_type_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError) as err:
        parse_types("runtime,devv")
    assert "devv" in err.value.message and "runtime, build, dev" in (err.value.hint or "")


def test_two_separate_cycles_are_two_groups_each_warned() -> None:
    cat = fleet([("cli", "lib-a", "runtime"), ("lib-a", "cli", "build"),
                 ("site", "db", "runtime"), ("db", "site", "peer"), ("site", "cli", "runtime")])
    o = order_repos(cat, ALL)
    assert o.groups == [["cli", "lib-a"], ["db", "site"]] and len(o.warnings) == 2
    assert o.after["db"] == ["cli"] and o.after["site"] == ["db"]  # lib-a, cli; db, site


def test_a_thousand_repos_with_cycles_are_ordered_fast() -> None:
    import random
    import time

    rng = random.Random(3)
    names = [f"r{i:04d}" for i in range(1000)]
    deps: list[Any] = [(names[i], names[j], "runtime") for i in range(1, 1000)
                       for j in rng.sample(range(i), min(i, 2))]
    deps += [(names[j], names[j + 5], "runtime") for j in range(0, 1000, 50)]  # 20 cycles
    cat = fleet(deps, repos=" ".join(names))
    t0 = time.perf_counter()
    o = order_repos(cat, names)
    assert time.perf_counter() - t0 < 5.0
    level = {r: i for i, r in enumerate(o.run_order())}
    group = o.group_of()
    for c, p, _ in deps:  # every ordering edge holds, but inside a group
        if not (group.get(c) and group.get(c) == group.get(p)):
            assert level[p] < level[c], (c, p)
