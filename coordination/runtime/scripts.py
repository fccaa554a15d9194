"""The runtime's Lua scripts: ``lua/*.lua``, read and hashed once per process and
run by EVALSHA (:class:`coordination.connection.client.LuaScript`); each one is
prefixed with what it uses of ``lua/_common.lua`` and of the status tables (Lua in
Redis has no ``require``).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from coordination.connection.client import LuaScript
from coordination.status import lua_preamble

LUA_DIR = Path(__file__).resolve().parent / "lua"


@lru_cache(maxsize=None)
def script_text(name: str) -> str:
    """The source of ``lua/<name>.lua`` with what it uses of the status tables
    (:func:`coordination.status.lua_preamble`) and of ``lua/_common.lua`` in front.

    Only what it uses: fakeredis (embedded mode) compiles a script on every call,
    and Redis runs the prelude's table constructors on every call too. A script
    that emits events runs as a function, followed by ``publish_emitted()``: its
    events go out in one live message however the body returns (see ``emit``).
    """

    body = (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
    if name in SELF_CONTAINED:
        return body
    common = (LUA_DIR / "_common.lua").read_text(encoding="utf-8")
    chunks = _chunks(lua_preamble()) + _chunks(common)
    keep = _kept(chunks, body)
    if "emit" in keep:
        body = _PUBLISHING.format(body=body.rstrip("\n"))
        keep = _kept(chunks, body)
    prelude = "".join(text for chunk_name, text in chunks if chunk_name in keep)
    return f"{PRELUDE_MARK}\n{prelude}\n{body}"


#: A body that emits, wrapped: publish_emitted runs after any of its returns.
_PUBLISHING = """local function script_body()
{body}
end
local script_result = script_body()
publish_emitted()
return script_result
"""


def _kept(chunks: list[tuple[str, str]], body: str) -> set[str]:
    """The prelude chunks ``body`` uses, and what those use in turn."""
    used = _identifiers(body)
    keep: set[str] = set()
    grew = True
    while grew:
        grew = False
        for chunk_name, text in chunks:
            if chunk_name in used and chunk_name not in keep:
                keep.add(chunk_name)
                used |= _identifiers(text)
                grew = True
    return keep


#: First line of every script with a prelude (tests look for it).
PRELUDE_MARK = "-- prelude: the parts of coordination/status.py and lua/_common.lua used below"

#: Scripts that use no helper and no status: sent without any prelude.
SELF_CONTAINED = frozenset({"lease_extend", "lease_release", "change_lease"})

_LOCAL = re.compile(r"^local (?:function )?([A-Za-z_]\w*)")
_WORD = re.compile(r"[A-Za-z_]\w*")


def _chunks(text: str) -> list[tuple[str, str]]:
    """Each top-level ``local NAME`` / ``local function NAME`` with its lines (and the
    comment lines just above it), in order."""
    out: list[tuple[str, str]] = []
    pending: list[str] = []
    for line in text.splitlines(keepends=True):
        m = _LOCAL.match(line)
        if m:
            out.append((m.group(1), "".join(pending) + line))
            pending = []
        elif out and not line.startswith("--") and line.strip():
            name, chunk = out[-1]
            out[-1] = (name, chunk + "".join(pending) + line)
            pending = []
        else:
            pending.append(line)
    return out


def _identifiers(code: str) -> set[str]:
    return set(_WORD.findall("\n".join(line.split("--", 1)[0] for line in code.splitlines())))


@lru_cache(maxsize=None)
def lua(name: str) -> LuaScript:
    """The script ``lua/<name>.lua``, read and hashed once per process."""
    text = script_text(name)
    return LuaScript(name, text, hashlib.sha1(text.encode("utf-8")).hexdigest())
