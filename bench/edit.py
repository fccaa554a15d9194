"""Time one edit of a 10,000-todo, 10-repo catalog: the whole `coord` process.

`coord todo create` (appends a todo, and `blocking` on its blocker),
`coord todo complete` (changes one todo), and the edits of issue #24 (`plan create`,
`milestone add`, `dep add`, `repo add`, `todo delete`, `dep remove`, and the cascades
`plan delete --force`, `repo remove --force`), each with the splice path (the default)
and with the full ruamel round trip forced (COORD_EDIT_SPLICE=0), the baseline.
Before every run the catalog is put back to the same bytes, whose validated
catalog is in the (private, warm) cache, as after any earlier command. Wall time
is measured around the child process; peak RSS is the child's own (wait4).
Both paths must leave the same bytes; the script says whether they did.

    .venv/bin/python bench/edit.py [--todos N] [--runs 3] [--slow-runs 1] [--only "todo delete,repo add"]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from catalog_load import generate  # noqa: E402


def coord_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("coord")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "coordination.cli"]


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    rss = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return wall, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--todos", type=int, default=10_000)
    ap.add_argument("--repos", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="runs of each fast edit (median)")
    ap.add_argument("--slow-runs", type=int, default=1, help="runs of each forced round trip")
    ap.add_argument("--only", help="comma-separated edit names (default: all of them)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.yaml"
        path = Path(tmp) / "ecosystem.yaml"
        base.write_text(generate(args.todos, repos=args.repos))
        shutil.copyfile(base, path)
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        env.pop("COORD_ECOSYSTEM", None)
        coord = [*coord_cmd(), "--file", str(path)]
        run_once([*coord, "todo", "show", "TODO-00001"], env)  # warm cache
        edits = {
            "todo create": ["todo", "create", "--task", "bench", "--repo", "repo1",
                            "--blocked-by", "TODO-00002", "--estimate", "1"],
            "todo complete": ["todo", "complete", "TODO-00003", "--hours", "2"],
            # 0.3 (issue #24): the structure edits, and deletes (spliced since).
            "plan create": ["plan", "create", "--title", "bench", "--repos", "repo1"],
            "milestone add": ["milestone", "add", "PLAN-002", "--title", "m",
                              "--todos", "TODO-00050"],
            "dep add": ["dep", "add", "--consumer", "repo1", "--provider", "repo3",
                        "--check", "true"],
            "repo add": ["repo", "add", "newrepo", "--tag", "x"],
            "todo delete": ["todo", "delete", "TODO-00200", "--force"],
            "dep remove": ["dep", "remove", "DEP-050"],
            # Cascades: 200 todos leave the plan; 1,000 todos and 20 dependencies go.
            "plan delete": ["plan", "delete", "PLAN-050", "--force"],
            "repo remove": ["repo", "remove", "repo9", "--force"],
        }
        if args.only:
            wanted = [e.strip() for e in args.only.split(",")]
            unknown = [e for e in wanted if e not in edits]
            if unknown:
                raise SystemExit(f"unknown edit(s) {unknown}; choose from {list(edits)}")
            edits = {k: v for k, v in edits.items() if k in wanted}
        size = base.stat().st_size / 1e6
        print(f"catalog: {args.todos} todos, {args.repos} repos, {size:.2f} MB; "
              "whole process, warm cache")
        print(f"{'edit':15}{'path':12}{'median s':>10}{'min s':>8}{'peak MB':>9}{'slow/fast':>11}")
        rows = []
        for name, argv in edits.items():
            results, outputs = {}, {}
            for mode, flag, runs in (("splice", "1", args.runs),
                                     ("round trip", "0", args.slow_runs)):
                walls, peaks = [], []
                for _ in range(runs):
                    shutil.copyfile(base, path)
                    # A fresh audit log too: new ids go above the ones it has seen.
                    path.with_name(f".{path.name}.coord.audit.jsonl").unlink(missing_ok=True)
                    wall, rss = run_once([*coord, *argv], {**env, "COORD_EDIT_SPLICE": flag})
                    walls.append(wall)
                    peaks.append(rss)
                outputs[mode] = path.read_bytes()
                results[mode] = (statistics.median(walls), min(walls), max(peaks))
            ratio = results["round trip"][0] / results["splice"][0]
            for mode, (med, best, peak) in results.items():
                extra = f"{ratio:10.1f}x" if mode == "splice" else ""
                print(f"{name:15}{mode:12}{med:10.2f}{best:8.2f}{peak:9.0f}{extra:>11}")
            same = outputs["splice"] == outputs["round trip"]
            print(f"{'':15}same bytes from both paths: {'yes' if same else 'NO'}")
            (fast, _, fast_peak), (slow, _, slow_peak) = results["splice"], results["round trip"]
            rows.append(_report.figure(
                f"`{name}`, whole process (median of {args.runs}; {fast_peak:.0f} MB peak, "
                f"round trip {slow_peak:.0f} MB){'' if same else ': NOT the same bytes'}",
                fast, "s", baseline=slow, baseline_name="full ruamel round trip"))
        _report.record("edit", rows, notes=f"a {args.todos:,}-todo, {args.repos}-repo catalog "
                       f"of {size:.1f} MB")


if __name__ == "__main__":
    main()
