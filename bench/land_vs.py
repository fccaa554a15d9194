"""The landing window with signed evidence against an earlier coord's, in the same run (#38).

0.4 lands only on evidence it can check: sealed verify records, the landing rule
(verify todos on exactly the candidate set, gates, the last run), hooks off, the
lander's identity. This bench asks what that costs where users feel it: the window
between a change's first push and its last, for 10 repos with local bare remotes.

Each side runs :func:`land.landing_window` (``bench/land.py``: a new candidate on
every repo, verified, landed; the window timed by the remotes' post-receive hooks)
in its own process, with its own tree first on ``PYTHONPATH`` and the same
``COORD_SIGNING_KEY``: this tree, and ``--vs REV`` (default the last 0.3 commit of
main) exported from git into a temporary directory. Rounds alternate the two
sides so a machine that slows down slows both. Target: window ratio <= 1.2x.

    .venv/bin/python bench/land_vs.py [--vs REV] [--rounds 3] [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)

#: The last commit of main before the 0.4 landing work (coord 0.3 as shipped).
V03 = "d189757"

CHILD = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, {bench!r})
import land
with tempfile.TemporaryDirectory() as d:
    print(json.dumps(land.landing_window(Path(d), {runs})))
"""


def export(rev: str, into: Path) -> Path:
    """``rev``'s tree of this repository, written out under ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def side(tree: Path, runs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(PYTHONPATH=str(tree), COORD_SIGNING_KEY="bench-signing-key-" + "k" * 24)
    out = subprocess.run([sys.executable, "-c",
                          CHILD.format(bench=str(tree / "bench"), runs=runs)],
                         check=True, capture_output=True, text=True, env=env, cwd=tree)
    doc: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vs", default=V03, help="the earlier coord, a git revision")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10, help="landings per side and round")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        old = export(args.vs, Path(d) / "old")
        rows: list[dict[str, object]] = []
        for i in range(args.rounds):
            then = side(old, args.runs)
            now = side(ROOT, args.runs)
            rows.append({"round": i + 1, "vs": then, "this": now,
                         "window_ratio": round(now["window_p50_s"] / then["window_p50_s"], 2),
                         "landing_ratio": round(now["landing_p50_s"] / then["landing_p50_s"],
                                                2)})
            if not args.json:
                print(f"round {i + 1}: window p50 {now['window_p50_s']} s vs "
                      f"{then['window_p50_s']} s ({rows[-1]['window_ratio']}x); whole landing "
                      f"p50 {now['landing_p50_s']} s vs {then['landing_p50_s']} s "
                      f"({rows[-1]['landing_ratio']}x)", flush=True)
    ratios = [float(r["window_ratio"]) for r in rows]  # type: ignore[arg-type]
    whole = [float(r["landing_ratio"]) for r in rows]  # type: ignore[arg-type]
    out = {"vs": args.vs, "repos": 10, "rounds": rows,
           "window_ratio_median": round(statistics.median(ratios), 2),
           "landing_ratio_median": round(statistics.median(whole), 2),
           "target_window_le_1_2x": statistics.median(ratios) <= 1.2}
    if not args.json:
        print(f"landing window, 10 repos, signed evidence: {out['window_ratio_median']}x "
              f"{args.vs}'s (target <= 1.2x: "
              f"{'met' if out['target_window_le_1_2x'] else 'NOT met'}); whole landing "
              f"{out['landing_ratio_median']}x")
    print(json.dumps(out))
    this: dict[str, float] = rows[-1]["this"]  # type: ignore[assignment]
    vs: dict[str, float] = rows[-1]["vs"]  # type: ignore[assignment]
    # The page's table (bench/_report.py): the verdict on the median of the rounds,
    # then each round's window as measured (the two sides alternating).
    each = []
    for r in rows:
        now_r: dict[str, float] = r["this"]  # type: ignore[assignment]
        then_r: dict[str, float] = r["vs"]  # type: ignore[assignment]
        each.append(_report.figure(
            f"Round {r['round']}: landing window p50 (whole landing {now_r['landing_p50_s']:g} "
            f"vs {then_r['landing_p50_s']:g} s)", now_r["window_p50_s"], "s",
            baseline=then_r["window_p50_s"], baseline_name="0.3",
            ratio=float(r["window_ratio"])))  # type: ignore[arg-type]
    _report.record("land_vs", [
        _report.figure(f"Landing window of a 10-repo change, signed evidence (p50 of "
                       f"{args.runs}, last round; ratio: median of {args.rounds} rounds)",
                       this["window_p50_s"], "s", baseline=vs["window_p50_s"],
                       baseline_name=f"coord at {args.vs} (0.3)",
                       ratio=out["window_ratio_median"], target=("<=", 1.2, "x"), on="ratio"),
        _report.figure("The whole landing (p50, last round; ratio: median of the rounds)",
                       this["landing_p50_s"], "s", baseline=vs["landing_p50_s"],
                       baseline_name=f"coord at {args.vs}",
                       ratio=out["landing_ratio_median"]),
        *each,
    ], notes=f"{args.rounds} rounds of {args.runs} landings each side, alternating, both "
             "with COORD_SIGNING_KEY")


if __name__ == "__main__":
    main()
