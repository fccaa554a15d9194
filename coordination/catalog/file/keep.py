"""Lines an edit did not change stay as the user wrote them.

ruamel writes a document its own way: a flow list spanning two lines comes out on
one (``[a,\\n b]`` as ``[a, b]``), ``{ A: 1 }`` as ``{A: 1}``, ``key:   value`` as
``key: value``. So the text an edit writes is merged from three: the user's
(``orig``), ruamel's writing of it before the edit (``base``) and after it (``new``).
Where ``new`` keeps ``base``'s lines, the user's lines are kept; where the edit
changed them, ``new``'s are taken (a three-way merge, as ``diff3`` does). The merged
text must read back as the same data as ``new`` (keys in order), or ``new`` is used.

Both edit paths use it: the full round trip on the whole file, the splice on the few
items ruamel writes. ruamel's second writing (``base``) is only paid for when a line
of the text looks like one ruamel would write differently (:func:`may_rewrite`).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher

from coordination.catalog.file import loader
from coordination.errors import CoordError

# Where a flow collection may open, and a key with more than one space before its
# value ("timeout:   60"): found by the C regex engine, their lines checked one by one.
_OPEN = re.compile(r"[\[{]")
_WIDE = re.compile(r":[ \t]{2,}[^\s#]")
_WIDE_KEY = re.compile(r"[ \t]*(?:-[ \t]+)*[A-Za-z_][\w.-]*:[ \t]{2,}[^\s#]")
# A flow collection on a line: after "key: " or "- ", up to the end of the line.
_FLOW = re.compile(r"(?:^|[:-][ \t]+)([\[{].*)$")
# Spacing ruamel writes otherwise inside one: "[ a", "a ]", "a,b", "a , b", "a,  b", "A:  1".
_ODD_FLOW = re.compile(r"[\[{][ \t]|[ \t][\]}]|,(?! )|,[ \t]{2}|[ \t],|:[ \t]{2}")
_SMALL_DIFF = 250_000  # cells: above it, an unanchored gap is left unmatched


def may_rewrite(text: str) -> bool:
    """Whether ruamel may write some lines of ``text`` differently: a flow collection
    that spans lines or is spaced otherwise, or a key with a wide gap before its value.
    (A false "yes" only costs a second writing; the merge finds the truth.)"""
    for m in _WIDE.finditer(text):
        start, end = _line_at(text, m.start())
        if _WIDE_KEY.match(text, start, end):
            return True
    done = -1  # the end of the last line checked
    for m in _OPEN.finditer(text):
        if m.start() < done:
            continue
        start, done = _line_at(text, m.start())
        line = text[start:done]
        flow = _FLOW.search(line.split(" #", 1)[0])
        if flow is not None:
            part = flow.group(1).rstrip()
            opened = part.count("[") + part.count("{")
            if opened != part.count("]") + part.count("}") or _ODD_FLOW.search(part):
                return True
    return False


def _line_at(text: str, pos: int) -> tuple[int, int]:
    """Where the line of ``text`` holding ``pos`` starts and ends (its line break)."""
    end = text.find("\n", pos)
    return text.rfind("\n", 0, pos) + 1, len(text) if end < 0 else end


def align(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of equal lines ``a[i] == b[j]``, increasing in both: a patience
    diff (lines unique on both sides anchor it, common ends are matched first), so
    near-equal catalogs of 100,000 lines align in well under a second."""
    out: list[tuple[int, int]] = []
    _align(a, b, 0, len(a), 0, len(b), out, 0)
    return out


def _align(a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int,
           out: list[tuple[int, int]], depth: int) -> None:
    while alo < ahi and blo < bhi and a[alo] == b[blo]:
        out.append((alo, blo))
        alo += 1
        blo += 1
    tail: list[tuple[int, int]] = []
    while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
        ahi -= 1
        bhi -= 1
        tail.append((ahi, bhi))
    if alo < ahi and blo < bhi:
        anchors = _anchors(a, b, alo, ahi, blo, bhi) if depth < 50 else []
        if anchors:
            i0, j0 = alo, blo
            for i, j in anchors:
                _align(a, b, i0, i, j0, j, out, depth + 1)
                out.append((i, j))
                i0, j0 = i + 1, j + 1
            _align(a, b, i0, ahi, j0, bhi, out, depth + 1)
        elif (ahi - alo) * (bhi - blo) <= _SMALL_DIFF:
            sm = SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            for x, y, n in sm.get_matching_blocks():
                out.extend((alo + x + k, blo + y + k) for k in range(n))
    out.extend(reversed(tail))


def _anchors(a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
             ) -> list[tuple[int, int]]:
    """The longest increasing run of lines that occur once in each range."""
    ca = Counter(a[alo:ahi])
    cb = Counter(b[blo:bhi])
    where = {b[j]: j for j in range(blo, bhi) if cb[b[j]] == 1 and ca[b[j]] == 1}
    pairs = [(i, where[a[i]]) for i in range(alo, ahi) if a[i] in where]
    # Longest increasing subsequence of the j's (patience sorting).
    tops: list[int] = []  # j at the top of each pile
    back: list[int] = []  # per pair: index of the pair below it, or -1
    top_pair: list[int] = []  # per pile: index of its top pair
    for k, (_, j) in enumerate(pairs):
        p = bisect.bisect_left(tops, j)
        back.append(top_pair[p - 1] if p else -1)
        if p == len(tops):
            tops.append(j)
            top_pair.append(k)
        else:
            tops[p] = j
            top_pair[p] = k
    run: list[tuple[int, int]] = []
    k = top_pair[-1] if top_pair else -1
    while k >= 0:
        run.append(pairs[k])
        k = back[k]
    return run[::-1]


def merge3(orig: Sequence[str], base: Sequence[str], new: Sequence[str]) -> list[str]:
    """``new``'s lines, with the user's (``orig``) wherever ``new`` kept ``base``'s.

    Each side's changes to ``base`` are hunks (a range of its lines and what took
    their place); a hunk of one side is applied as it is, even right next to one of
    the other side; where both sides changed the same lines, ``new``'s are taken."""
    mine = [(lo, hi, orig[x:y]) for lo, hi, x, y in _hunks(align(base, orig), len(base), len(orig))]
    theirs = [(lo, hi, new[x:y]) for lo, hi, x, y in _hunks(align(base, new), len(base), len(new))]
    hunks = sorted([(lo, hi, 0, lines) for lo, hi, lines in mine]
                   + [(lo, hi, 1, lines) for lo, hi, lines in theirs], key=lambda h: h[:2])
    out: list[str] = []
    pos = 0  # base lines before it are written
    k = 0
    while k < len(hunks):
        glo, ghi, side, lines = hunks[k]
        group = [hunks[k]]
        k += 1
        while k < len(hunks) and (hunks[k][0] < ghi or hunks[k][0] == hunks[k][1] == glo == ghi):
            group.append(hunks[k])
            ghi = max(ghi, hunks[k][1])
            k += 1
        out.extend(base[pos:glo])
        if len({h[2] for h in group}) == 1:
            out.extend(lines)
        else:  # both changed these lines: new's version of them
            at = glo
            for lo, hi, s, repl in group:
                if s == 1:
                    out.extend(base[at:lo])
                    out.extend(repl)
                    at = hi
            out.extend(base[at:ghi])
        pos = ghi
    out.extend(base[pos:])
    return out


def _hunks(pairs: list[tuple[int, int]], n_base: int, n_other: int
           ) -> list[tuple[int, int, int, int]]:
    """The gaps between aligned lines: ``(lo, hi, x, y)``, base[lo:hi] -> other[x:y]."""
    out = []
    po = pa = 0
    for o, a in [*pairs, (n_base, n_other)]:
        if o > po or a > pa:
            out.append((po, o, pa, a))
        po, pa = o + 1, a + 1
    return out


def keep(orig: str, base: str, new: str, file: str, context: str = "") -> str:
    """``new`` with the lines the edit did not change as ``orig`` has them (texts
    split on "\\n"), when that reads back as ``new``'s data; else ``new``. ``context``:
    lines put before each text to read it (the keys above an item)."""
    if base == orig or new == orig:
        return new
    if new == base:
        return orig
    merged = "\n".join(merge3(orig.split("\n"), base.split("\n"), new.split("\n")))
    if merged == new or _reads_as(context + merged, context + new, file):
        return merged
    return new


def _reads_as(text: str, other: str, file: str) -> bool:
    try:
        return _ordered(loader.parse(text, file)) == _ordered(loader.parse(other, file))
    except (CoordError, ValueError, TypeError):
        return False


def _ordered(data: object) -> object:
    """Data to compare with key order (dicts compare equal in any order)."""
    if isinstance(data, dict):
        return ("map", [(k, _ordered(v)) for k, v in data.items()])
    if isinstance(data, list):
        return ("seq", [_ordered(v) for v in data])
    return (type(data).__name__, data)
