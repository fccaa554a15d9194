"""The package's layers, checked on the source: no upward import, no import cycle.

Every import counts, the ones inside functions too (that is where a hidden
cycle lives). Layers, lowest first; a module may import its own layer or lower:

    base      coordination.{errors,keys,settings,settings_core,redis_url,status,retry,messages}
                                                (messages: what the runtime sends, the Dispatcher
                                                protocol it is given; types, no state)
    catalog   coordination.catalog.*            (the catalog, its store and manager; every
                                                folder of it, file/ edits/ reads/ selection/
                                                runs/ audit/ rules/ models/, is this layer)
    fleet     coordination.fleet.*              (checkouts on disk and their manifests: coord init)
    planner   coordination.planner.*            (pure: no Redis, no Celery)
    stats     coordination.stats.*              (pure arithmetic over recorded runs: search
                                                relevance, flow; no Redis, no runtime)
    trust     coordination.trust.*              (what a record must prove: no Redis, no runtime)
    connection coordination.connection.*        (where Redis is, whether it answers, what the server is)
    runtime   coordination.runtime.*            (Redis state only: leases, events, checkpoints,
                                                cache, tallies, Lua, the stores; no Celery)
    history   coordination.history.*            (reading the run history: search, trends and
                                                their documents, through the runtime's store)
    forge     coordination.forge.*              (GitHub, GitLab, Gitea through their APIs: pull
                                                requests, reviews, checks, merges, webhooks;
                                                nothing of change/, sweeps/, cli/)
    change    coordination.change.*             (cross-repo changes: git, worktrees, landing)
    dispatch  coordination.dispatch.*           (messages: the Celery app, signatures)
    sweeps    coordination.sweeps.*             (spec, supervisor, service)
    ops       coordination.ops.*                (metrics exposition, doctor's checks)
    workers   workers.*                         (Celery tasks, the worker process)
    launch    coordination.{launch,demo,firing,beat} (wiring a process: mode, app, workers;
                                                a sweep started by a schedule or a push)
    ui        coordination.ui.*                 (the web view; only the cli imports it)
    cli       coordination.cli.*
    mcp       coordination.mcp_server.*         (`coord mcp`; named by the CLI as a string only)

trust and connection are one floor in two rooms: neither imports the other.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("coordination", "workers")

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("coordination", "coordination.errors", "coordination.keys",
              "coordination.settings", "coordination.settings_core", "coordination.redis_url",
              "coordination.status", "coordination.retry", "coordination.messages")),
    ("catalog", ("coordination.catalog",)),
    ("fleet", ("coordination.fleet",)),
    ("planner", ("coordination.planner",)),
    ("stats", ("coordination.stats",)),
    ("trust", ("coordination.trust",)),
    ("connection", ("coordination.connection",)),
    ("runtime", ("coordination.runtime",)),
    ("history", ("coordination.history",)),
    ("forge", ("coordination.forge",)),
    ("change", ("coordination.change",)),
    ("dispatch", ("coordination.dispatch",)),
    ("sweeps", ("coordination.sweeps",)),
    ("ops", ("coordination.ops",)),
    ("workers", ("workers",)),
    ("launch", ("coordination.launch", "coordination.demo", "coordination.firing",
                "coordination.beat")),
    ("ui", ("coordination.ui",)),
    ("cli", ("coordination.cli",)),
    ("mcp", ("coordination.mcp_server",)),
]
#: Third-party packages a layer (and everything below it) must not import.
FORBIDDEN = {
    "planner": ("celery", "kombu", "redis", "fakeredis", "flower"),
    "stats": ("celery", "kombu", "redis", "fakeredis", "flower"),
    "trust": ("celery", "kombu", "redis", "fakeredis", "flower"),
    "runtime": ("celery", "kombu", "flower"),
    "change": ("celery", "kombu", "flower"),
    # The web view's server is loaded only by `coord ui` and `--ui` (coordination.ui).
    "launch": ("starlette", "uvicorn", "anyio", "selenium"),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or package)
    file: str
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[module_name(path)] = path
    return out


def imports(known: dict[str, Path]) -> list[Import]:
    """Every import statement of our modules, anywhere in the file: parsed once per
    process for each set of modules (every check here walks the same ~500 files; parsed
    again per check, they took minutes on a busy machine)."""
    return list(_imports(tuple(known.items())))


@functools.lru_cache(maxsize=4)
def _imports(known_items: tuple[tuple[str, Path], ...]) -> tuple[Import, ...]:
    known = dict(known_items)
    out = []
    for name, path in known.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                # `from pkg import mod` imports the module pkg.mod when there is one
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
                targets = subs or [base]
            for t in targets:
                out.append(Import(name, t, str(path.relative_to(ROOT)), node.lineno))
    return tuple(out)


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for i, (_name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[0]:
                    best = (len(p), i)
    return None if best is None else best[1]


def own(target: str, known: dict[str, Path]) -> str | None:
    """The module of ours ``target`` names (a name imported from a module maps to it)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in modules() if layer_of(m) is None)
    assert not missing, f"modules in no layer (add them to LAYERS in {__file__}): {missing}"


def test_no_module_imports_a_higher_layer() -> None:
    known = modules()
    bad = []
    for imp in imports(known):
        target = own(imp.target, known)
        if target is None:
            continue
        src, dst = layer_of(imp.module), layer_of(target)
        assert src is not None and dst is not None
        if dst > src:
            bad.append(f"{imp.file}:{imp.line}: {imp.module} ({LAYERS[src][0]}) imports "
                       f"{target} ({LAYERS[dst][0]})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_lower_layers_import_no_celery() -> None:
    known = modules()
    bad = []
    for imp in imports(known):
        src = layer_of(imp.module)
        assert src is not None
        for layer, packages in FORBIDDEN.items():
            limit = next(i for i, (n, _p) in enumerate(LAYERS) if n == layer)
            top = imp.target.split(".")[0]
            if src <= limit and top in packages:
                bad.append(f"{imp.file}:{imp.line}: {imp.module} ({LAYERS[src][0]}) imports "
                           f"{imp.target}")
    assert not bad, "forbidden imports:\n" + "\n".join(sorted(set(bad)))


#: Floors side by side: listed one above the other, but neither may import the other.
APART = (("coordination.connection", "coordination.trust"),)


def test_side_by_side_floors_import_neither_way() -> None:
    known = modules()
    bad = []
    for imp in imports(known):
        target = own(imp.target, known) or ""
        for a, b in APART:
            for src, dst in ((a, b), (b, a)):
                if (imp.module == src or imp.module.startswith(src + ".")) and (
                        target == dst or target.startswith(dst + ".")):
                    bad.append(f"{imp.file}:{imp.line}: {imp.module} imports {target}")
    assert not bad, "side-by-side floors import each other:\n" + "\n".join(bad)


def test_only_the_cli_imports_the_web_view() -> None:
    known = modules()
    bad = sorted(f"{i.file}:{i.line}: {i.module} imports {i.target}" for i in imports(known)
                 if (own(i.target, known) or "").startswith("coordination.ui")
                 and not i.module.startswith(("coordination.ui", "coordination.cli")))
    assert not bad, "the web view is a top layer:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    known = modules()
    g = nx.DiGraph()
    where: dict[tuple[str, str], str] = {}
    for imp in imports(known):
        target = own(imp.target, known)
        if target is None or target == imp.module:
            continue
        g.add_edge(imp.module, target)
        where.setdefault((imp.module, target), f"{imp.file}:{imp.line}")
    cycles = []
    for scc in nx.strongly_connected_components(g):
        if len(scc) < 2:
            continue
        cycle = nx.find_cycle(g.subgraph(scc))
        cycles.append(" -> ".join(f"{a} ({where[(a, b)]})" for a, b in cycle)
                      + f" -> {cycle[0][0]}")
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_see_function_level_imports() -> None:
    """The cycle this test exists for hid inside a function; make sure such an import
    is collected (the launcher imports the embedded workers inside a method)."""
    found = [i for i in imports(modules())
             if i.module == "coordination.launch" and i.target == "workers.embedded"]
    assert found and found[0].line > 20


#: Inside sweeps/: the rooms that tell (notices/), keep a todo's output (runlogs/) or say
#: what starts a sweep (starts/) never reach into what moves todos (the engine, whose
#: progress.py is the one door of every ending) nor into governance/.
SWEEPS_QUIET = ("coordination.sweeps.notices", "coordination.sweeps.runlogs",
                "coordination.sweeps.starts")
SWEEPS_MOVING = tuple(f"coordination.sweeps.{m}" for m in (
    "progress", "turns", "steering", "sending", "supervision", "lost", "waits", "waves",
    "rollback", "governance"))


def test_the_quiet_rooms_of_sweeps_never_move_a_todo() -> None:
    known = modules()
    assert all(any(m == p or m.startswith(p + ".") for m in known)
               for p in SWEEPS_QUIET + SWEEPS_MOVING), "a room named here is gone: rename it"
    bad = sorted(f"{i.file}:{i.line}: {i.module} imports {t}" for i in imports(known)
                 if i.module.startswith(tuple(p + "." for p in SWEEPS_QUIET))
                 and (t := own(i.target, known) or "")
                 and (t in SWEEPS_MOVING or t.startswith(tuple(p + "." for p in SWEEPS_MOVING))))
    assert not bad, "a quiet room of sweeps/ imports what moves todos:\n" + "\n".join(bad)
