"""Is a checkout clean, asked of git's index without running git (the cache key's fast path).

A ``git status`` process costs a cache hit more than the rest of its key together (a
fork and exec, git's start-up). For a small checkout that nothing changed, the answer
can be read from the same data git reads, by the same rule git trusts: every tracked
file's ``lstat`` equals what the index recorded, and no file is *racily clean* (modified
in the same instant the index was written, after which its stat data proves nothing).
Then the worktree is the index; and the index is HEAD's tree when the index's cache-tree
extension (``TREE``) is valid at the root and names that tree (``git commit`` and
``git checkout`` leave it so; ``git add`` invalidates what it touches).

:func:`clean` answers True only then; anything it does not follow (index version 4,
split or sparse indexes, a conflict, ``assume-unchanged`` or ``skip-worktree`` or
``intent-to-add`` entries, submodules, a worktree's ``.git`` file, packed HEAD refs it
cannot read, any stat that differs, more than :data:`MAX_ENTRIES` files) is None: ask
git. It compares more than git does (ctime, inode, uid, gid, mode), so it can only send
more checkouts to git, never call a changed one clean.
"""

from __future__ import annotations

import os
import stat
import struct

#: Beyond this many tracked files git's own status is as fast (it is C): ask it.
MAX_ENTRIES = 4000

_HEADER = struct.Struct(">4sII")
_ENTRY = struct.Struct(">10I20sH")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size


def head_commit(gitdir: str) -> str | None:
    """HEAD's commit id, read from the files (None: not readable here, or no commit)."""
    try:
        with open(os.path.join(gitdir, "HEAD"), "rb") as f:
            head = f.read().strip().decode()
    except (OSError, UnicodeDecodeError):
        return None
    if not head.startswith("ref: "):
        return head if len(head) == 40 else None
    ref = head[5:]
    try:
        with open(os.path.join(gitdir, ref), "rb") as f:
            sha = f.read().strip().decode()
        return sha if len(sha) == 40 else None
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError):
        return None
    try:
        with open(os.path.join(gitdir, "packed-refs"), "rb") as f:
            for line in f:
                parts = line.strip().split(b" ")
                if len(parts) == 2 and parts[1].decode(errors="replace") == ref:
                    return parts[0].decode()
    except OSError:
        return None
    return None


def clean(top: str, tree: str) -> bool | None:
    """True when every tracked file of the checkout at ``top`` is as HEAD's ``tree`` has
    it (by git's stat rule, see the module docstring); None: not known here, ask git."""
    gitdir = os.path.join(top, ".git")
    index = os.path.join(gitdir, "index")
    try:
        if not os.path.isdir(gitdir):
            return None
        with open(index, "rb") as f:
            data = f.read()
        index_mtime = os.stat(index).st_mtime_ns
    except OSError:
        return None
    if len(data) < _HEADER.size + 20:
        return None
    sig, version, count = _HEADER.unpack_from(data, 0)
    if sig != b"DIRC" or version not in (2, 3) or count > MAX_ENTRIES:
        return None
    pos, end = _HEADER.size, len(data) - 20
    entries: list[tuple[bytes, tuple[int, ...]]] = []
    for _ in range(count):
        if pos + _ENTRY.size > end:
            return None
        fields = _ENTRY.unpack_from(data, pos)
        flags = fields[11]
        if flags & 0xF000:  # assume-valid, extended (skip-worktree, intent-to-add), a stage
            return None
        name_at = pos + _ENTRY.size
        nul = data.find(b"\0", name_at)
        if nul < 0:
            return None
        name = data[name_at:nul]
        length = _ENTRY.size + len(name)
        pos += (length + 8) & ~7  # 1-8 NULs pad each entry to a multiple of 8
        entries.append((name, tuple(fields[:10])))
    if not _root_tree_is(data, pos, end, tree):
        return None
    for name, recorded in entries:
        ctime_s, ctime_ns, mtime_s, mtime_ns, _dev, ino, mode, uid, gid, size = recorded
        if mode >> 12 not in (0o10, 0o12):  # regular files and links only (no gitlinks)
            return None
        if mtime_s * 1_000_000_000 + mtime_ns >= index_mtime:
            return None  # racily clean: its stat data proves nothing
        try:
            s = os.lstat(os.path.join(top, os.fsdecode(name)))
        except OSError:
            return None
        if (int(s.st_mtime) != mtime_s or s.st_mtime_ns % 1_000_000_000 != mtime_ns
                or int(s.st_ctime) != ctime_s or s.st_ctime_ns % 1_000_000_000 != ctime_ns
                or (s.st_ino & 0xFFFFFFFF) != ino or (s.st_size & 0xFFFFFFFF) != size
                or s.st_uid != uid or s.st_gid != gid or _git_mode(s.st_mode) != mode):
            return None
    return True


def _git_mode(m: int) -> int:
    if stat.S_ISLNK(m):
        return 0o120000
    return 0o100755 if m & 0o100 else 0o100644


def _root_tree_is(data: bytes, pos: int, end: int, tree: str) -> bool:
    """Does the index's cache-tree extension say the whole index is ``tree``? (False for
    no extension, an invalidated root, or split/sparse indexes.)"""
    while pos + 8 <= end:
        sig = data[pos:pos + 4]
        (size,) = struct.unpack_from(">I", data, pos + 4)
        body = data[pos + 8:pos + 8 + size]
        if sig in (b"link", b"sdir"):
            return False
        if sig == b"TREE":
            # root entry: "" NUL "<entry_count> <subtrees>\n" then its 20-byte id
            nul = body.find(b"\0")
            nl = body.find(b"\n", nul)
            if nul != 0 or nl < 0:
                return False
            counts = body[nul + 1:nl].split(b" ")
            if not counts or counts[0].startswith(b"-"):
                return False  # invalidated
            return body[nl + 1:nl + 21].hex() == tree
        pos += 8 + size
    return False


def links(top: str) -> list[str] | None:
    """The paths (from ``top``) of the tracked symlinks of the checkout at ``top``, read
    from git's index (version 2 or 3, any size, no process); None when the index says
    it in a way not followed here (version 4, split, no index): ask git."""
    index = os.path.join(top, ".git", "index")
    try:
        with open(index, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < _HEADER.size + 20:
        return None
    sig, version, count = _HEADER.unpack_from(data, 0)
    if sig != b"DIRC" or version not in (2, 3):
        return None
    pos, end = _HEADER.size, len(data) - 20
    out: list[str] = []
    for _ in range(count):
        if pos + _ENTRY.size > end:
            return None
        fields = _ENTRY.unpack_from(data, pos)
        name_at = pos + _ENTRY.size
        if fields[11] & 0x4000:  # extended flags: two more bytes before the name
            name_at += 2
        nul = data.find(b"\0", name_at)
        if nul < 0:
            return None
        if fields[6] >> 12 == 0o12:
            out.append(os.fsdecode(data[name_at:nul]))
        pos += (nul - pos + 8) & ~7  # 1-8 NULs pad each entry to a multiple of 8
    return out
