"""Sealed evidence: a record verifies only as the kind, about and body it was sealed with."""

from __future__ import annotations

import pytest

from coordination.trust import evidence as ev
from coordination.trust.signing import Policy

KEY = "k" * 32
ABOUT = {"plan": "PLAN-004", "todo": "TODO-041", "shas": {"api": "a" * 40}}
BODY = {"ok": True, "exit_code": 0, "at": 1.5}
pytestmark = pytest.mark.timeout(10)


def test_a_sealed_record_verifies_where_it_was_sealed() -> None:
    rec = ev.seal("verify", ABOUT, BODY, (KEY,))
    assert rec["sig"].startswith("v1:") and rec["kid"]
    assert ev.refusal("verify", ABOUT, rec, Policy((KEY,)), "verify record") is None


@pytest.mark.parametrize("change", ["body", "about", "kind", "key"])
def test_any_change_to_a_sealed_record_is_refused_naming_it(change: str) -> None:
    rec = ev.seal("verify", ABOUT, BODY, (KEY,))
    kind, about, keys = "verify", dict(ABOUT), (KEY,)
    if change == "body":
        rec["ok"] = False
    elif change == "about":
        about["shas"] = {"api": "b" * 40}
    elif change == "kind":
        kind = "vote"
    else:
        keys = ("other" * 8,)
    why = ev.refusal(kind, about, rec, Policy(keys), "verify record of TODO-041")
    assert why is not None and why.startswith("verify record of TODO-041:")


def test_unsigned_records_fail_closed_with_a_key_or_when_required() -> None:
    plain = ev.seal("cache", ABOUT, BODY, ())
    assert "sig" not in plain
    assert "unsigned" in (ev.refusal("cache", ABOUT, plain, Policy((KEY,)), "c") or "")
    assert "COORD_REQUIRE_SIGNED" in (ev.refusal("cache", ABOUT, plain,
                                                 Policy((), require_signed=True), "c") or "")
    assert ev.refusal("cache", ABOUT, plain, Policy(), "c") is None


def test_a_sealed_record_without_a_key_needs_accept_unsigned() -> None:
    rec = ev.seal("outputs", ABOUT, BODY, (KEY,))
    assert "no key" in (ev.refusal("outputs", ABOUT, rec, Policy(), "o") or "")
    assert ev.refusal("outputs", ABOUT, rec, Policy(accept_unsigned=True), "o") is None


def test_the_previous_key_still_verifies() -> None:
    rec = ev.seal("vote", ABOUT, BODY, ("old" * 11,))
    assert ev.refusal("vote", ABOUT, rec, Policy((KEY, "old" * 11)), "v") is None


# -- a todo's outcome (kind outcome): status, exit code and run, about sweep and todo ----

def test_an_outcome_verifies_only_as_the_status_and_exit_code_it_was_sealed_with() -> None:
    signed = Policy((KEY,))
    cp = {"status": "failed", "exit_code": 7,
          "outcome_seal": ev.outcome_stamp((KEY,), "S", "T", 0, "failed", 7)}
    assert ev.outcome_refusal(signed, "S", "T", cp, 0) is None
    for forged, where in (({**cp, "status": "succeeded", "exit_code": 0}, ("S", "T")),
                          ({**cp, "exit_code": 0}, ("S", "T")),
                          (cp, ("S", "U")),  # copied to another todo
                          (cp, ("R", "T"))):  # ... or another sweep
        why = ev.outcome_refusal(signed, *where, forged, 0)
        assert why is not None and why.startswith(
            f"outcome record of {where[1]} in sweep {where[0]} ({forged['status']}): "
            "signature invalid"), why
    bare = {"status": "succeeded", "exit_code": 0}
    assert "unsigned" in (ev.outcome_refusal(signed, "S", "T", bare, 0) or "")
    assert "COORD_REQUIRE_SIGNED" in (ev.outcome_refusal(Policy(require_signed=True), "S", "T",
                                                         bare, 0) or "")
    assert ev.outcome_refusal(Policy(), "S", "T", bare, 0) is None  # no key, none required
    assert ev.outcome_stamp((), "S", "T", 0, "succeeded", 0) is None


def test_an_outcome_of_an_earlier_run_counts_only_where_no_later_run_ran_the_todo() -> None:
    signed = Policy((KEY,))
    cp = {"status": "succeeded", "exit_code": 0,
          "outcome_seal": ev.outcome_stamp((KEY,), "S", "T", 0, "succeeded", 0)}
    assert ev.outcome_refusal(signed, "S", "T", cp, 1, 0) is None  # kept by run 1
    why = ev.outcome_refusal(signed, "S", "T", cp, 1, 1)
    assert why is not None and "sealed in run 0, but run 1 ran T again" in why, why
    # run 1 ran it again, run 2 did not: still run 1's outcome it must be
    why = ev.outcome_refusal(signed, "S", "T", cp, 2, 1)
    assert why is not None and "sealed in run 0, but run 1 ran T again" in why, why
    later = {**cp, "outcome_seal": ev.outcome_stamp((KEY,), "S", "T", 2, "succeeded", 0)}
    assert "sweep is at run 1" in (ev.outcome_refusal(signed, "S", "T", later, 1) or "")


def test_the_last_run_that_dispatched_a_todo_is_read_from_the_spec() -> None:
    """This run's levels, else the map the spec keeps from run to run, else run 0; a
    spec of before the map (levels only) takes a todo this run did not run as of any."""
    now = ev.dispatched_now([["A"], ["B"]])
    assert now == {"A", "B"} and ev.dispatched_now(None) == set()
    assert ev.last_dispatch("A", 3, now, {"A": 1, "C": 2}) == 3
    assert ev.last_dispatch("C", 3, now, {"A": 1, "C": 2}) == 2
    assert ev.last_dispatch("D", 3, now, {"A": 1, "C": 2}) == 0
    assert ev.last_dispatch("C", 3, now, None) == 0
    assert ev.last_dispatch("C", 3, now, {"C": 9}) == 3  # (never past the run itself)
    assert ev.last_dispatch("C", 3, now, {"C": "x"}) == 3  # unreadable: the strictest
