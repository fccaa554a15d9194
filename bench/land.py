"""Landing a cross-repo change (#25): the landing window, and worktree reuse.

1. **Landing window**: a change over 10 repos with local bare remotes, landed
   ``--runs`` times (a new candidate on every repo each time); the window is the
   first push to the last, as the remotes' post-receive hooks timed them. Baseline,
   same run: the same 10 pushes as a bare shell loop of ``git push`` (no lease, no
   manifest, no checks). Target: p95 <= 5 s.
2. **Worktree reuse**: ``coord plan sweep`` of a 6-repo change with 4 todos per repo
   (3 edit + commit, 1 verify), embedded; counts the worktrees each repo has after it
   (the user's checkout plus one) and compares the sweep's time per todo with a fresh
   ``git clone`` per todo (what hand-written todos do).

    .venv/bin/python bench/land.py [--runs 30] [--json]

Needs git; Redis is the embedded server beside a temporary catalog (stopped when
the bench's runtime lets it go, else by its idle watchdog).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.change_repos import World, catalog_yaml, git, make_repos  # noqa: E402



def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.95 * len(xs))) - 1)]


def window(root: Path) -> float:
    times = [float(x) for x in (root / "times.log").read_text().split()]
    (root / "times.log").write_text("")
    return max(times) - min(times)


def new_candidates(w: World, n: int) -> None:
    """A new candidate per repo on its remote's main (one fast-import each), verified."""
    from coordination.runtime.changes import RepoRecord

    cands = {}
    for repo in w.names:
        rec = w.rt.changes.read(w.cp.plan).repos[repo]
        base = w.repos.remote_head(repo)
        git(rec.worktree, "fetch", "-q", "origin", "main")
        body, msg = f"bench {n}\n", f"bench {n}\n"
        git(rec.worktree, "fast-import", "--quiet", "--force", input=(
            f"commit refs/heads/{w.cp.branch}\ncommitter b <b@b> {1_700_000_000 + n} +0000\n"
            f"data {len(msg)}\n{msg}from {base}\nM 100644 inline bench.txt\n"
            f"data {len(body)}\n{body}\n"))
        cands[repo] = git(rec.worktree, "rev-parse", "HEAD")
        w.rt.changes.set_repo(w.cp.plan, repo, RepoRecord("main", "origin", base, cands[repo],
                                                          rec.worktree))
    # as `coord todo run` records it: the sweep it ran in noted on the plan's pointer,
    # the record bound to that run (the landing rule refuses one it cannot place)
    sweep = f"{w.verify_todo}-bench-{n}"
    w.rt.changes.note_sweep(w.cp.plan, sweep, 0, [w.verify_todo], last=False)
    w.rt.changes.record_verify(w.cp.plan, w.verify_todo, w.names[-1], cands, sweep=sweep,
                               run=0)


def landing_window(tmp: Path, runs: int) -> dict[str, object]:
    names = [f"r{i:02d}" for i in range(10)]
    w = World(tmp / "land", names)
    for n in names:
        hook = w.repos.remote(n) / "hooks" / "post-receive"
        hook.write_text(hook.read_text() + f'date +%s.%N >> {w.root / "times.log"}\n')
    w.draft()
    coord, whole = [], []
    for i in range(runs):
        new_candidates(w, i)
        t0 = time.perf_counter()
        out = w.lander().land()
        whole.append(time.perf_counter() - t0)
        assert out.state == "landed", out
        coord.append(window(w.root))
    # baseline: the same pushes by hand, one after the other
    base = []
    for i in range(runs):
        new_candidates(w, runs + i)
        script = "; ".join(
            f"git -C {w.rt.changes.read(w.cp.plan).repos[n].worktree} push -q origin "
            f"{w.cp.branch}:main" for n in names)
        subprocess.run(["sh", "-c", script], check=True)
        base.append(window(w.root))
    if w.rt.url:  # let the temp catalog's embedded server go before its directory does
        from coordination.connection.embedded_server import release

        release(w.rt.url)
    return {"repos": 10, "runs": runs,
            "window_p50_s": round(statistics.median(coord), 3), "window_p95_s": round(p95(coord), 3),
            "landing_p50_s": round(statistics.median(whole), 3),
            "landing_p95_s": round(p95(whole), 3),
            "baseline_window_p50_s": round(statistics.median(base), 3),
            "ratio_p50": round(statistics.median(coord) / statistics.median(base), 2),
            "target_p95_le_5s": p95(coord) <= 5.0}


def worktree_reuse(tmp: Path) -> dict[str, object]:
    names = [f"s{i}" for i in range(6)]
    root = tmp / "reuse"
    repos = make_repos(root, names)
    lines = catalog_yaml(names, edit_run="echo $COORD_TODO_ID >> edits.txt").splitlines()
    # two more edit+commit todos per repo, and a verify todo in every repo
    extra, tid = [], 200
    for n in names:
        for _ in range(2):
            tid += 1
            extra.append(f"    - {{id: TODO-{tid}, task: more {n}, repo: {n}, plan: PLAN-001, "
                         f"run: \"echo $COORD_TODO_ID >> edits.txt\", commit: \"more {n}\"}}")
        tid += 1
        extra.append(f"    - {{id: TODO-{tid}, task: verify {n}, repo: {n}, plan: PLAN-001, "
                     "verify: true, run: 'test -n \"$COORD_CANDIDATE_S0_SHA\"'}")
    at = lines.index("  dependencies:")
    text = "\n".join(lines[:at] + extra + lines[at:]) + "\n"
    (root / "ecosystem.yaml").write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("COORD_REDIS_URL", None)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                    str(root / "ecosystem.yaml"), "plan", "sweep", "PLAN-001", "--wait", "--json"],
                   check=True, env=env, capture_output=True, cwd=root)
    sweep_s = time.perf_counter() - t0
    todos = text.count("plan: PLAN-001")
    per_repo = {n: len(git(repos.checkout(n), "worktree", "list", "--porcelain")
                       .split("worktree ")) - 1 for n in names}
    commits = {n: int(git(repos.checkout(n), "rev-list", "--count", "chg")) - 1 for n in names}
    # baseline: a fresh clone per todo
    t0 = time.perf_counter()
    for i in range(todos):
        git(root, "clone", "-q", str(repos.remote(names[i % 6])), str(root / f"clone{i}"))
    clone_s = time.perf_counter() - t0
    return {"repos": 6, "todos": todos, "worktrees_per_repo": per_repo,
            "commits_on_branch": commits,
            "one_worktree_per_repo": all(v == 2 for v in per_repo.values()),
            "sweep_s": round(sweep_s, 2), "sweep_s_per_todo": round(sweep_s / todos, 3),
            "clone_per_todo_s": round(clone_s / todos, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.pop("COORD_REDIS_URL", None)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = {"landing": landing_window(tmp, args.runs), "reuse": worktree_reuse(tmp)}
    if not args.json:
        lw, ru = out["landing"], out["reuse"]
        print(f"landing window, 10 repos, {lw['runs']} runs: p50 {lw['window_p50_s']} s, "
              f"p95 {lw['window_p95_s']} s (target p95 <= 5 s: "
              f"{'met' if lw['target_p95_le_5s'] else 'NOT met'}); whole landing p50 "
              f"{lw['landing_p50_s']} s, p95 {lw['landing_p95_s']} s; bare git push loop p50 "
              f"{lw['baseline_window_p50_s']} s (x{lw['ratio_p50']})")
        print(f"6-repo change, {ru['todos']} todos: worktrees per repo {ru['worktrees_per_repo']} "
              f"(checkout + 1 each: {ru['one_worktree_per_repo']}); commits on the branch "
              f"{ru['commits_on_branch']}; the whole sweep (CLI start and embedded server "
              f"included) {ru['sweep_s']} s; a clone per todo would add "
              f"{ru['clone_per_todo_s']} s each ({ru['clone_per_todo_s'] * ru['todos']:.1f} s "
              "for these local repos, far more for real remotes)")
    print(json.dumps(out))
    import _report  # bench/_report.py; here, not at the top: land_vs.py imports this module

    lw, ru = out["landing"], out["reuse"]
    _report.record("land", [
        _report.figure(f"Landing window of a 10-repo change, p95 of {lw['runs']}",
                       lw["window_p95_s"], "s", target=("<=", 5, "s")),
        _report.figure("The same, p50", lw["window_p50_s"], "s",
                       baseline=lw["baseline_window_p50_s"],
                       baseline_name="a bare `git push` loop"),
        _report.figure(f"A 6-repo change's sweep, {ru['todos']} todos, per todo "
                       f"(one worktree per repo: {'yes' if ru['one_worktree_per_repo'] else 'NO'})",
                       ru["sweep_s_per_todo"], "s", baseline=ru["clone_per_todo_s"],
                       baseline_name="a `git clone` per todo"),
    ])


if __name__ == "__main__":
    main()
