"""Pacing frozen into a spec: which token buckets each todo's start takes from.

``pace: {key, rate, burst}`` on a plan paces that plan's todos, on a repo that
repo's todos in any plan. ``key`` names the bucket a todo draws from: its repo
(``repo:api``), each tag of its repo (``tag:python``; a repo without tags draws
from ``tag:``), or its repo's code host (``host:github.com``, read from the
checkout's git remote; ``host:local`` when there is none). Buckets are named by
key and value only, never by sweep or plan, so one bucket paces every sweep and
every worker that draws from it (``Keys.pace``). Where the plan and the repo
both pace the same bucket, the slower pace holds.

The token is taken by the start script (``lua/todo_start.lua``), in the same step
as the start it pays for; a start refused a token is sent again when one is due
(:func:`coordination.sweeps.sending.send_paced`).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Pace, Repo, Todo

#: A bucket of a pace: its name, seconds per token, burst.
Bucket = tuple[str, float, int]

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):")  # git@github.com:org/repo.git


def remote_host(checkout: Path, remote: str = "origin") -> str:
    """The host of a checkout's git remote (``github.com``), read from its config
    without running git; ``local`` when there is no checkout, remote or host."""
    config = checkout / ".git" / "config"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(config, encoding="utf-8")
        url = parser.get(f'remote "{remote}"', "url", fallback="")
    except (OSError, configparser.Error, UnicodeDecodeError):
        url = ""
    if "://" in url:
        host = urlsplit(url).hostname or ""
    else:
        m = _SCP_LIKE.match(url)
        host = m.group(1) if m else ""
    return host.lower() or "local"


def buckets_of(pace: Pace, repo: Repo, checkout: Path) -> list[Bucket]:
    """The buckets one pace puts a todo of ``repo`` in."""
    iv = pace.interval
    if pace.key == "repo":
        names = [f"repo:{repo.name}"]
    elif pace.key == "tag":
        names = [f"tag:{t}" for t in sorted(set(repo.tags))] or ["tag:"]
    else:
        names = [f"host:{remote_host(checkout)}"]
    return [(n, iv, pace.burst) for n in names]


class Pacer:
    """The buckets of a catalog's todos, gathered as their specs are frozen."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.paces: dict[str, list[float]] = {}
        self._hosts: dict[str, list[Bucket]] = {}

    def todo(self, todo: Todo, plan_id: str | None, checkout: Path) -> list[str]:
        """The bucket names of one todo (recorded in :attr:`paces`)."""
        repo = self.catalog.repo(todo.repo)
        if repo is None or todo.gate is not None:
            return []  # a gate runs nothing: people are not paced
        plan = self.catalog.plan(plan_id or todo.plan or "")
        found: list[Bucket] = []
        for pace in (plan.pace if plan else None, repo.pace):
            if pace is None:
                continue
            cache_key = f"{repo.name}|{pace.key}|{pace.rate}|{pace.burst}"
            got = self._hosts.get(cache_key)
            if got is None:
                got = self._hosts[cache_key] = buckets_of(pace, repo, checkout)
            found += got
        names: list[str] = []
        for name, iv, burst in found:
            old = self.paces.get(name)
            # The slower pace holds: the longer interval and the smaller burst.
            self.paces[name] = ([iv, burst] if old is None
                                else [max(old[0], iv), min(int(old[1]), burst)])
            if name not in names:
                names.append(name)
        return sorted(names)
