"""Pieces of the regular expressions `coord schema` gives editors (JSON Schema
``pattern``s), built from the constants the loader's validators use.

A pattern is read by Python's ``re`` (jsonschema, in CI) and by ECMAScript's RegExp
(the YAML language server, in an editor): only what both read alike is used here.
"""

from __future__ import annotations

import re

#: The end of the text in both Python's and ECMAScript's regular expressions (JSON Schema
#: patterns are read by both: jsonschema in CI, the YAML language server in an editor);
#: ``$`` also matches before a final newline in Python.
END = r"(?![\s\S])"


def any_case(word: str) -> str:
    """A regular expression matching ``word`` in any case (JSON Schema patterns have no
    case-insensitive flag): ``http`` -> ``[hH][tT][tT][pP]``."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


def at_most(limit: int) -> str:
    """A regular expression matching a decimal number (digits, then an optional ``.``
    and digits) of at most ``limit``: ``at_most(30)`` matches ``30``, ``29.5``, ``030``,
    not ``30.5`` nor ``31``."""
    if limit < 1:
        raise ValueError(f"at_most({limit}): the limit is a whole number of at least 1")
    top = str(limit)
    # numbers with fewer digits (zeros before them allowed)
    below = [rf"0*[0-9]{{1,{len(top) - 1}}}"] if len(top) > 1 else []
    for i, d in enumerate(top):  # as many digits: the same start, then a smaller digit
        if d != "0":
            below.append(f"0*{top[:i]}[0-{int(d) - 1}]" + (rf"[0-9]{{{len(top) - i - 1}}}"
                                                            if i < len(top) - 1 else ""))
    less = "|".join(below)
    return rf"(?:(?:{less})(?:\.[0-9]+)?|0*{top}(?:\.0+)?)"
