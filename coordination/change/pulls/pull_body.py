"""What a change's pull request says (pure: no forge, no git): its title, and a body that
names the change and its verify evidence, links the sibling pull requests and carries
one ``Depends-On: <provider's pull request URL>`` line per provider (Zuul's
convention), so a reviewer on one repo sees the whole change and what must merge first.

A revert pull request's body names what it takes back out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coordination.change.blockers import short
from coordination.change.model import ChangePlan

#: The markers around coord's section of a body: what lies between them is coord's to
#: rewrite; what a person wrote before or after them is kept (:func:`kept_edits`).
MARKER = "<!-- coord:{plan} -->"
END_MARKER = "<!-- /coord:{plan} -->"


@dataclass(frozen=True)
class Sibling:
    """A repo's pull request as a body links it (None url: not opened yet)."""

    repo: str
    number: int | None
    url: str | None
    head: str | None


def title(cp: ChangePlan) -> str:
    return f"{cp.title or cp.branch} [{cp.plan}]"


def body(cp: ChangePlan, repo: str, siblings: Mapping[str, Sibling], evidence: str) -> str:
    """The body of ``repo``'s pull request: the change, ``evidence`` (what its verify
    todos said on these heads), every repo's pull request in landing order, and a
    ``Depends-On:`` line per provider whose pull request is open."""
    lines = [MARKER.format(plan=cp.plan),
             f"**{cp.plan}**: {cp.title or cp.branch} (branch `{cp.branch}`)", "",
             f"This pull request is one of {len(siblings)} that coord lands together, "
             "providers first, each merged only on the head coord verified "
             "(`coord change land " + cp.plan + "`).", "",
             f"**Verification**: {evidence}", "",
             "| | repo | pull request | head |", "|---|---|---|---|"]
    for i, (name, s) in enumerate(siblings.items()):
        here = " (this one)" if name == repo else ""
        link = f"[#{s.number}]({s.url})" if s.url and s.number else "not opened yet"
        lines.append(f"| {i + 1} | {name}{here} | {link} | `{short(s.head)}` |")
    deps = [siblings[p].url for p in cp.providers.get(repo, ()) if p in siblings
            and siblings[p].url]
    if deps:
        lines.append("")
        lines += [f"Depends-On: {url}" for url in deps]
    lines.append(END_MARKER.format(plan=cp.plan))
    return "\n".join(lines) + "\n"


def kept_edits(current: str | None, ours: str, plan: str) -> str:
    """The body to write when the pull request's body is ``current`` and coord's section
    should read ``ours`` (its markers included): coord's section replaced, what a person
    wrote outside it kept. Before coord's first marker and after its end marker is the
    person's; a body with the first marker and no end (one written before 0.7) is coord's
    from that marker on; one with no marker at all (a person replaced it) keeps its text,
    with coord's section after it."""
    text = (current or "").replace("\r\n", "\n")
    start, end = MARKER.format(plan=plan), END_MARKER.format(plan=plan)
    at = text.find(start)
    if at < 0:
        before, after = text.rstrip("\n"), ""
    else:
        before = text[:at].rstrip("\n")
        stop = text.find(end, at)
        after = text[stop + len(end):].lstrip("\n") if stop >= 0 else ""
    return ((before + "\n\n") if before else "") + ours + (("\n" + after) if after else "")


def evidence_text(verdicts: Mapping[str, str], heads: Mapping[str, str | None],
                  why: str | None = None) -> str:
    """One line of what the verify todos said on ``heads`` (todo -> its verdict)."""
    if not verdicts:
        return "the plan has no verify todo"
    passed = sorted(t for t, v in verdicts.items() if v == "passed")
    on = ", ".join(f"{r} `{short(h)}`" for r, h in heads.items() if h)
    if len(passed) == len(verdicts):
        return f"passed on exactly these heads ({on}): {', '.join(passed)}"
    failed = sorted(t for t, v in verdicts.items() if v in ("failed", "refused"))
    if failed:
        return f"failed on these heads: {', '.join(failed)}" + (f" ({why})" if why else "")
    return ("not verified on these heads yet (" + ", ".join(
        f"{t}: {v}" for t, v in sorted(verdicts.items())) + ")")


def revert_body(cp: ChangePlan, repo: str, number: int | None, url: str | None,
                landed: str, revert: str) -> str:
    """The body of the pull request taking ``repo``'s part of the change back out."""
    what = f"[#{number}]({url})" if number and url else "its pull request"
    return "\n".join([
        MARKER.format(plan=cp.plan),
        f"Reverts {what} of **{cp.plan}** ({cp.title or cp.branch}), merged as "
        f"`{short(landed)}`: `coord change revert {cp.plan}` takes the change back out of "
        "every repo, consumers first.", "",
        f"Revert commit: `{short(revert)}`.", END_MARKER.format(plan=cp.plan)]) + "\n"
