"""An import inside a function is there for a reason, or it goes to the top of its module.

A function-level import hides a dependency from the reader and costs a lookup on every
call; it pays only when it keeps a module off a start-up path people wait for. So each
one must be either

- on the two paths typed all day: its module is loaded by ``coord --help`` or by
  ``coord --file CATALOG todo list`` (measured here, in fresh interpreters, as
  tests/unit/cli/test_cli_imports.py does), and what it imports is not loaded by both
  of them (so it really defers something); or
- marked ``# lazy: <reason>`` on the import (or on the comment lines right above it),
  the reason naming the cycle it breaks or the other start-up path it serves
  (``# lazy: worker start-up, flower only``). Such exceptions are few and reviewed.

Everything else fails, named by file:line.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordination.demo import prepare
from tests.servers import RedisServer
from tests.unit.support.cli import coord, loaded
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("coordination", "workers")
LAZY = re.compile(r"#\s*lazy:\s*\S")

def loaded_modules(catalog: Path, *args: str) -> frozenset[str]:
    """Every module in sys.modules when ``coord --file CATALOG ARGS...`` exits."""
    modules = frozenset(loaded(catalog, *args, every=True))
    assert "coordination.cli.main" in modules, "the probe did not see every module"
    return modules


@dataclass(frozen=True)
class LazyImport:
    module: str  # the module the function is in
    targets: tuple[str, ...]  # the modules it imports
    file: str
    line: int
    marked: bool  # carries '# lazy: <reason>'

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, seen: frozenset[str]) -> bool:
    """Whether ``name`` is a module (not a name defined in one)."""
    if name in seen:
        return True
    top = name.split(".")[0]
    if top in PACKAGES:  # ours: look at the files, import nothing
        rel = Path(*name.split("."))
        return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool,
             seen: frozenset[str]) -> tuple[str, ...]:
    if isinstance(node, ast.Import):
        return tuple(a.name for a in node.names)
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        pkg = module.split(".") if is_pkg else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join([*pkg, base] if base else pkg)
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if _is_module(sub, seen) else base)
    return tuple(dict.fromkeys(out))


def _marked(node: ast.stmt, lines: list[str]) -> bool:
    """``# lazy: <reason>`` on the statement's lines or on the comment lines above it."""
    end = node.end_lineno or node.lineno
    if any(LAZY.search(lines[i - 1]) for i in range(node.lineno, end + 1)):
        return True
    i = node.lineno - 1
    while i >= 1 and lines[i - 1].lstrip().startswith("#"):
        if LAZY.search(lines[i - 1]):
            return True
        i -= 1
    return False


def function_level_imports(seen: frozenset[str]) -> list[LazyImport]:
    """Every import statement inside a function of our packages."""
    out: list[LazyImport] = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lines = text.splitlines()
            module = module_name(path)
            is_pkg = path.name == "__init__.py"
            rel = str(path.relative_to(ROOT))

            def walk(node: ast.AST, in_function: bool) -> None:
                for child in ast.iter_child_nodes(node):
                    if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                        out.append(LazyImport(module, _targets(child, module, is_pkg, seen),
                                              rel, child.lineno, _marked(child, lines)))
                    walk(child, in_function
                         or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

            walk(ast.parse(text, filename=rel), False)
    return out


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[frozenset[str], frozenset[str]]:
    """Modules loaded by `coord --help` and by `coord --file CATALOG todo list`."""
    catalog = prepare(tmp_path_factory.mktemp("lazy") / "eco", ROOT / "ecosystem.yaml")
    return loaded_modules(catalog, "--help"), loaded_modules(catalog, "todo", "list")


def test_the_probe_sees_both_commands_run(paths: tuple[frozenset[str], frozenset[str]]) -> None:
    help_, todo_list = paths
    assert "coordination.cli.main" in help_ and "coordination.cli.main" in todo_list
    assert "coordination.cli.todo" in todo_list and "coordination.cli.todo" not in help_


def test_the_walk_sees_imports_inside_functions(
        paths: tuple[frozenset[str], frozenset[str]]) -> None:
    found = function_level_imports(paths[0] | paths[1])
    # The CLI's context builds the manager on first use (off `coord todo list`).
    assert any(i.module == "coordination.cli.context"
               and i.targets == ("coordination.catalog.manager",) for i in found), found


def test_every_function_level_import_pays_for_itself(
        paths: tuple[frozenset[str], frozenset[str]]) -> None:
    help_, todo_list = paths
    on_both = help_ & todo_list
    bad = []
    for imp in function_level_imports(help_ | todo_list):
        on_a_path = imp.module in help_ or imp.module in todo_list
        defers = all(t not in on_both for t in imp.targets)
        if imp.marked or (on_a_path and defers):
            continue
        why = ("imports what both paths load anyway" if on_a_path else
               "its module is on neither `coord --help` nor `coord todo list`")
        bad.append(f"{imp.where}: {', '.join(imp.targets)} ({why})")
    assert not bad, (
        f"{len(bad)} import(s) inside functions that defer nothing on the start-up paths: "
        "move each to the top of its module, or mark it '# lazy: <reason>' naming the cycle "
        "or the start-up path it serves\n" + "\n".join(bad))


def test_sweep_status_loads_no_settings_model_and_no_store_it_does_not_read() -> None:
    """`coord sweep status` of a big sweep is a few Redis reads: its modules (the sweep
    commands, the runtime, the summary) load neither pydantic (the settings it needs
    are read by coordination/settings_core.py) nor the leases, transitions, metrics,
    breakers and result cache it never uses (Runtime builds them on first use)."""
    code = ("import json, sys; import coordination.cli.sweep, coordination.sweeps.summary; "
            "from coordination.runtime.context import Runtime; "
            "print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    modules = set(json.loads(r.stdout))
    unwanted = {"pydantic", "pydantic_settings", "coordination.settings", "celery", "networkx",
                "coordination.runtime.leases", "coordination.runtime.transitions",
                "coordination.runtime.metrics", "coordination.runtime.breakers",
                "coordination.runtime.cache"}
    assert not modules & unwanted, sorted(modules & unwanted)


def _modules_after(code: str) -> set[str]:
    """Every module in sys.modules after ``code`` runs in a fresh interpreter."""
    r = subprocess.run([sys.executable, "-c", f"import json, sys; {code}; "
                        "print(json.dumps(sorted(sys.modules)))"], capture_output=True,
                       text=True, timeout=50, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout))


#: `coord ARGS...` stopped where its sweep is recorded (the record's write): the
#: modules loaded by then, as JSON on stdout.
RECORDED = ("import json, os, sys\n"
            "from coordination.runtime.checkpoints import CheckpointStore\n"
            "def recorded(*args, **kwargs):\n"
            "    print(json.dumps(sorted(sys.modules)), flush=True)\n"
            "    os._exit(0)\n"
            "CheckpointStore.create_sweep = recorded\n"
            "from coordination.cli.main import main\n"
            "sys.argv = ['coord', *sys.argv[1:]]\n"
            "main()\n")


def test_a_sweeps_fixed_cost_loads_nothing_it_does_not_use(tmp_path: Path,
                                                           redis_server: RedisServer) -> None:
    """What `coord plan sweep` pays before and after its sweep (#51): the CLI's start
    imports no ssl (only a TLS URL needs it); the plan commands (a dry run's) do not load
    the catalog's editor (ruamel), which `plan optimize` imports when it runs; a plain
    sweep's start does not load a change's anchor nor, through it, the fleet's manifests
    and packaging (only a sweep of a change's todos notes an anchor). And until its sweep
    is recorded, `coord plan sweep` (on a Redis: the first todos are sent right after)
    loads nothing it uses only later, or never: Celery (a send pushes the messages
    itself), the supervision pass, rollbacks, the history record of a sweep's end, the
    catalog's editor that syncs it; nor, when the environment sets only where Redis is,
    the settings' model."""
    start = _modules_after("import coordination.cli.main")
    assert "ssl" not in start
    plan = _modules_after("import coordination.cli.main, coordination.cli.plan")
    assert not plan & {"ruamel.yaml", "coordination.planner.optimize"}, sorted(
        plan & {"ruamel.yaml", "coordination.planner.optimize"})
    steering = _modules_after("import coordination.sweeps.steering")
    unwanted = {"coordination.change.anchor", "coordination.fleet.manifests", "packaging"}
    assert not steering & unwanted, sorted(steering & unwanted)

    # The command itself, stopped where its sweep is recorded (the record's write).
    probe = RECORDED
    catalog = write_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    r = subprocess.run([sys.executable, "-c", probe, "--file", str(catalog), "plan", "sweep",
                        "PLAN-001", "--json"], capture_output=True, text=True, timeout=50,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                          "COORD_REDIS_URL": redis_server.url,
                                          "COORD_NAMESPACE": "fixed-cost",
                                          "COORD_SHARE_NAMESPACE": "1"})
    assert r.returncode == 0 and r.stdout.startswith("["), (r.stdout, r.stderr)
    started = set(json.loads(r.stdout))
    assert "coordination.sweeps.steering" in started, "the probe did not see the start"
    later = {"celery", "kombu", "workers", "coordination.sweeps.supervision",
             "coordination.sweeps.lost", "coordination.sweeps.waits",
             "coordination.runtime.breakers",
             "coordination.sweeps.rollback", "coordination.sweeps.recording",
             "coordination.runtime.history", "coordination.sweeps.writeback.sync", "ruamel.yaml",
             # Every setting read without building the model (settings_defaults.py).
             "coordination.settings"}
    assert not started & later, sorted(started & later)


def test_a_forked_workers_own_imports_load_no_catalog_model_and_no_settings_model() -> None:
    """An embedded sweep forks a worker per core from the CLI (which, on a warm catalog,
    loads neither pydantic nor the catalog's models): each imports what runs todos after
    the fork, so whatever that pulls in is paid once per worker. It pulled in pydantic's
    settings model (the app's settings type) and, through a change's remote check, the
    fleet's manifest readers and the catalog's models: an embedded 3-todo sweep spent
    1.3x the CPU of 0.4's (#64)."""
    cli = ("import coordination.cli.main, coordination.cli.plan, coordination.cli.sweep, "
           "coordination.launch")
    before = _modules_after(cli)
    after = _modules_after(f"{cli}; import workers.embedded, workers.tasks, workers.app, "
                           "workers.liveness, coordination.sweeps.notices.notify")
    assert "workers.runner" in after and "celery" in after, "the probe did not load a worker"
    unwanted = {"pydantic", "pydantic_settings", "coordination.settings",
                "coordination.catalog.models", "coordination.fleet.drift",
                "coordination.fleet.manifests", "packaging"}
    assert not (after - before) & unwanted, sorted((after - before) & unwanted)


def test_a_dry_run_loads_only_what_it_uses(tmp_path: Path) -> None:
    """`coord plan sweep PLAN --dry-run` of a plan whose todos are estimated (#51's small
    plan) reads no Redis and writes nothing: it loads neither pydantic-settings (nor,
    through it, asyncio and ssl), nor redis-py, Celery or the catalog's editor (ruamel);
    once the catalog's validated cache is warm, not PyYAML either, nor pydantic, the
    catalog's models or the settings (it reads a view of the cache); and with --json,
    which renders nothing for people, not Rich. The view prints what the models print;
    a plan with a template (for_each:), which expands from the models, too."""
    catalog = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "estimated_hours": 0.5},
        {"id": "TODO-002", "repo": "web", "run": "true", "estimated_hours": 1,
         "blocked_by": ["TODO-001"]}])
    never = {"pydantic_settings", "asyncio", "ssl", "redis", "celery", "kombu", "ruamel.yaml"}
    cold = loaded_modules(catalog, "plan", "sweep", "PLAN-001", "--dry-run")
    assert "coordination.planner.documents" in cold, "the probe did not see the dry run"
    assert not cold & never, sorted(cold & never)
    warm = loaded_modules(catalog, "plan", "sweep", "PLAN-001", "--dry-run")
    assert not warm & (never | {"yaml"}), sorted(warm & (never | {"yaml"}))
    as_json = loaded_modules(catalog, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert "coordination.planner.documents" in as_json
    assert not as_json & (never | {"yaml", "rich"}), sorted(as_json & (never | {"yaml", "rich"}))
    models = {"pydantic", "coordination.catalog.models", "coordination.settings"}
    assert "coordination.catalog.reads.views" in warm, "the probe did not see the view"
    assert not warm & models, sorted(warm & models)
    assert not as_json & models, sorted(as_json & models)
    # cold (a cache miss: the store's models), then warm (a view): the same document
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    for name, written in (("plain", catalog), ("templated", write_catalog(
            tmp_path / "templated", [
                {"id": "TODO-001", "repo": "api", "run": "true", "estimated_hours": 0.5},
                {"id": "TODO-002", "for_each": "api,web", "run": "true",
                 "estimated_hours": 1, "blocked_by": ["TODO-001"]}]))):
        docs = [coord(written, "plan", "sweep", "PLAN-001", "--dry-run", "--json", env=env)
                for _ in range(2)]
        assert [d.returncode for d in docs] == [0, 0], docs[0].stderr
        assert docs[0].stdout == docs[1].stdout, name
        assert json.loads(docs[0].stdout)["todos"] == (2 if name == "plain" else 3), name
    # a bad setting the dry run does not use is refused as before (the full settings)
    bad = coord(catalog, "plan", "sweep", "PLAN-001", "--dry-run", env={"COORD_LEASE_TTL": "x"})
    assert bad.returncode == 2 and "bad setting: COORD_LEASE_TTL" in bad.stderr, bad.stderr
    # the template's plan: the models, as before
    assert {"pydantic", "coordination.catalog.models"} <= loaded_modules(
        written, "plan", "sweep", "PLAN-001", "--dry-run")



def test_a_sweeps_start_reads_a_view_of_a_warm_catalog(tmp_path: Path,
                                                       redis_server: RedisServer) -> None:
    """Until its sweep is recorded, `coord plan sweep` of a catalog whose validated cache
    is warm (and has no template) plans, sizes and publishes from a view of the cache:
    it loads none of the catalog's models (nor their store). A cold cache loads them
    (the store validates the file and fills the cache), as before."""
    catalog = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "cache": True},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"],
         "acceptance_criteria": [{"text": "ok", "check": "true"}]}])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "COORD_REDIS_URL": redis_server.url,
           "COORD_NAMESPACE": "views-start", "COORD_SHARE_NAMESPACE": "1"}
    runs = []
    for _ in ("cold", "warm"):
        r = subprocess.run([sys.executable, "-c", RECORDED, "--file", str(catalog), "plan",
                            "sweep", "PLAN-001", "--json"], capture_output=True, text=True,
                           timeout=50, cwd=tmp_path, env=env)
        assert r.returncode == 0 and r.stdout.startswith("["), (r.stdout, r.stderr)
        runs.append(set(json.loads(r.stdout)))
    cold, warm = runs
    models = {"coordination.catalog.models", "coordination.catalog.file.store"}
    assert models <= cold, "the probe did not see the cold start load the models"
    assert {"coordination.sweeps.steering", "coordination.sweeps.planning",
            "coordination.catalog.reads.views"} <= warm, "the probe did not see a view's start"
    assert not warm & models, sorted(warm & models)
