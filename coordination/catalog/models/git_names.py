"""Git names a catalog hands to git: a change's branch, a remote, a clone URL. Each is
refused when git would read it as something else (an option, a transport that runs a
command), and each rule is also one pattern for `coord schema`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints
from pydantic.config import JsonDict

from coordination.catalog.patterns import END

#: A git branch name coord accepts for a change (a subset of git's rules: no leading
#: ``-``, no whitespace or control character; ``..``, ``//``, a trailing ``/``, ``.``
#: or ``.lock`` are refused by :func:`git_branch`).
Branch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$",
                                          max_length=200)]
_BRANCH_CHARS = r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}"
_BRANCH = re.compile(rf"^{_BRANCH_CHARS}\Z")
#: What a branch name never holds, and never ends with (:func:`git_branch`).
_BRANCH_NEVER_HOLDS = ("..", "//")
_BRANCH_NEVER_ENDS = ("/", ".lock", ".")
#: :func:`git_branch` as one pattern, for `coord schema`.
BRANCH_PATTERN = ("^" + "".join(rf"(?![\s\S]*{re.escape(x)})" for x in _BRANCH_NEVER_HOLDS)
                  + r"(?![\s\S]*(?:" + "|".join(re.escape(x) for x in _BRANCH_NEVER_ENDS)
                  + rf"){END})" + _BRANCH_CHARS + END)
BRANCH_SCHEMA: JsonDict = {"pattern": BRANCH_PATTERN}

#: ``<transport>::<address>``: git hands the address to ``git-remote-<transport>``
#: (``ext::`` runs it as a command, ``fd::`` reads file descriptors).
_TRANSPORT_RE = r"[A-Za-z0-9+._-]*::"
_TRANSPORT = re.compile("^" + _TRANSPORT_RE)
#: :func:`git_remote` as one pattern, for `coord schema`: no leading ``-``, no
#: ``<transport>::``, no whitespace or control character.
REMOTE_PATTERN = rf"^(?!-)(?!{_TRANSPORT_RE})[^\s\x00-\x1f\x7f]+{END}"
REMOTE_SCHEMA: JsonDict = {"pattern": REMOTE_PATTERN}
#: A clone URL: a remote's rules, and no password in a URL's user part (what urlsplit
#: reads as one: a ``:`` before the netloc's last ``@``).
CLONE_URL_SCHEMA: JsonDict = {
    "pattern": "^(?![\\s\\S]*://[^/?#]*:[^/?#]*@)" + REMOTE_PATTERN[1:]}


def git_branch(v: str | None) -> str | None:
    """A branch name (pattern: :data:`Branch`) without what git refuses in one."""
    if v is not None and not _BRANCH.match(v):
        raise ValueError(f"{v!r} is not a branch name coord accepts: letters, digits and "
                         "'._/-', not starting with '-' or '.' (write the branch's name)")
    if v is not None and (any(x in v for x in _BRANCH_NEVER_HOLDS)
                          or v.endswith(_BRANCH_NEVER_ENDS)):
        raise ValueError(f"{v!r} is not a branch name git accepts")
    return v


def git_remote(v: str | None) -> str | None:
    """A remote coord may hand to git: a remote's name, a URL or a path; never an
    option (``--upload-pack=CMD`` runs CMD) nor a ``<transport>::`` address."""
    if v is None:
        return v
    if v.startswith("-"):
        raise ValueError(f"{v!r} starts with '-', which git reads as an option "
                         "(--upload-pack=CMD runs CMD); write the remote's name or URL")
    if _TRANSPORT.match(v):
        raise ValueError(f"{v!r} is a <transport>:: address (ext:: and fd:: run commands); "
                         "write the remote's name or URL (https://, ssh://, a path)")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError(f"{v!r} holds whitespace or a control character; write the "
                         "remote's name or URL")
    return v
