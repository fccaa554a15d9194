"""`coord change status` for a change over a thousand repos: counts by state (per wave),
then only the repos that need attention, at most SHOWN of them (--all: every repo)."""

from __future__ import annotations

from typing import Any

import pytest

from coordination.change.reading import counts, needs_attention, summary
from coordination.cli.change import SHOWN, show_status

pytestmark = pytest.mark.timeout(30)

N = 1000


def doc(state: str = "drafted") -> dict[str, Any]:
    """A status document of N repos: 900 verified, 70 drafted, 2 conflict, 28 more named
    by a repo blocker (verified otherwise); waves canary (the first 10) and rest."""
    names = [f"svc-{i:04d}" for i in range(N)]
    repos = {}
    for i, n in enumerate(names):
        st = "drafted" if 900 <= i < 970 else "conflict" if i in (970, 971) else "verified"
        repos[n] = {"repo": n, "order": i, "base": "main", "remote": "origin",
                    "base_sha": "a" * 40, "candidate": "b" * 40, "worktree": f"/w/{n}",
                    "verified_by": [], "landed": None, "reverted": None, "state": st,
                    "why": "merge conflict" if st == "conflict" else None}
    blockers = [{"kind": "repo", "id": names[i], "why": "candidate moved"}
                for i in range(972, 1000)]
    blockers.append({"kind": "verify", "id": "TODO-100", "why": "stale"})
    return {"plan": "PLAN-001", "branch": "chg", "land": "per-wave", "state": state,
            "reason": None, "order": names, "train": None, "repos": repos,
            "waves": [{"name": "canary", "repos": names[:10], "soak": 60.0},
                      {"name": "rest", "repos": names[10:], "soak": 0.0}],
            "landable": False, "blockers": blockers, "verify": {}, "gates": {}, "sweep": None}


def test_counts_and_the_repos_that_need_attention() -> None:
    d = doc()
    sm = summary(d)  # type: ignore[arg-type]
    assert sm["repos"] == N
    assert sm["states"] == {"verified": 928, "drafted": 70, "conflict": 2}
    assert list(sm["states"]) == ["verified", "drafted", "conflict"]  # a fixed order
    assert [(w["name"], w["repos"], w["states"]) for w in sm["waves"]] == [
        ("canary", 10, {"verified": 10}),
        ("rest", 990, {"verified": 918, "drafted": 70, "conflict": 2})]
    # drafted, conflict, and the repos blockers name; never the verified rest
    assert [r["order"] for r in needs_attention(d)] == list(range(900, 1000))  # type: ignore[arg-type]
    assert counts([]) == {}


def test_a_reverted_repo_needs_attention_only_when_the_landing_stopped_half_way() -> None:
    d = doc()
    d["repos"]["svc-0000"]["state"] = "reverted"
    assert "svc-0000" not in {r["repo"] for r in needs_attention(d)}  # type: ignore[arg-type]
    d["state"] = "partially_landed"
    assert "svc-0000" in {r["repo"] for r in needs_attention(d)}  # type: ignore[arg-type]


def rows(text: str) -> list[str]:
    return [ln.split()[1] for ln in text.splitlines() if ln[:1].isdigit()]


def test_the_human_view_lists_at_most_shown_repos_and_all_with_all(
        capsys: pytest.CaptureFixture[str]) -> None:
    show_status(doc())
    out = capsys.readouterr().out
    assert "repos: 1000 - verified 928, drafted 70, conflict 2" in out
    assert "wave 1 canary (10): verified 10" in out
    assert "needs attention: 100" in out
    assert rows(out) == [f"svc-{i:04d}" for i in range(900, 900 + SHOWN)]
    assert f"... and {100 - SHOWN} more (--all lists every repo, --json gives all)" in out
    assert sum(ln.startswith("  repo svc-") for ln in out.splitlines()) == 28  # every blocker
    show_status(doc(), show_all=True)
    out = capsys.readouterr().out
    assert len(rows(out)) == N and "needs attention" not in out


def test_a_verify_template_s_verdicts_are_counted_and_each_listed_with_all(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A verify template over the fleet is a verify todo per repo: the human view counts
    their verdicts (each one not passed is a blocker, listed below); --all lists each."""
    d = doc()
    d["verify"] = {f"TODO-011[svc-{i:04d}]": {"verdict": "failed" if i == 7 else "passed",
                                              "candidates": None, "why": "exit 1" if i == 7
                                              else None} for i in range(30)}
    d["gates"] = {"TODO-050": {"verdict": "waiting", "approvals": [], "why": "1 of 2"}}
    show_status(d)
    out = capsys.readouterr().out
    assert "verify: 30 todos - passed 29, failed 1" in out
    assert "verify TODO-011[" not in out
    assert "gate TODO-050: waiting - 1 of 2" in out  # a few: one a line, as before
    show_status(d, show_all=True)
    out = capsys.readouterr().out
    assert sum(ln.startswith("verify TODO-011[") for ln in out.splitlines()) == 30
    assert "verify TODO-011[svc-0007]: failed - exit 1" in out
    d["verify"] = dict(list(d["verify"].items())[:3])
    show_status(d)
    assert "verify TODO-011[svc-0001]: passed" in capsys.readouterr().out


@pytest.mark.parametrize("stored,facts,want", [
    # a landing or revert stopped half-way says so over everything else
    ("landing", dict(interrupted="interrupted", dropped=True), "interrupted"),
    ("landed", dict(interrupted="revert_interrupted"), "revert_interrupted"),
    # the train's drop stands; a drop lifted since is no headline
    (None, dict(dropped=True), "failed_verification"),
    ("failed_verification", dict(states={"verified"}), "verified"),
    ("failed_verification", dict(states={"verified"}, dropped=True), "failed_verification"),
    # a stored state is shown as stored (one this version does not know too)
    ("landed", dict(states={"conflict"}, rejected="gate G rejected"), "landed"),
    ("from_a_newer_coord", dict(), "from_a_newer_coord"),
    # else computed from the repos and gates
    (None, dict(states={"conflict", "verified"}, rejected="x"), "conflict"),
    (None, dict(states={"verified"}, rejected="gate G rejected"), "rejected"),
    (None, dict(states={"verified"}), "verified"),
    (None, dict(states={"verified", "drafted"}), "drafted"),
    (None, dict(states=set()), "drafted"),
])
def test_the_headline_is_computed_from_the_stored_state_and_the_facts(
        stored: str | None, facts: dict[str, Any], want: str) -> None:
    from coordination.change.reading import HeadlineFacts, headline
    from coordination.status import ChangeHeadline

    got = headline(stored, HeadlineFacts(facts.get("dropped", False),
                                         frozenset(facts.get("states", set())),
                                         facts.get("rejected"), facts.get("interrupted")))
    assert got == want
    if want != "from_a_newer_coord":
        assert isinstance(got, ChangeHeadline)
