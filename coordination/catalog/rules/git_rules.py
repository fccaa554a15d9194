"""The rules for names coord hands to git, and a repo's name: stdlib only, so that what
reads a fleet without the catalog's models (``coord init``'s discovery, ``--check``)
checks names as the models do (:mod:`coordination.catalog.models.git_names` builds its
types and `coord schema`'s patterns from these)."""

from __future__ import annotations

import re

#: A repo's name: lower-case letters, digits, ``.``, ``_`` and ``-``.
REPO_NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"

BRANCH_CHARS = r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}"
_BRANCH = re.compile(rf"^{BRANCH_CHARS}\Z")
#: What a branch name never holds, and never ends with (:func:`git_branch`).
BRANCH_NEVER_HOLDS = ("..", "//")
BRANCH_NEVER_ENDS = ("/", ".lock", ".")
#: ``<transport>::<address>``: git hands the address to ``git-remote-<transport>``
#: (``ext::`` runs it as a command, ``fd::`` reads file descriptors).
TRANSPORT_RE = r"[A-Za-z0-9+._-]*::"
_TRANSPORT = re.compile("^" + TRANSPORT_RE)
#: Whitespace (``str.isspace``'s, which ``\s`` matches in a text pattern) or a control
#: character.
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def git_branch(v: str | None) -> str | None:
    """A branch name (pattern: :data:`Branch`) without what git refuses in one."""
    if v is not None and not _BRANCH.match(v):
        raise ValueError(f"{v!r} is not a branch name coord accepts: letters, digits and "
                         "'._/-', not starting with '-' or '.' (write the branch's name)")
    if v is not None and (any(x in v for x in BRANCH_NEVER_HOLDS)
                          or v.endswith(BRANCH_NEVER_ENDS)):
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
    if _BLANK_OR_CONTROL.search(v):
        raise ValueError(f"{v!r} holds whitespace or a control character; write the "
                         "remote's name or URL")
    return v
