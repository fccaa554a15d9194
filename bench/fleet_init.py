"""`coord init` and `coord init --check` over generated fleets of 200 and 1,000 git
checkouts, each against a shell loop over the same checkouts in the same run (issue #48
item 6); and the read of a package.json naming 80,000 dependencies (issue #49 item 5).

Each checkout is a real ``git init`` (made once, in parallel, with ``git`` itself) with a
remote's ``origin/HEAD``, a config, and a manifest: a third each Python
(pyproject.toml), Node (package.json) and Go (go.mod), each requiring one or two
packages of earlier checkouts, so the catalog gets about 1.5 inferred dependencies a
checkout.

Timed, each a whole process (start-up included), median of ``--runs``, the three
alternating:

- baseline: ``while read d m; do git -C "$d" rev-parse HEAD; cat "$d/$m"; done`` in
  ``sh`` (a process per checkout for git and one for cat: the least a tool that asks git
  about each checkout and reads its manifest pays);
- coord init (after one untimed run that compiles coord's bytecode, as installing it
  does): ``coord init ROOT --json`` writing a fresh catalog (discovery, manifests,
  inference, the catalog written as one audited edit), the catalog removed before each
  run;
- coord check: ``coord init --check --json`` on the written catalog (no drift).

Prints both ratios per size against the target (each <= 2x the loop), then one JSON
line. Not part of the test suite.

    .venv/bin/python bench/fleet_init.py [--repos 200,1000] [--runs 3] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)

TARGET = 2.0
ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@b",
           GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@b", GIT_CONFIG_NOSYSTEM="1")


def manifest(i: int) -> tuple[str, str]:
    """Checkout ``i``'s manifest: provides pkg-i, requires one or two earlier ones."""
    kind = i % 3  # a dependency is on a package of the same ecosystem
    deps = list(dict.fromkeys(j for j in (i - 3, 3 * (i // 6) + kind) if 0 <= j < i))
    deps = deps[: 1 + (i // 3) % 2]
    if kind == 0:
        reqs = ", ".join(f'"pkg-{j}>=1"' for j in deps)
        return "pyproject.toml", f'[project]\nname = "pkg-{i}"\ndependencies = [{reqs}]\n'
    if kind == 1:
        body = ", ".join(f'"pkg-{j}": "^1"' for j in deps)
        return "package.json", f'{{"name": "pkg-{i}", "dependencies": {{{body}}}}}\n'
    lines = "".join(f"\tpkg-{j} v1.0.0\n" for j in deps)
    return "go.mod", f"module pkg-{i}\n\ngo 1.22\n\nrequire (\n{lines})\n"


def make_checkout(root: Path, i: int) -> Path:
    d = root / f"team-{i % 10}" / f"svc-{i:04d}"
    d.mkdir(parents=True)
    name, text = manifest(i)
    (d / name).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main", str(d)], check=True, env=ENV)
    subprocess.run(["git", "-C", str(d), "add", "-A"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(d), "commit", "-q", "-m", "seed"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(d), "remote", "add", "origin",
                    f"https://git.example.com/acme/svc-{i:04d}.git"], check=True, env=ENV)
    head = subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], check=True, env=ENV,
                          capture_output=True, text=True).stdout.strip()
    refs = d / ".git" / "refs" / "remotes" / "origin"
    refs.mkdir(parents=True)
    (refs / "main").write_text(head + "\n")
    (refs / "HEAD").write_text("ref: refs/remotes/origin/main\n")
    return d


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])}... exited {res.returncode}: {res.stderr[-2000:]}")
    return took, res.stdout


LOOP = 'while read d m; do git -C "$d" rev-parse HEAD; cat "$d/$m"; done >/dev/null'


def shell_loop(listing: Path) -> float:
    """The baseline: one ``sh`` running ``git rev-parse HEAD`` and ``cat`` of the
    manifest for each checkout listed (``DIR MANIFEST`` a line)."""
    t0 = time.perf_counter()
    with open(listing) as f:
        subprocess.run(["sh", "-c", LOOP], stdin=f, check=True, env=ENV)
    return time.perf_counter() - t0


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


def one_size(tmp: Path, n: int, runs: int, keep: Path | None,
             say: Any) -> dict[str, Any]:
    root = keep / f"fleet-{n}" if keep else tmp / f"fleet-{n}"
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        checkouts = sorted(pool.map(lambda i: make_checkout(root, i), range(n)))
    say(f"fleet: {len(checkouts)} checkouts under {root} "
        f"(made in {time.perf_counter() - t0:.1f} s)")
    listing = tmp / f"checkouts-{n}.txt"
    listing.write_text("".join(f"{d} {manifest(int(d.name[4:]))[0]}\n" for d in checkouts))
    # As an installed coord runs: its modules' bytecode compiled once (pip does it at
    # install), not again by every run as PYTHONDONTWRITEBYTECODE=1 would have it.
    env = {k: v for k, v in os.environ.items()
           if k not in ("COORD_ECOSYSTEM", "PYTHONDONTWRITEBYTECODE")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp / "cache"),
               PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    coord = [sys.executable, "-m", "coordination.cli.main"]
    catalog = root / "ecosystem.yaml"
    timed([*coord, "init", str(root), "--dry-run", "--json"], env, root)  # compiles, untimed
    loop, init, check = [], [], []
    doc: dict[str, Any] = {}
    for run in range(runs):
        loop.append(shell_loop(listing))
        for p in (catalog, root / ".ecosystem.yaml.audit.jsonl"):
            p.unlink(missing_ok=True)
        took, out = timed([*coord, "init", str(root), "--json"], env, root)
        init.append(took)
        doc = json.loads(out)
        took, _ = timed([*coord, "-f", str(catalog), "init", "--check", "--json"], env, root)
        check.append(took)
        say(f"  run {run + 1}: shell loop {loop[-1]:.2f} s, coord init {init[-1]:.2f} s, "
            f"init --check {check[-1]:.2f} s")
    base, ours, drift = (statistics.median(x) for x in (loop, init, check))
    result = {
        "repos": len(checkouts), "dependencies": len(doc.get("dependencies_added") or []),
        "shell_loop_s": round(base, 3), "coord_init_s": round(ours, 3),
        "coord_init_check_s": round(drift, 3), "ratio": round(ours / base, 2),
        "check_ratio": round(drift / base, 2), "target": TARGET,
        "met": ours / base <= TARGET and drift / base <= TARGET,
    }
    say(f"{len(checkouts):,} checkouts: coord init {ours:.2f} s, init --check {drift:.2f} s; "
        f"shell loop {base:.2f} s; ratios {ours / base:.2f}x and {drift / base:.2f}x "
        f"(target <= {TARGET}x: {'met' if result['met'] else 'NOT met'}); "
        f"{result['dependencies']} dependencies inferred")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", default="200,1000",
                    help="Fleet sizes, comma-separated (default 200,1000).")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="Build the fleets here and keep them.")
    ap.add_argument("--json", action="store_true", help="Print only the final JSON line.")
    args = ap.parse_args()
    sizes = [int(x) for x in args.repos.split(",") if x.strip()]
    say = (lambda *a: None) if args.json else print
    tmp = Path(tempfile.mkdtemp(prefix="coord-fleet-init-"))
    try:
        results = [one_size(tmp, n, args.runs, args.keep, say) for n in sizes]
        big = big_package_json(tmp)
        say(f"a package.json naming 80,000 dependencies read in {big:.2f} s (target < 2 s)")
        print(json.dumps({"sizes": results, "package_json_80000_s": round(big, 3)}))
        figures = []
        for r in results:
            figures.append(_report.figure(
                f"`coord init` over {r['repos']:,} checkouts, {r['dependencies']:,} "
                f"dependencies inferred (median of {args.runs})", r["coord_init_s"], "s",
                baseline=r["shell_loop_s"], baseline_name="`git rev-parse HEAD` + `cat` loop",
                target=("<=", TARGET, "x"), on="ratio"))
            figures.append(_report.figure(
                f"`coord init --check` over {r['repos']:,} checkouts (no drift)",
                r["coord_init_check_s"], "s", baseline=r["shell_loop_s"],
                baseline_name="the same loop", target=("<=", TARGET, "x"), on="ratio"))
        figures.append(_report.figure("a package.json naming 80,000 dependencies read (best of 3)",
                                      big, "s", target=("<", 2.0, "s")))
        _report.record("fleet_init", figures)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
