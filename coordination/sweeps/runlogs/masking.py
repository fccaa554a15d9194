"""``mask_env:``: the values of the variables it names, masked as ``***`` in everything a
todo's run leaves (its logs, output tail, results, reason), by the worker, before any of
it is written: no reader (the CLI, the web view, MCP, events, webhooks, the history, the
cache) ever sees a value, so none can forget to hide one.

The rule:

- A value is what the todo's environment holds when it runs (the worker's own
  environment, the todo's ``env:`` on top). An unset or empty variable masks nothing.
- Values shorter than :data:`MIN_CHARS` (4) characters are **not** masked: masking
  ``1`` or ``on`` would turn every such character of the output into ``***`` and
  hide nothing worth hiding. Keep secrets longer than that.
- A value of several lines is masked whole, and each of its lines of at least
  :data:`MIN_CHARS` characters on its own (a key printed line by line).
- At a cut (the output tail's start, where the ring buffer dropped the rest; the end of
  an output killed mid-line; the log's cap) a piece of a value of at least
  :data:`MIN_CHARS` characters is masked too.
- A value's lower- and upper-cased forms and its base64 forms (standard and URL-safe,
  at any alignment: :func:`coordination.trust.secrets.value_forms`) are masked as the
  value is. Other encodings (URL-encoded, hex, one character per line) are not
  recognised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from coordination.trust.secrets import value_forms

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

#: What a value is replaced by.
MASK = "***"
#: Values shorter than this are left alone (see the module).
MIN_CHARS = 4

#: The label ``ExecResult.output_tail`` puts over a stream whose head was cut.
_CUT_LABEL = re.compile(r"^--- (?:stdout|stderr) \(last \d+ chars of \d+ bytes\) ---\n", re.M)


def masked_names(catalog: Catalog, repo: str, own: Iterable[str] = ()) -> list[str]:
    """The variables a todo of ``repo`` masks: the catalog's ``mask_env:``, its repo's and
    its own (``own``), as frozen into its spec."""
    r = catalog.repo(repo)
    return sorted({*catalog.mask_env, *(r.mask_env if r is not None else ()), *own})


def secret_values(names: Iterable[str], env: Mapping[str, str],
                  base: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values to mask: each of ``names`` as ``env`` (the todo's) or else ``base``
    (default: this process's environment) holds it, longest first."""
    base = os.environ if base is None else base
    found: set[str] = set()
    for name in names:
        value = env.get(name, base.get(name))
        if not value:
            continue
        for v in (value, *value.splitlines()):
            v = v.strip("\r")
            if len(v) >= MIN_CHARS:
                found.add(v)
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


class Masker:
    """Masks a todo's values in its text (none: every call returns its text as it is)."""

    __slots__ = ("values", "pattern", "hold")

    def __init__(self, values: Iterable[str] = ()) -> None:
        # each value in every form it may be printed in (cased, base64)
        forms = {f for v in values for f in value_forms(v) if len(f) >= MIN_CHARS}
        self.values = tuple(sorted(forms, key=lambda v: (-len(v), v)))
        self.pattern = (re.compile("|".join(re.escape(v) for v in self.values))
                        if self.values else None)
        #: characters a stream keeps back: a value may go on in its next chunk
        self.hold = max((len(v) for v in self.values), default=1) - 1

    def __bool__(self) -> bool:
        return self.pattern is not None

    def text(self, text: str, *, head: bool = False, tail: bool = False) -> str:
        """``text`` with every value masked; ``head``/``tail``: it was cut there (a piece
        of a value at that edge is masked too)."""
        if self.pattern is None or not text:
            return text
        out = self.pattern.sub(MASK, text)
        if head:
            out = self._head(out)
        if tail:
            out = self._tail(out)
        return out

    def tail_text(self, tail: str) -> str:
        """An output tail (``ExecResult.output_tail``): masked, each stream that its
        label says was cut masked at its start too."""
        if self.pattern is None or not tail:
            return tail
        out = self.pattern.sub(MASK, tail)
        parts: list[str] = []
        at = 0
        for m in _CUT_LABEL.finditer(out):
            parts.append(out[at:m.end()])
            at = m.end()
            nxt = out.find("\n--- ", at)
            end = len(out) if nxt < 0 else nxt
            parts.append(self._head(out[at:end]))
            at = end
        parts.append(out[at:])
        return "".join(parts)

    def _head(self, text: str) -> str:
        for v in self.values:
            for k in range(len(v) - 1, MIN_CHARS - 1, -1):
                if text.startswith(v[-k:]):
                    return MASK + text[k:]
        return text

    def _tail(self, text: str) -> str:
        for v in self.values:
            for k in range(len(v) - 1, MIN_CHARS - 1, -1):
                if text.endswith(v[:k]):
                    return text[:-k] + MASK
        return text

    def stream(self) -> StreamMask:
        return StreamMask(self)


class StreamMask:
    """Masks one stream read in chunks: a value split across two reads is still masked
    whole. Only what may be the start of a value waits for the next chunk (a stream
    that ends in no such piece keeps nothing back, so its text keeps its place among
    the other stream's)."""

    __slots__ = ("masker", "held")

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self.held = ""

    def feed(self, text: str) -> str:
        """What of ``text`` (after what was held) may be written now, masked."""
        m = self.masker
        if m.pattern is None:
            return text
        buf = self.held + text
        cut = len(buf)
        for at in range(max(0, len(buf) - m.hold), len(buf)):
            piece = buf[at:]
            if any(len(v) > len(piece) and v.startswith(piece) for v in m.values):
                cut = at  # may go on in the next chunk
                break
        for found in m.pattern.finditer(buf):
            if found.start() < cut < found.end():
                cut = found.start()  # a whole value across the cut: it waits, whole
                break
        self.held = buf[cut:]
        return m.pattern.sub(MASK, buf[:cut])

    def end(self) -> str:
        """What was held, masked: the stream ended (or was cut) here."""
        held, self.held = self.held, ""
        return self.masker.text(held, tail=True)
