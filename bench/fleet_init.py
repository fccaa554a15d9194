"""`coord init` and `coord init --check` over fleets of 200 and 1,000 real-shaped git
checkouts, each against a shell loop over the same checkouts in the same run (issues
#48, #61, #79); and the read of a package.json naming 80,000 dependencies (issue #49).

Each checkout is a real ``git init`` (made once, in parallel) with a remote's
``origin/HEAD`` and a config, holding a copy of a real repository's manifests at their
paths, its ``.gitignore`` and its directories: ``bench/fleet_manifests/`` (33 public
Python, Node, Go, Rust and Java repositories, see its NOTE.md) and the fleet tests'
``tests/unit/fixtures/fleets/`` (26: Gradle, sbt, Maven, .NET, Ruby, PHP, Python, Go;
each with its NOTE): workspaces, examples, nested modules, several requirement files,
about 6 manifests read a checkout. The checkouts go round the repositories; each round
after the first renames every package they provide ``NAME-gN`` in all its manifests
(a Maven package by its artifactId, NuGet's without case), so each round is the real
fleet again with its real dependencies (httpx-g3 needs httpcore-g3).

Timed, each a whole process (start-up included), wall and CPU (``RUSAGE_CHILDREN``: the
process and all it waited for), median of ``--runs``; in each round every step once,
the order turning from round to round:

- baseline: for each checkout, ``git -C DIR rev-parse HEAD`` and one ``cat`` of the
  manifests coord reads there (the files its readers open, found by watching them read
  each repository once), in one ``sh``;
- coord init (after one untimed run that compiles coord's bytecode, as installing it
  does): ``coord init ROOT --json`` writing a new catalog (discovery, manifests,
  inference, the catalog written as one audited edit), the catalog and its audit log
  removed before each run;
- ``coord init --check --json`` on the written catalog (no drift), and ``coord init``
  again (nothing new), each also on that catalog holding a ``for_each`` plan (two
  templates over every repo, ``deps: follow``);
- with ``--before DIR``, the same four with the coord whose ``coordination/`` is in DIR.

``--cores 2,16`` runs the rounds once per core count, every process of them (the loop's
too) held to that many CPUs (``sched_setaffinity``): one machine gives the figures of a
smaller one. Prints the ratios per size and core count against the targets (init and
init --check <= 2x the loop; the ``for_each`` plan <= 1.1x the CPU without), the load
average at each round, then one JSON line. Not part of the test suite.

    .venv/bin/python bench/fleet_init.py [--repos 200,1000] [--runs 3] [--cores 2,16]
        [--templates bench,fixtures] [--before DIR] [--keep DIR] [--skip-big] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)

TARGET = 2.0
ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@b",
           GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@b", GIT_CONFIG_NOSYSTEM="1")


MANIFESTS = ROOT / "bench" / "fleet_manifests"
#: The real manifests the fleet tests read (tests/unit/fixtures/fleets/NAME, each with a
#: NOTE saying where from): Gradle, sbt, Maven, .NET, Ruby, PHP, Python and Go repositories.
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "fleets"
SOURCES = {"bench": MANIFESTS, "fixtures": FIXTURES}


@dataclass(frozen=True)
class Template:
    """One real repository's manifests (bench/fleet_manifests/OWNER+NAME): its files
    (path -> bytes), its directories, and the package names it provides (as written:
    what a copy renames)."""

    name: str
    files: dict[str, bytes]
    dirs: list[str]
    provides: list[str]


def templates(sources: list[str]) -> list[Template]:
    """The real repositories whose copies the fleet is made of, each with the names of
    the packages coord finds it provides (read once, in this process): those of
    ``bench/fleet_manifests`` (``bench``) and of the fleet tests' fixtures
    (``fixtures``)."""
    sys.path.insert(0, str(ROOT))
    from coordination.fleet import manifests

    out = []
    for source in sources:
        base = SOURCES[source]
        dirs = json.loads((base / "dirs.json").read_text()) if source == "bench" else {}
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            files = {f.relative_to(d).as_posix(): f.read_bytes()
                     for f in sorted(d.rglob("*")) if f.is_file()
                     and not (source == "fixtures" and f.relative_to(d).as_posix() == "NOTE")}
            provides = sorted({name for eco, name in manifests.read(d).provides
                               if eco != "path"})
            # Cargo compares '_' and '-' alike: a copy renames both spellings. A Maven
            # package is renamed by its artifactId (written apart from its groupId).
            provides += [n.replace("-", "_") for n in provides if "-" in n]
            provides += [n.rsplit(":", 1)[1] for n in provides if ":" in n]
            name = d.name if source == "bench" else f"fixture+{d.name}"
            out.append(Template(name, files, dirs.get(d.name, []), provides))
    return out


def renamer(names: list[str], generation: int) -> Any:
    """Generation ``g`` of the fleet (g >= 1) is the real fleet again with every package
    a template provides renamed ``NAME-g<g>``, in every manifest of the generation, so
    each copy provides its own packages and needs its own generation's (httpx-g3 needs
    httpcore-g3: the real edges, once per generation). Generation 0 is verbatim."""
    if generation == 0:
        return lambda data: data
    alts = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
    # NuGet compares names without case (Polly, polly).
    pattern = re.compile(rf"(?<![\w.@/-])({alts})(?![\w.-])".encode(), re.IGNORECASE)
    suffix = f"-g{generation}".encode()
    return lambda data: pattern.sub(lambda m: m.group(1) + suffix, data)


def make_checkout(root: Path, i: int, tpls: list[Template], rename: Any) -> Path:
    """Checkout ``i``: a copy of template ``i % len(tpls)`` (its manifests at their paths,
    its .gitignore, its directories), committed, with an origin and its HEAD."""
    t = tpls[i % len(tpls)]
    d = root / f"team-{i % 10}" / f"{t.name.split('+')[1]}-{i:04d}"
    d.mkdir(parents=True)
    for sub in t.dirs:
        (d / sub).mkdir(parents=True, exist_ok=True)
    for rel, data in t.files.items():
        target = d / (".gitignore" if rel == "gitignore" else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rename(data) if rel != "gitignore" else data)
    subprocess.run(["git", "init", "-q", "-b", "main", str(d)], check=True, env=ENV)
    subprocess.run(["git", "-C", str(d), "add", "-A", "-f"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(d), "commit", "-q", "-m", "seed"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(d), "remote", "add", "origin",
                    f"https://git.example.com/{t.name.replace('+', '/')}-{i:04d}.git"],
                   check=True, env=ENV)
    head = subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], check=True, env=ENV,
                          capture_output=True, text=True).stdout.strip()
    refs = d / ".git" / "refs" / "remotes" / "origin"
    refs.mkdir(parents=True)
    (refs / "main").write_text(head + "\n")
    (refs / "HEAD").write_text("ref: refs/remotes/origin/main\n")
    return d


def files_read(checkout: Path) -> list[str]:
    """The files coord's manifest readers open in ``checkout`` (relative), in order: what
    the shell loop cats. Found by watching ``open`` while they read it."""
    import builtins

    from coordination.fleet import manifests

    seen: dict[str, None] = {}
    real_open = builtins.open

    def watching(file: Any, *args: Any, **kwargs: Any) -> Any:
        path = os.path.abspath(os.fspath(file))
        if path.startswith(str(checkout) + os.sep):
            seen[os.path.relpath(path, checkout)] = None
        return real_open(file, *args, **kwargs)

    builtins.open = watching
    try:
        manifests.read(checkout)
    finally:
        builtins.open = real_open
    return list(seen)


@dataclass
class Took:
    """One timed process: wall seconds, and the CPU seconds (user + system) of it and
    every process it waited for (``RUSAGE_CHILDREN``, before and after: the bench runs
    one at a time)."""

    wall: float
    cpu: float
    stdout: str = ""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path, cpus: set[int] | None) -> Took:
    c0, t0 = _children_cpu(), time.perf_counter()
    res = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                         preexec_fn=pinned(cpus))
    took = Took(time.perf_counter() - t0, _children_cpu() - c0, res.stdout)
    if res.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])}... exited {res.returncode}: {res.stderr[-2000:]}")
    return took


def pinned(cpus: set[int] | None) -> Any:
    """A ``preexec_fn`` holding the process (and what it starts) to ``cpus``."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


# A checkout whose manifests coord reads none of is still asked git (and cat is not run:
# with no file it would read the listing).
LOOP = ('while read d files; do git -C "$d" rev-parse HEAD; '
        'if [ -n "$files" ]; then cat $files; fi; done >/dev/null')


def shell_loop(listing: Path, cpus: set[int] | None) -> Took:
    """The baseline: one ``sh`` running, for each checkout listed (``DIR FILE...`` a
    line), ``git rev-parse HEAD`` and one ``cat`` of the manifests coord reads there."""
    c0, t0 = _children_cpu(), time.perf_counter()
    with open(listing) as f:
        subprocess.run(["sh", "-c", LOOP], stdin=f, check=True, env=ENV,
                       preexec_fn=pinned(cpus))
    return Took(time.perf_counter() - t0, _children_cpu() - c0)


def big_package_json(tmp: Path, n: int = 80_000) -> float:
    """Seconds to read a package.json naming ``n`` dependencies (each with its line),
    best of three, in process: the manifest reader alone."""
    sys.path.insert(0, str(ROOT))
    from coordination.fleet import manifests

    root = tmp / "big"
    root.mkdir()
    deps = ",\n".join(f'    "pkg-{i}": "^1.{i}"' for i in range(n))
    (root / "package.json").write_text(
        '{\n  "name": "big",\n  "dependencies": {\n' + deps + "\n  }\n}\n")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        got = manifests.read(root)
        best = min(best, time.perf_counter() - t0)
        assert len(got.requires) == n and not got.problems
    return best


def build(tmp: Path, n: int, sources: list[str], keep: Path | None, say: Any
          ) -> tuple[Path, Path, int]:
    """The fleet of ``n`` checkouts, the loop's listing, and the manifests read in all.
    With ``--keep DIR`` a fleet built there before (its listing beside it) is used again."""
    root = keep / f"fleet-{n}" if keep else tmp / f"fleet-{n}"
    listing = (keep or tmp) / f"checkouts-{n}.txt"
    if keep and listing.exists() and root.is_dir():
        lines = listing.read_text().splitlines()
        manifests_read = sum(len(line.split()) - 1 for line in lines)
        say(f"fleet: {n} checkouts under {root} (kept from an earlier run), "
            f"{manifests_read / n:.1f} manifests read a checkout")
        return root, listing, manifests_read
    root.mkdir(parents=True, exist_ok=True)
    tpls = templates(sources)
    gens = {g: renamer([n for t in tpls for n in t.provides], g)
            for g in range((n + len(tpls) - 1) // len(tpls))}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        checkouts = list(pool.map(
            lambda i: make_checkout(root, i, tpls, gens[i // len(tpls)]), range(n)))
    # What coord reads in each, asked once per template (a copy reads the same paths).
    read = {t.name: files_read(checkouts[k]) for k, t in enumerate(tpls[:n])}
    listing.write_text("".join(
        " ".join([str(d), *(str(d / f) for f in read[tpls[i % len(tpls)].name])]) + "\n"
        for i, d in enumerate(checkouts)))
    manifests_read = sum(len(read[tpls[i % len(tpls)].name]) for i in range(n))
    say(f"fleet: {n} checkouts under {root}, copies of {len(tpls)} real repositories' "
        f"manifests, {manifests_read / n:.1f} manifests read a checkout "
        f"(made in {time.perf_counter() - t0:.1f} s)")
    return root, listing, manifests_read


#: What each round times, as (key, what it is). ``init`` writes a new catalog; the others
#: run on the catalog it wrote, as it is (``plain``) or holding a ``for_each`` plan.
KINDS = {
    "loop": "the shell loop",
    "init": "coord init (new catalog)",
    "check": "coord init --check",
    "check_fe": "coord init --check, a for_each plan in the catalog",
    "again": "coord init (existing catalog, nothing new)",
    "again_fe": "coord init (existing catalog with a for_each plan, nothing new)",
}


def paired(these: list[Took], those: list[Took]) -> float:
    """The median of the rounds' CPU ratios, ``these[i] / those[i]``."""
    return round(statistics.median(a.cpu / b.cpu for a, b in zip(these, those)), 3)


def with_for_each(coord: list[str], env: dict[str, str], root: Path, catalog: Path) -> bytes:
    """The catalog's bytes with a plan of two ``for_each`` templates over every repo
    (``deps: follow``, the second waiting on the first's instance in the same repo), as
    a fleet-wide change holds them; the catalog itself is put back as it was."""
    plain = catalog.read_bytes()
    cat = [*coord, "-f", str(catalog)]
    plan = timed([*cat, "plan", "create", "--title", "bench", "--status", "active"], env,
                 root, None).stdout.strip().split()[-1]
    first = timed([*cat, "todo", "create", "--task", "bump", "--plan", plan,
                   "--for-each", "*", "--deps", "follow", "--run", "true"], env, root,
                  None).stdout.strip().split()[-1]
    timed([*cat, "todo", "create", "--task", "test", "--plan", plan, "--for-each", "*",
           "--deps", "follow", "--run", "true", "--blocked-by", f"{first}[same]"], env, root,
          None)
    held = catalog.read_bytes()
    catalog.write_bytes(plain)
    return held


def one_size(tmp: Path, n: int, runs: int, cores: list[int | None], sources: list[str],
             keep: Path | None, before: Path | None, say: Any) -> list[dict[str, Any]]:
    root, listing, manifests_read = build(tmp, n, sources, keep, say)
    # As an installed coord runs: its modules' bytecode compiled once (pip does it at
    # install), not again by every run as PYTHONDONTWRITEBYTECODE=1 would have it. With
    # --before, that coord too, each with its own cache.
    base = {k: v for k, v in os.environ.items()
            if k not in ("COORD_ECOSYSTEM", "PYTHONDONTWRITEBYTECODE", "COORD_REDIS_URL")}
    contenders = {"": ROOT, **({"before ": before} if before else {})}
    envs = {label: dict(base, PYTHONPATH=str(where), XDG_CACHE_HOME=str(tmp / f"cache{i}"),
                        PYTHONPYCACHEPREFIX=str(tmp / f"pycache{i}"))
            for i, (label, where) in enumerate(contenders.items())}
    coord = [sys.executable, "-m", "coordination.cli.main"]
    catalog = root / "ecosystem.yaml"
    # A new catalog each round: its audit log and snapshot go with it.
    beside = [root / f".ecosystem.yaml.coord.{what}" for what in ("audit.jsonl", "audit.last")]
    for env in envs.values():
        timed([*coord, "init", str(root), "--dry-run", "--json"], env, root, None)  # compiles
    # The catalog the checks run on, as init writes it, and the same holding the plan.
    for p in (catalog, *beside):
        p.unlink(missing_ok=True)
    doc = json.loads(timed([*coord, "init", str(root), "--json"], envs[""], root, None).stdout)
    plain = catalog.read_bytes()
    held = with_for_each(coord, envs[""], root, catalog)
    available = sorted(os.sched_getaffinity(0))
    kinds = ["loop"] + [f"{label}{kind}" for label in contenders for kind in KINDS if kind != "loop"]
    out = []
    for k in cores:
        cpus = None if k is None else set(available[:k])
        used = len(available) if cpus is None else len(cpus)
        took: dict[str, list[Took]] = {kind: [] for kind in kinds}
        loads: list[float] = []
        check = [*coord, "-f", str(catalog), "init", "--check", "--json"]
        again = [*coord, "-f", str(catalog), "init", "--json"]
        new = [*coord, "init", str(root), "--json"]
        steps: list[tuple[str, dict[str, str] | None, list[str], bytes | None]] = [
            ("loop", None, [], None)]
        for label, env in envs.items():
            steps += [(f"{label}init", env, new, None), (f"{label}check", env, check, plain),
                      (f"{label}check_fe", env, check, held), (f"{label}again", env, again, plain),
                      (f"{label}again_fe", env, again, held)]
        for run in range(runs):
            loads.append(os.getloadavg()[0])
            # Alternating: A B C ..., then B C ... A, and so on; the loop among them.
            turn = (run * 5) % len(steps) if len(steps) > 6 else run % len(steps)
            for kind, step_env, argv, data in steps[turn:] + steps[:turn]:
                if step_env is None:
                    took[kind].append(shell_loop(listing, cpus))
                    continue
                if data is None:  # a new catalog
                    for p in (catalog, *beside):
                        p.unlink(missing_ok=True)
                else:
                    catalog.write_bytes(data)
                took[kind].append(timed(argv, step_env, root, cpus))
            say(f"  {used} cores, round {run + 1} (load {loads[-1]:.2f}): " + ", ".join(
                f"{kind} {t[-1].wall:.2f} s / {t[-1].cpu:.2f} s CPU" for kind, t in took.items()))
        wall = {kind: statistics.median(t.wall for t in ts) for kind, ts in took.items()}
        cpu = {kind: statistics.median(t.cpu for t in ts) for kind, ts in took.items()}
        result: dict[str, Any] = {
            "repos": n, "cores": used, "runs": runs,
            "load": [round(x, 2) for x in loads],
            "dependencies": len(doc.get("dependencies_added") or []),
            "manifests_per_checkout": round(manifests_read / n, 2),
            "wall_s": {kd: round(v, 3) for kd, v in wall.items()},
            "cpu_s": {kd: round(v, 3) for kd, v in cpu.items()},
            "ratio": {kd: round(wall[kd] / wall["loop"], 2) for kd in kinds[1:]},
            "cpu_ratio": {kd: round(cpu[kd] / cpu["loop"], 2) for kd in kinds[1:]},
            # A for_each plan's cost: the median of each round's ratio (the two steps run
            # one after the other), not a ratio of medians: the same command's CPU moved
            # by 15-30% from round to round on a quiet 2-core machine, more than the 10%
            # this ratio is held to.
            "for_each_cpu": paired(took["check_fe"], took["check"]),
            "again_fe_cpu": paired(took["again_fe"], took["again"]),
            "target": TARGET,
        }
        result["met"] = all(result["ratio"][kd] <= TARGET for kd in ("init", "check"))
        say(f"{n:,} checkouts on {used} cores (load {min(loads):.2f}-{max(loads):.2f}), "
            f"medians of {runs}; the loop {wall['loop']:.2f} s wall, {cpu['loop']:.2f} s CPU:")
        for kd in kinds[1:]:
            label, _, bare = kd.rpartition(" ")
            say(f"  {label + ': ' if label else ''}{KINDS[bare]}: {wall[kd]:.2f} s "
                f"({result['ratio'][kd]:.2f}x the loop), CPU {cpu[kd]:.2f} s "
                f"({result['cpu_ratio'][kd]:.2f}x)")
        say(f"  target init and init --check <= {TARGET}x the loop: "
            f"{'met' if result['met'] else 'NOT met'}; a for_each plan: --check "
            f"{result['for_each_cpu']:.2f}x the CPU without; {result['dependencies']} "
            "dependencies inferred")
        out.append(result)
    return out


def figures_of(results: list[dict[str, Any]], runs: int, big: float) -> list[Any]:
    figures = []
    for r in results:
        where = f"{r['cores']} cores, load {min(r['load']):.1f}-{max(r['load']):.1f}"
        w, c = r["wall_s"], r["cpu_s"]
        figures.append(_report.figure(
            f"`coord init` over {r['repos']:,} real-shaped checkouts "
            f"({r['manifests_per_checkout']} manifests each), {r['dependencies']:,} "
            f"dependencies inferred, {where} (median of {runs})",
            w["init"], "s", baseline=w["loop"],
            baseline_name="`git rev-parse HEAD` + `cat` of the manifests, a loop",
            target=("<=", TARGET, "x"), on="ratio"))
        figures.append(_report.figure(
            f"CPU of `coord init` over {r['repos']:,} checkouts", c["init"], "s",
            baseline=c["loop"], baseline_name="the loop's CPU", target=("<=", TARGET, "x"),
            on="ratio"))
        figures.append(_report.figure(
            f"`coord init --check` over {r['repos']:,} checkouts (no drift), {where}",
            w["check"], "s", baseline=w["loop"], baseline_name="the same loop",
            target=("<=", TARGET, "x"), on="ratio"))
        figures.append(_report.figure(
            f"CPU of `coord init --check` over {r['repos']:,} checkouts", c["check"], "s",
            baseline=c["loop"], baseline_name="the loop's CPU", target=("<=", TARGET, "x"),
            on="ratio"))
        figures.append(_report.figure(
            f"`coord init --check` over {r['repos']:,} checkouts, the catalog holding a "
            "`for_each` plan (two templates over every repo)", w["check_fe"], "s",
            baseline=w["loop"], baseline_name="the same loop", target=("<=", TARGET, "x"),
            on="ratio"))
        figures.append(_report.figure(
            f"CPU of `coord init --check` over {r['repos']:,} checkouts, a `for_each` plan "
            "in the catalog", c["check_fe"], "s", baseline=c["check"],
            baseline_name="the same without the plan (median of the rounds' ratios)",
            ratio=r.get("for_each_cpu"), target=("<=", 1.1, "x"), on="ratio"))
        figures.append(_report.figure(
            f"`coord init` again over {r['repos']:,} checkouts (nothing new), a `for_each` "
            "plan in the catalog", w["again_fe"], "s", baseline=w["loop"],
            baseline_name="the same loop", target=("<=", TARGET, "x"), on="ratio"))
        figures.append(_report.figure(
            f"CPU of `coord init` again over {r['repos']:,} checkouts, a `for_each` plan in "
            "the catalog", c["again_fe"], "s", baseline=c["again"],
            baseline_name="the same without the plan (median of the rounds' ratios)",
            ratio=r.get("again_fe_cpu"), target=("<=", 1.1, "x"), on="ratio"))
    figures.append(_report.figure("a package.json naming 80,000 dependencies read (best of 3)",
                                  big, "s", target=("<", 2.0, "s")))
    return figures


def figures_before(results: list[dict[str, Any]]) -> list[Any]:
    """This tree's CPU against ``--before``'s, measured in the same rounds."""
    figures = []
    for r in results:
        c = r["cpu_s"]
        for kind in ("init", "check", "check_fe"):
            figures.append(_report.figure(
                f"CPU of {KINDS[kind]} over {r['repos']:,} checkouts, this tree against "
                "`--before`'s", c[kind], "s", baseline=c[f"before {kind}"],
                baseline_name="`--before`'s coord, the same rounds"))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", default="200,1000",
                    help="Fleet sizes, comma-separated (default 200,1000).")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cores", default="",
                    help="Core counts to hold every process to, comma-separated "
                    "(default: all this process may use).")
    ap.add_argument("--templates", default="bench,fixtures",
                    help="Whose manifests the checkouts copy: bench (bench/fleet_manifests), "
                    "fixtures (tests/unit/fixtures/fleets); default both.")
    ap.add_argument("--keep", type=Path, default=None,
                    help="Build the fleets here and keep them (a fleet kept there is used "
                    "again).")
    ap.add_argument("--before", type=Path, default=None,
                    help="A directory holding another coord's coordination/ package (git "
                    "archive BASE coordination | tar -x -C DIR): timed too, in the same "
                    "rounds, each of its figures as a ratio to this tree's.")
    ap.add_argument("--skip-big", action="store_true",
                    help="Leave out the 80,000-dependency package.json.")
    ap.add_argument("--json", action="store_true", help="Print only the final JSON line.")
    args = ap.parse_args()
    sizes = [int(x) for x in args.repos.split(",") if x.strip()]
    cores: list[int | None] = [int(x) for x in args.cores.split(",") if x.strip()] or [None]
    sources = [x for x in args.templates.split(",") if x.strip()]
    say = (lambda *a: None) if args.json else print
    say(f"{os.cpu_count()} CPUs, load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="coord-fleet-init-"))
    try:
        results = [r for n in sizes
                   for r in one_size(tmp, n, args.runs, cores, sources, args.keep,
                                     args.before, say)]
        big = float("nan") if args.skip_big else big_package_json(tmp)
        if not args.skip_big:
            say(f"a package.json naming 80,000 dependencies read in {big:.2f} s (target < 2 s)")
        print(json.dumps({"sizes": results, "package_json_80000_s": round(big, 3)}))
        figures = figures_of(results, args.runs, big)
        if args.skip_big:
            figures = figures[:-1]
        if args.before is not None:
            figures += figures_before(results)
        _report.record("fleet_init", figures,
                       notes="load average (1 min) at each round: " + "; ".join(
                           f"{r['repos']:,}: {', '.join(f'{x:.2f}' for x in r['load'])}"
                           for r in results))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
