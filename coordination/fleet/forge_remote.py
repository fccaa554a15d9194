"""The forge a checkout's remote URL names, for `coord init` to write as the repo's
``forge:``: only hosts whose forge is certain (github.com, gitlab.com), in the https and
ssh forms git takes (``https://github.com/o/r.git``, ``git@github.com:o/r.git``,
``ssh://git@gitlab.com/g/sub/r``). Any other host (a self-hosted forge) is left for
the user to name: coord does not guess a kind from a host name."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from coordination.catalog.rules.forge_rules import forge_project

#: Host -> the kind of forge it is.
KNOWN_HOSTS = {"github.com": "github", "gitlab.com": "gitlab"}
#: scp-like ssh: ``user@host:path`` (no scheme).
_SCP = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def forge_of_remote(url: str | None) -> dict[str, str] | None:
    """``{kind, project}`` of ``url`` when its host is a known forge's and its path a
    project there; else None."""
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git+ssh"):
            return None
        host, path = (parts.hostname or "").lower(), parts.path
    else:
        m = _SCP.match(url)
        if m is None:
            return None
        host, path = m["host"].lower(), m["path"]
    kind = KNOWN_HOSTS.get(host)
    project = path.strip("/").removesuffix(".git").removesuffix("/")
    if kind is None or not project:
        return None
    try:
        forge_project(kind, project)
    except ValueError:
        return None
    return {"kind": kind, "project": project}
