"""A repo selector's syntax: what :func:`coordination.catalog.selection.selectors.parse` reads,
and the same as one regular expression for `coord schema` (a todo's ``for_each:``).

Here rather than in selectors.py: the models name the pattern, and selectors.py
imports the models.
"""

from __future__ import annotations

import re

from coordination.catalog.rules.patterns import END

#: The kinds a term may name (``tag:T``...); a term without one is a name or glob.
KINDS = ("tag", "role", "changed")
#: The graph forms' marks: ``...NAME``, ``NAME...``, and ``^`` beside them (without NAME).
GRAPH, NOT_SELF = "...", "^"
#: Joins the parts of an intersection, ``tag:python&changed:main``.
AND = "&"


def _selector_pattern() -> str:
    """What :func:`parse` accepts, as one regular expression (`coord schema` tells an
    editor with it; ECMAScript and Python read it alike). A term's core is text without
    ``,`` or ``^`` nor three dots in a row; a name's has no ``:``; after ``!`` and around
    a term and around ``&``, blanks are dropped; a part after ``&`` does not start with
    ``!``."""
    g, x = re.escape(GRAPH), re.escape(NOT_SELF)
    dot = re.escape(GRAPH[0])

    def core(chars: str) -> str:  # runs of at most two dots between other characters
        return rf"(?:(?:{dot}{{0,2}}[^.,^{chars}])+{dot}{{0,2}}|{dot}{{1,2}})"

    kinds = "|".join(re.escape(k) for k in KINDS if k != "changed")
    atom = (rf"(?:{g}{x}?)?(?:{core(':&')}|(?:{kinds}):{core('&')}"
            rf"|changed:(?:(?!-){core('&')})?)(?:{x}?{g})?")
    # A&B: what both select; '!' goes before the whole term, never inside it.
    term = rf"{atom}(?<=\S)(?:\s*{AND}\s*(?!!)(?=\S){atom}(?<=\S))*"
    part = rf"\s*(?:!\s*|(?!!))(?=\S){term}\s*"
    return rf"^{part}(?:,{part})*{END}"


SELECTOR_PATTERN = _selector_pattern()
