"""A change's pull request body (coordination/change/pulls/pull_body.py, #60): the change and its
evidence, every sibling in landing order, one Depends-On: line per provider (Zuul's)."""

from __future__ import annotations

import pytest

from coordination.change.model import ChangePlan, Target
from coordination.change.pulls.pull_body import Sibling, body, evidence_text, kept_edits, title

pytestmark = pytest.mark.timeout(30)


def _cp() -> ChangePlan:
    targets = {r: Target(r, f"/co/{r}", "main", "origin") for r in ("libz", "core", "api")}
    return ChangePlan("PLAN-004", "bump", "pr", targets, title="libz 2 everywhere",
                      providers={"libz": (), "core": ("libz",), "api": ("core", "libz")})


def test_a_body_links_siblings_in_order_and_depends_on_each_provider() -> None:
    cp = _cp()
    sib = {"libz": Sibling("libz", 3, "https://f/acme/libz/pull/3", "a" * 40),
           "core": Sibling("core", 7, "https://f/acme/core/pull/7", "b" * 40),
           "api": Sibling("api", None, None, "c" * 40)}
    text = body(cp, "api", sib, "passed")
    assert text.startswith("<!-- coord:PLAN-004 -->\n")
    assert "| 1 | libz | [#3](https://f/acme/libz/pull/3) | `aaaaaaaaaaaa` |" in text
    assert "| 3 | api (this one) | not opened yet |" in text
    deps = [ln for ln in text.splitlines() if ln.startswith("Depends-On:")]
    assert deps == ["Depends-On: https://f/acme/core/pull/7",
                    "Depends-On: https://f/acme/libz/pull/3"]
    assert "Depends-On" not in body(cp, "libz", sib, "passed")
    assert title(cp) == "libz 2 everywhere [PLAN-004]"


def test_the_evidence_says_passed_failed_or_not_yet() -> None:
    heads = {"libz": "a" * 40, "api": "b" * 40}
    assert evidence_text({"TODO-1": "passed"}, heads).startswith(
        "passed on exactly these heads (libz `aaaaaaaaaaaa`, api `bbbbbbbbbbbb`)")
    assert evidence_text({"TODO-1": "failed", "TODO-2": "passed"}, heads, "exit 3") == (
        "failed on these heads: TODO-1 (exit 3)")
    assert evidence_text({"TODO-1": "missing"}, heads).startswith("not verified")
    assert evidence_text({}, heads) == "the plan has no verify todo"


def test_a_persons_words_around_coords_section_are_kept_and_coords_rewritten() -> None:
    cp = _cp()
    sib = {"libz": Sibling("libz", 3, "https://f/acme/libz/pull/3", "a" * 40)}
    old, new = body(cp, "libz", sib, "not yet"), body(cp, "libz", sib, "passed")
    assert new.rstrip("\n").endswith("<!-- /coord:PLAN-004 -->")
    person = "Reviewers: look at the API first.\r\n\r\n" + old + "\nCloses #12 (after it)."
    kept = kept_edits(person, new, "PLAN-004")
    assert kept == ("Reviewers: look at the API first.\n\n" + new + "\nCloses #12 (after it).")
    assert "not yet" not in kept and "passed" in kept
    assert kept_edits(kept, new, "PLAN-004") == kept  # written once: the same next time
    # Ours alone stays ours alone.
    assert kept_edits(old, new, "PLAN-004") == new
    assert kept_edits("", new, "PLAN-004") == kept_edits(None, new, "PLAN-004") == new
    # A body written before 0.7 (no end marker): coord's from its marker on.
    legacy = "Intro.\n\n" + old.replace("<!-- /coord:PLAN-004 -->\n", "")
    assert kept_edits(legacy, new, "PLAN-004") == "Intro.\n\n" + new
    # A person replaced the whole body: their text stays, coord's section after it.
    assert kept_edits("We did this by hand.", new, "PLAN-004") == (
        "We did this by hand.\n\n" + new)
    # Another plan's section is a person's text for this one.
    other = body(ChangePlan("PLAN-009", "x", "pr", {}, title="t"), "libz", {}, "e")
    assert kept_edits(other, new, "PLAN-004") == other.rstrip("\n") + "\n\n" + new
