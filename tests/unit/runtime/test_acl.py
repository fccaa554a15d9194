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


def _redis_glob(pattern: str, key: str) -> bool:
    """Redis's glob as fnmatch reads it (no escapes in these patterns but the
    namespace's; fnmatch's ``[`` classes are Redis's)."""
    return fnmatch.fnmatchcase(key, pattern)


def test_a_persons_sweeps_are_those_of_its_repos_plans_by_id() -> None:
    from coordination.runtime.acl import person_of
    from coordination.sweeps.planning import new_sweep_id

    keys = Keys("coord")
    op = person(keys, "alice", ["lib"], "operator", plans=["PLAN-001"],
                todos=["TODO-001", "TODO-010[lib]"])
    assert (op.plans, op.todos) == (("PLAN-001",), ("TODO-001", "TODO-010[lib]"))
    write, read = _keys_of(op.rules), _keys_of(op.rules, "%R~")
    assert "coord:sweep:*" not in write  # (the workers' grant: every sweep)
    mine = [new_sweep_id("PLAN-001"), new_sweep_id("TODO-001"), new_sweep_id("TODO-010[lib]")]
    theirs = [new_sweep_id("PLAN-002"), new_sweep_id("PLAN-0012"), new_sweep_id("RUN"),
              new_sweep_id("TODO-0011"), "PLAN-001-x", "PLAN-001"]
    for sid in mine:
        for key in (keys.sweep(sid), keys.sweep_events(sid), keys.attempt_log(sid, "T", 1),
                    keys.todo_attempts(sid, "T"), keys.supervisor_lock(sid)):
            assert any(_redis_glob(p, key) for p in write), key
    for sid in theirs:
        for key in (keys.sweep(sid), keys.sweep_events(sid), keys.attempt_log(sid, "T", 1),
                    keys.todo_attempts(sid, "T"), keys.sweep_log_keys(sid)):
            assert not any(_redis_glob(p, key) for p in write), key
        # Its record and events are read (sweep list, status, watch), never its logs.
        assert any(_redis_glob(p, keys.sweep(sid)) for p in read)
        assert any(_redis_glob(p, keys.sweep_events(sid)) for p in read)
        for key in (keys.attempt_log(sid, "T", 1), keys.todo_attempts(sid, "T")):
            assert not any(_redis_glob(p, key) for p in (*read, *write)), key
    assert keys.freeze in read and keys.freeze not in write  # read, never lifted
    assert keys.acl_person("alice") in read and keys.acl_person("bob") not in read
    assert person_of("coord-person-alice") == "alice" and person_of("coord-worker-x") is None
    assert person_of("coord-person-") is None and person_of(None) is None


def test_a_persons_scope_record_covers_its_sweeps_only() -> None:
    import json

    from coordination.runtime.acl import read_scope, scope_document
    from coordination.sweeps.planning import new_sweep_id

    class R:
        def __init__(self, value: str | None) -> None:
            self.value = value

        def get(self, _: str) -> str | None:
            return self.value

    keys = Keys("coord")
    op = person(keys, "alice", ["lib"], "operator", plans=["PLAN-001"], todos=["TODO-003"])
    doc = scope_document(op, who="admin", at="now")
    scope = read_scope(R(doc), keys, "alice")
    assert scope is not None and scope.repos == ("lib",) and scope.role == "operator"
    assert scope.covers(new_sweep_id("PLAN-001")) and scope.covers(new_sweep_id("TODO-003"))
    assert not scope.covers(new_sweep_id("PLAN-0012")) and not scope.covers("PLAN-001")
    assert not scope.covers(new_sweep_id("RUN"))
    for bad in (None, "{", json.dumps({"role": "operator"}), "[]"):
        assert read_scope(R(bad), keys, "alice") is None  # (a caller refuses: fail closed)


def test_a_coord_acl_users_refusal_never_hints_the_whole_namespace() -> None:
    mine = _refusal(["keys"], "coord-worker-api", "h:1", "coord")
    assert "coord acl --apply" in mine.hint and "grant it" not in mine.hint
    theirs = _refusal(["keys"], "app", "h:1", "coord")
    assert "grant it: ACL SETUSER app '~coord:*'" in theirs.hint
