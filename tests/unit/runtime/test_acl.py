"""`coord acl`'s users (coordination.runtime.acl): what a repo's worker may touch, as
Redis glob patterns (the real server's verdicts: tests/integration/test_acl.py)."""

from __future__ import annotations

import fnmatch

import pytest

from coordination.keys import Keys, glob_escape
from coordination.connection.preflight import _refusal
from coordination.runtime.acl import (
    made_by_coord,
    person,
    pidbox_patterns,
    repo_patterns,
    setuser_line,
    users,
)

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
    # Other repos' queues: a selector that pushes only; the pidbox channel: one that listens.
    assert "(%W~coord:celery:coord.repo.* +lpush +rpush)" in api.rules
    assert "(&coord:celery:/0.celery.pidbox +psubscribe +subscribe)" in api.rules
    assert not [r for r in api.rules if r.startswith("&") and "pidbox" in r]
    assert "&coord:*" not in api.rules
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


def test_a_repos_pidbox_patterns_match_its_workers_only() -> None:
    pats = pidbox_patterns(Keys("coord"), "api")
    def hit(name: str) -> bool:
        return any(fnmatch.fnmatchcase(f"coord:celery:{name}.celery.pidbox", p) for p in pats)
    assert hit("api-1@h") and hit("api-4194304@host.example") and hit("api-4294967295@h")
    assert not hit("api-2-123@h") and not hit("api-x@h") and not hit("api-@h")
    assert not hit("api+web-12@h")


def test_a_persons_user_is_kept_to_its_repos() -> None:
    keys = Keys("coord")
    op = person(keys, "alice", ["api"], "operator")
    ob = person(keys, "bob", ["api"], "observer")
    assert (op.user, op.role, op.repos) == ("coord-person-alice", "person-operator", ("api",))
    own = _keys_of(op.rules)
    assert any(fnmatch.fnmatchcase(keys.lease("api", 0), p) for p in own)
    assert not any(fnmatch.fnmatchcase(keys.lease("web", 0), p) for p in own)
    assert not any(fnmatch.fnmatchcase(keys.broker_queue(keys.repo_queue("web")), p)
                   for p in own)
    assert not _keys_of(ob.rules) and _keys_of(ob.rules, "%R~")
    assert "+set" in op.rules and "+set" not in ob.rules
    with pytest.raises(ValueError):
        person(keys, "x", ["api"], "admin")
    assert made_by_coord("coord-person-alice") and made_by_coord("coord-worker-api")
    assert not made_by_coord("default") and not made_by_coord("coord-worker-")


def test_a_coord_acl_users_refusal_never_hints_the_whole_namespace() -> None:
    mine = _refusal(["keys"], "coord-worker-api", "h:1", "coord")
    assert "coord acl --apply" in mine.hint and "grant it" not in mine.hint
    theirs = _refusal(["keys"], "app", "h:1", "coord")
    assert "grant it: ACL SETUSER app '~coord:*'" in theirs.hint
