"""Per-call cost of workers.execute.run_command against a bare subprocess.run.

run_command adds: three pipes, a pidfd and an epoll selector, and in the
shell a double fork for the guard. This prints what that costs per todo, and
the output throughput on a large stream (which must stay far from being the
bottleneck of a chatty todo).

    .venv/bin/python bench/execute_overhead.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

from workers.execute import run_command


def per_call(fn, n: int) -> tuple[float, float]:
    """Median and mean seconds per call, after a short warm-up."""
    for _ in range(min(20, n)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), statistics.fmean(samples)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    cwd = tempfile.gettempdir()

    def plain() -> None:
        subprocess.run(["/bin/sh", "-c", "true"], check=True)

    def plain_captured() -> None:
        subprocess.run(["/bin/sh", "-c", "true"], check=True, capture_output=True)

    def ours() -> None:
        r = run_command("true", cwd=cwd, timeout=30)
        assert r.ok, r

    rows = [
        ("subprocess.run(sh -c true)", per_call(plain, n)),
        ("subprocess.run(sh -c true, capture_output)", per_call(plain_captured, n)),
        ("run_command('true')", per_call(ours, n)),
    ]
    base = rows[0][1][0]
    print(f"{n} calls each, ms per call (median / mean), ratio of medians to the first row")
    for name, (med, mean) in rows:
        print(f"  {name:45s} {med * 1e3:7.3f} / {mean * 1e3:7.3f}   x{med / base:.2f}")

    size = 1_000_000_000
    t0 = time.perf_counter()
    r = run_command(f"head -c {size} /dev/zero", cwd=cwd, timeout=120)
    dt = time.perf_counter() - t0
    assert r.ok and r.stdout_bytes == size, r
    t0 = time.perf_counter()
    subprocess.run(f"head -c {size} /dev/zero > /dev/null", shell=True, check=True)
    dt_null = time.perf_counter() - t0
    import _report  # bench/_report.py (bench/ is this script's directory)

    _report.record("execute_overhead", [
        _report.figure(f"{name}, per call (median of {n})", med * 1e3, "ms",
                       baseline=base * 1e3, baseline_name="`subprocess.run(sh -c true)`")
        for name, (med, _mean) in rows[1:]
    ] + [_report.figure("1 GB of stdout through `run_command`", dt, "s", baseline=dt_null,
                        baseline_name="into /dev/null")])
    print(
        f"  1 GB of stdout: run_command {dt:.2f}s ({size / dt / 1e6:.0f} MB/s); "
        f"same command into /dev/null {dt_null:.2f}s"
    )


if __name__ == "__main__":
    main()
