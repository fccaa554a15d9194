"""Git names a catalog hands to git: a change's branch, a remote, a clone URL. Each is
refused when git would read it as something else (an option, a transport that runs a
command), and each rule is also one pattern for `coord schema`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints
from pydantic.config import JsonDict

from coordination.catalog.rules.git_rules import (BRANCH_CHARS, BRANCH_NEVER_ENDS,
                                            BRANCH_NEVER_HOLDS, TRANSPORT_RE,
                                            git_branch as git_branch,
                                            git_remote as git_remote)
from coordination.catalog.rules.patterns import END

#: A git branch name coord accepts for a change (a subset of git's rules: no leading
#: ``-``, no whitespace or control character; ``..``, ``//``, a trailing ``/``, ``.``
#: or ``.lock`` are refused by :func:`git_branch`).
Branch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$",
                                          max_length=200)]
#: :func:`git_branch` as one pattern, for `coord schema`.
BRANCH_PATTERN = ("^" + "".join(rf"(?![\s\S]*{re.escape(x)})" for x in BRANCH_NEVER_HOLDS)
                  + r"(?![\s\S]*(?:" + "|".join(re.escape(x) for x in BRANCH_NEVER_ENDS)
                  + rf"){END})" + BRANCH_CHARS + END)
BRANCH_SCHEMA: JsonDict = {"pattern": BRANCH_PATTERN}

#: :func:`git_remote` as one pattern, for `coord schema`: no leading ``-``, no
#: ``<transport>::``, no whitespace or control character.
REMOTE_PATTERN = rf"^(?!-)(?!{TRANSPORT_RE})[^\s\x00-\x1f\x7f]+{END}"
REMOTE_SCHEMA: JsonDict = {"pattern": REMOTE_PATTERN}
#: A clone URL: a remote's rules, and no password in a URL's user part (what urlsplit
#: reads as one: a ``:`` before the netloc's last ``@``).
CLONE_URL_SCHEMA: JsonDict = {
    "pattern": "^(?![\\s\\S]*://[^/?#]*:[^/?#]*@)" + REMOTE_PATTERN[1:]}
