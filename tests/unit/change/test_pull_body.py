"""A change's pull request body (coordination/change/pulls/pull_body.py, #60): the change and its
evidence, every sibling in landing order, one Depends-On: line per provider (Zuul's)."""

from __future__ import annotations

import pytest

from coordination.change.model import ChangePlan, Target
from coordination.change.pulls.pull_body import Sibling, body, evidence_text, title

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
