"""Who should take an issue: the people of the catalog ranked, with the reasons
(`coord issue suggest`, `issue create --assignee auto`, the MCP tool beside them).

Pure: the caller hands over each person's work as :class:`Work` items (the catalog's
todos and issues with an assignee, and the items the audit log says a person completed
or closed); nothing here reads a file or Redis. A person's score is

    3 x what they completed in the issue's repos
    + 1 x the words (by stem) the issue shares with what they completed or closed
    - 1 x their open load (todos not completed, issues open or in progress, assigned)

and the ranking is by score, then more completed in the repos, then less load, then
name. Words are compared lexically, by their stems (SQLite FTS5's porter tokenizer, as
`history search`), short and common words left out: "registry timeout" shares
"registri" and "timeout" with "Raise the registry's timeout". Every part of the score
is a reason said beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from coordination.stats.relevance import stems

_WORD = re.compile(r"\w+")
#: Weights of the score's parts (see the module).
REPO_WEIGHT, WORD_WEIGHT, LOAD_WEIGHT = 3.0, 1.0, 1.0
#: Words that say nothing of the work (stems, as FTS5's porter makes them).
STOP = frozenset(
    "the and for with from into onto that this then than when what which while where who "
    "all any are was were has have had not but our its it's can could should would will "
    "use make add get set new old fix bump updat chang todo issu to of in on at by is be "
    "an or as do it".split())


@dataclass(frozen=True)
class Work:
    """One item of a person's work: a todo or an issue, its repos, its words, and
    whether it is done (a todo completed, an issue resolved or closed)."""

    person: str
    id: str
    repos: tuple[str, ...]
    text: str
    done: bool


@dataclass
class Suggestion:
    """One person, their score and its parts (``reasons``: the parts as sentences)."""

    person: str
    score: float
    completed: int  # done items in the issue's repos
    repos: list[str]  # those repos, where they completed something
    words: list[str]  # the issue's words (as it writes them) whose stems what they
    # completed or closed shares
    load: int  # open items assigned
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"person": self.person, "score": self.score, "completed_in_repos": self.completed,
                "repos": self.repos, "similar_words": self.words, "open_load": self.load,
                "reasons": self.reasons}


def _words(text: str) -> set[str]:
    return {s for s in stems(text.casefold()) if len(s) > 2 and s not in STOP
            and not s.isdigit()}


def _as_written(text: str, wanted: set[str]) -> dict[str, str]:
    """Stem -> the first word of ``text`` with that stem (what a person reads)."""
    out: dict[str, str] = {}
    for word in _WORD.findall(text.casefold()):
        for s in stems(word):
            if s in wanted and s not in out:
                out[s] = word
    return out


def rank(repos: Sequence[str], text: str, work: Iterable[Work],
         exclude: Iterable[str] = ()) -> list[Suggestion]:
    """Everyone with work in ``work`` ranked for an issue of ``repos`` whose title and
    description are ``text`` (see the module); ``exclude``: item ids not to count (the
    issue itself)."""
    skip = set(exclude)
    wanted = set(repos)
    issue_words = _words(text)
    by_person: dict[str, list[Work]] = {}
    for w in work:
        if w.person.strip() and w.id not in skip:
            by_person.setdefault(w.person, []).append(w)
    out: list[Suggestion] = []
    for person, items in by_person.items():
        done = {w.id: w for w in items if w.done}  # once per item (assigned and closed by)
        open_ids = {w.id for w in items if not w.done} - set(done)
        in_repos = [w for w in done.values() if wanted & set(w.repos)]
        where = sorted({r for w in in_repos for r in w.repos if r in wanted})
        common = issue_words & _words(" ".join(w.text for w in done.values())) \
            if issue_words and done else set()
        written = _as_written(text, common) if common else {}
        shared = sorted(written.get(s, s) for s in common)
        score = (REPO_WEIGHT * len(in_repos) + WORD_WEIGHT * len(shared)
                 - LOAD_WEIGHT * len(open_ids))
        reasons = []
        if in_repos:
            n = len(in_repos)
            reasons.append(f"completed {n} item{'s' if n != 1 else ''} in {', '.join(where)}")
        if shared:
            reasons.append(f"closed work with similar words: {', '.join(shared)}")
        reasons.append(f"{len(open_ids)} open item{'s' if len(open_ids) != 1 else ''} "
                       "assigned" if open_ids else "nothing open assigned")
        out.append(Suggestion(person, round(score, 2), len(in_repos), where, shared,
                              len(open_ids), reasons))
    out.sort(key=lambda s: (-s.score, -s.completed, s.load, s.person))
    return out
