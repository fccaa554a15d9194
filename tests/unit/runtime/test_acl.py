"""`coord acl`'s users (coordination.runtime.acl): what a repo's worker may touch, as
Redis glob patterns (the real server's verdicts: tests/integration/test_acl.py)."""

from __future__ import annotations

import fnmatch

import pytest

from coordination.keys import Keys, glob_escape
from coordination.runtime.acl import repo_patterns, setuser_line, users

pytestmark = pytest.mark.timeout(30)


def _keys_of(rules: list[str], prefix: str = "~") -> list[str]:
    return [r[len(prefix):] for r in rules if r.startswith(prefix)]


def test_a_repo_worker_owns_its_keys_and_only_writes_other_queues() -> None:
    keys = Keys("coord")
    api, web, sup, obs = users(keys, ["api", "web"])
    assert (api.user, web.user, sup.user, obs.user) == (
        "coord-worker-api", "coord-worker-web", "coord-supervisor", "coord-observer")
    own = _keys_of(api.rules)
    for k in (keys.lease("api", 0), keys.fence("api"), keys.breaker("api"),
              keys.waiters("repo:api"), keys.broker_queue(keys.repo_queue("api")),
              keys.broker_queue(keys.repo_queue("api"), 3), keys.sweep("S"), keys.events):
        assert any(fnmatch.fnmatchcase(k, p) for p in own), k
    for k in (keys.lease("web", 0), keys.fence("web"), keys.breaker("web"),
              keys.waiters("repo:web"), keys.broker_queue(keys.repo_queue("web")),
              keys.broker_queue(keys.repo_queue("apix"))):
        assert not any(fnmatch.fnmatchcase(k, p) for p in own), k
    assert "%W~coord:celery:coord.repo.*" in api.rules
    assert "%R~coord:*" in obs.rules and not _keys_of(obs.rules)
    assert "~coord:*" in sup.rules


def test_a_repo_name_is_a_literal_in_its_patterns() -> None:
    assert glob_escape("a*b?[c]") == "a\\*b\\?\\[c\\]"
    assert "coord:lease:a\\*b:*" in repo_patterns(Keys("coord"), "a*b")


def test_a_printed_line_quotes_what_redis_cli_would_split_or_expand() -> None:
    (api, *_rest) = users(Keys("coord"), ["api"])
    line = setuser_line(api)
    assert line.startswith("ACL SETUSER coord-worker-api on resetkeys resetchannels -@all ")
    assert "'~coord:lease:api:*'" in line
    assert '"~coord:celery:coord.repo.api\\x06\\x16*"' in line
