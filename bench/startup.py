"""Start-up of the commands typed all day, as whole processes, against importing click.

`coord --help` and `coord --file ecosystem.yaml todo list` are timed from the child's
start to its exit (interpreter, imports, catalog read, output to a pipe), interleaved
with the baseline `python -c "import click"` measured in the same run: A B A B ... so a
drift in the machine's speed moves both. The ratio is taken pair by pair and its median
printed; wall and CPU (user + system of the child) both, CPU being the steadier figure
on a shared machine. One warm-up run of each is not counted (it also warms the
catalog's validated cache, as every read after an edit finds it).

    .venv/bin/python bench/startup.py [--runs 15] [--file ecosystem.yaml] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float


def run_once(argv: list[str]) -> Sample:
    """One whole process: wall clock around it, and its own user + system time."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{out.decode()[-2000:]}")
    return Sample(wall, usage.ru_utime + usage.ru_stime)


def coord_argv() -> list[str]:
    """The installed `coord` script beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "coord"
    if script.exists():
        return [str(script)]
    found = shutil.which("coord")
    return [found] if found else [sys.executable, "-m", "coordination.cli.main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="timed pairs per command")
    ap.add_argument("--file", default="ecosystem.yaml", help="catalog for `todo list`")
    ap.add_argument("--json", action="store_true", help="print only one JSON line")
    args = ap.parse_args()

    env_note = {k: v for k, v in os.environ.items() if k.startswith("COORD_")}
    coord = coord_argv()
    baseline = [sys.executable, "-c", "import click"]
    cases = {
        "coord --help": [*coord, "--help"],
        f"coord --file {args.file} todo list": [*coord, "--file", args.file, "todo", "list"],
    }
    report: dict[str, object] = {"baseline": " ".join(baseline[1:]), "runs": args.runs,
                                 "coord": " ".join(coord), "cases": {}}
    cases_out: dict[str, object] = {}
    for name, argv in cases.items():
        run_once(argv), run_once(baseline)  # warm-up: page cache, validated catalog cache
        a: list[Sample] = []
        b: list[Sample] = []
        for _ in range(args.runs):
            a.append(run_once(argv))
            b.append(run_once(baseline))
        wall_ratio = statistics.median(x.wall / y.wall for x, y in zip(a, b))
        cpu_ratio = statistics.median(x.cpu / y.cpu for x, y in zip(a, b) if y.cpu > 0)
        cases_out[name] = {
            "wall_s": statistics.median(x.wall for x in a),
            "cpu_s": statistics.median(x.cpu for x in a),
            "baseline_wall_s": statistics.median(y.wall for y in b),
            "baseline_cpu_s": statistics.median(y.cpu for y in b),
            "wall_ratio": wall_ratio, "cpu_ratio": cpu_ratio,
        }
        if not args.json:
            c = cases_out[name]
            assert isinstance(c, dict)
            print(f"{name:45} wall {c['wall_s']:.3f}s cpu {c['cpu_s']:.3f}s | "
                  f"import click wall {c['baseline_wall_s']:.3f}s cpu {c['baseline_cpu_s']:.3f}s"
                  f" | ratio wall {wall_ratio:.2f}x cpu {cpu_ratio:.2f}x (median of "
                  f"{args.runs} pairs)")
    report["cases"] = cases_out
    if env_note and not args.json:
        print(f"note: COORD_ variables set: {sorted(env_note)}")
    print(json.dumps(report, separators=(",", ":")))
    figures = []
    for name, c in cases_out.items():
        assert isinstance(c, dict)
        for what in ("wall", "cpu"):
            figures.append(_report.figure(
                f"`{name}`, {what} (median of {args.runs})", c[f"{what}_s"], "s",
                baseline=c[f"baseline_{what}_s"], baseline_name="`import click`",
                ratio=c[f"{what}_ratio"]))
    _report.record("startup", figures)


if __name__ == "__main__":
    main()
