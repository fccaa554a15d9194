"""`coord init` over a generated fleet of 1,000 git checkouts, against a
``git -C DIR rev-parse HEAD`` loop over the same checkouts in the same run.

Each checkout is a real ``git init`` (made once, in parallel, with ``git`` itself) with a
remote's ``origin/HEAD``, a config, and a manifest: a third each Python
(pyproject.toml), Node (package.json) and Go (go.mod), each requiring one or two
packages of earlier checkouts, so the catalog gets about 1,500 inferred dependencies.

Timed, each a whole process (start-up included), median of ``--runs``:

- baseline: ``for d in checkouts: git -C d rev-parse HEAD`` (one process per checkout,
  the least any tool that asks git about each checkout pays);
- coord: ``coord init ROOT --json`` writing a fresh catalog (discovery, manifests,
  inference, the catalog written as one audited edit), the catalog removed before each
  run;
- coord check: ``coord init --check --json`` on the written catalog (no drift).

Prints both and the ratio against the issue's target (init <= 2x the loop), then one
JSON line. Not part of the test suite.

    .venv/bin/python bench/fleet_init.py [--repos 1000] [--runs 3] [--keep DIR]
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


def rev_parse_loop(checkouts: list[Path]) -> float:
    t0 = time.perf_counter()
    for d in checkouts:
        subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], check=True,
                       capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="Build the fleet here and keep it.")
    ap.add_argument("--json", action="store_true", help="Print only the final JSON line.")
    args = ap.parse_args()
    say = (lambda *a: None) if args.json else print
    tmp = Path(tempfile.mkdtemp(prefix="coord-fleet-init-"))
    root = args.keep or tmp / "fleet"
    try:
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            checkouts = sorted(pool.map(lambda i: make_checkout(root, i), range(args.repos)))
        say(f"fleet: {len(checkouts)} checkouts under {root} "
            f"(made in {time.perf_counter() - t0:.1f} s)")
        env = {k: v for k, v in os.environ.items() if k != "COORD_ECOSYSTEM"}
        env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp / "cache"))
        coord = [sys.executable, "-m", "coordination.cli.main"]
        catalog = root / "ecosystem.yaml"
        loop, init, check = [], [], []
        doc: dict[str, Any] = {}
        for run in range(args.runs):
            loop.append(rev_parse_loop(checkouts))
            for p in (catalog, root / ".ecosystem.yaml.audit.jsonl"):
                p.unlink(missing_ok=True)
            took, out = timed([*coord, "init", str(root), "--json"], env, root)
            init.append(took)
            doc = json.loads(out)
            took, _ = timed([*coord, "-f", str(catalog), "init", "--check", "--json"], env, root)
            check.append(took)
            say(f"run {run + 1}: rev-parse loop {loop[-1]:.2f} s, coord init {init[-1]:.2f} s, "
                f"init --check {check[-1]:.2f} s")
        base, ours, drift = (statistics.median(x) for x in (loop, init, check))
        ratio = ours / base
        result = {
            "repos": len(checkouts), "dependencies": len(doc.get("dependencies_added") or []),
            "rev_parse_loop_s": round(base, 3), "coord_init_s": round(ours, 3),
            "coord_init_check_s": round(drift, 3), "ratio": round(ratio, 2),
            "check_ratio": round(drift / base, 2), "target": TARGET, "met": ratio <= TARGET,
        }
        say(f"coord init over {len(checkouts)} checkouts: {ours:.2f} s; "
            f"`git rev-parse HEAD` loop: {base:.2f} s; ratio {ratio:.2f}x "
            f"(target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}); "
            f"init --check {drift:.2f} s ({drift / base:.2f}x); "
            f"{result['dependencies']} dependencies inferred")
        print(json.dumps(result))
        _report.record("fleet_init", [
            _report.figure(f"`coord init` over {len(checkouts):,} checkouts, "
                           f"{result['dependencies']:,} dependencies inferred "
                           f"(median of {args.runs})", ours, "s", baseline=base,
                           baseline_name="`git rev-parse HEAD` loop",
                           target=("<=", TARGET, "x"), on="ratio"),
            _report.figure("`coord init --check` on the catalog it wrote (no drift)", drift, "s",
                           baseline=base, baseline_name="the same loop"),
        ])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
