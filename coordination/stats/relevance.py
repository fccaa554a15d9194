"""Relevance of history records to a search: SQLite FTS5, porter stemming, BM25.

The history lives in Redis (both modes), which has no full-text index; a search reads
the records its filters keep and ranks them here, in an in-memory FTS5 table built for
that one query and dropped after it. FTS5 and its ``bm25()`` ship in the standard
library's sqlite3, so this costs no server and no dependency, and every mode ranks by
the same code.

A record matches when it holds every word searched, each compared by its stem
(``porter`` over ``unicode61``: "failing test" finds "tests failed"), in any order; or
when its text holds the search text itself (:func:`coordination.runtime.history.fold`,
the rule of coord 0.4, which also finds a fragment of a word such as ``refus``). A
match's ``score`` is its BM25 relevance (higher is better), plus :data:`PHRASE_BONUS`
when the text searched is there as written; a match by fragment alone scores the bonus
only. BM25 is computed here from FTS5's own term counts (``fts5vocab``) with the
inverse document frequency Lucene uses, ``ln(1 + (N - n + 0.5) / (n + 0.5))``, rather
than read from FTS5's ``bm25()``: that one clamps the weight of a word found in more than
half the records to almost nothing, so in a short history (or for the word a failing
team searches for, found everywhere) every match scored 0 and the rank said nothing.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence

#: Added to a record that holds the text searched as written (a phrase, in order), so
#: that it ranks above records holding the same words apart, whatever their BM25.
PHRASE_BONUS = 1.0
_WORD = re.compile(r"\w+")
#: Words by their stems; accents still count (``cafe`` does not find ``café``), as in
#: :func:`coordination.runtime.history.fold`.
TOKENIZE = "porter unicode61 remove_diacritics 0"
#: BM25's usual constants (term frequency saturation, length normalisation).
K1, B = 1.2, 0.75


def words(folded: str) -> list[str]:
    """The words of a (folded) search text, each an FTS5 string ("..." quoted: the
    user's text never reaches FTS5's query syntax, so ``AND``, ``*``, ``:``, quotes or
    ``NEAR`` are words or separators, never operators)."""
    return [f'"{w}"' for w in _WORD.findall(folded)]


def stems(folded: str) -> list[str]:
    """The stems of a (folded) search text's words, as FTS5 makes them."""
    if not words(folded):
        return []
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE query USING fts5(body, tokenize = '{TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE query_terms USING fts5vocab(query, row)")
        db.execute("INSERT INTO query(body) VALUES (?)", (folded,))
        return [str(t) for (t,) in db.execute("SELECT term FROM query_terms")]
    finally:
        db.close()


def roots(stemmed: Sequence[str]) -> list[str]:
    """What a text must hold, as plain substrings, to hold a word of each stem: the
    stem without its last two characters (at least one). Porter changes a word only at
    its end and by at most that much of what it keeps (``happy`` -> ``happi``,
    ``mobility`` -> ``mobl``): every word of a stem starts with its root. A cheap test,
    so that the store skips runs that cannot match before decoding them."""
    return [s[:max(1, len(s) - 2)] for s in stemmed]


def rank(texts: Sequence[str], folded: str) -> dict[int, float]:
    """Index of each matching text in ``texts`` (already folded) -> its score."""
    scores: dict[int, float] = {}
    for i, text in enumerate(texts):
        if folded and folded in text:
            scores[i] = PHRASE_BONUS
    terms = words(folded)
    if not terms or not texts:
        return scores
    db = sqlite3.connect(":memory:")
    try:
        for table in ("doc", "query"):
            db.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(body, tokenize = '{TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE doc_terms USING fts5vocab(doc, instance)")
        db.execute("CREATE VIRTUAL TABLE query_terms USING fts5vocab(query, row)")
        db.executemany("INSERT INTO doc(rowid, body) VALUES (?, ?)", enumerate(texts))
        db.execute("INSERT INTO query(body) VALUES (?)", (folded,))
        stems = [str(t) for (t,) in db.execute("SELECT term FROM query_terms")]
        hits = [int(r) for (r,) in db.execute("SELECT rowid FROM doc WHERE doc MATCH ?",
                                               (" ".join(terms),))]
        tf: dict[tuple[int, str], int] = {}
        marks = ",".join("?" * len(stems))
        for doc, term, n in db.execute(
                f"SELECT doc, term, count(*) FROM doc_terms WHERE term IN ({marks}) "
                "GROUP BY doc, term", stems):
            tf[int(doc), str(term)] = int(n)
    finally:
        db.close()
    df = {s: sum(1 for (_, t) in tf if t == s) for s in stems}
    lengths = [len(t.split()) for t in texts]  # (near enough for length normalisation)
    average = max(1.0, sum(lengths) / len(texts))
    n_docs = len(texts)
    for i in hits:
        score = 0.0
        for s in stems:
            f = tf.get((i, s), 0)
            if f:
                idf = math.log(1 + (n_docs - df[s] + 0.5) / (df[s] + 0.5))
                score += idf * f * (K1 + 1) / (f + K1 * (1 - B + B * lengths[i] / average))
        scores[i] = scores.get(i, 0.0) + score
    return scores
