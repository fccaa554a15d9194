"""Per-repo Redis ACL users: ``coord acl``.

A user per repo's workers (``coord-worker-<repo>``) and one per role: the supervisor
(``coord-supervisor``: the CLIs that start, steer and wait on sweeps, and a process
that supervises; the whole namespace, as :func:`coordination.connection.preflight.acl_rules`
gives a CLI), and the read-only observer (``coord-observer``: the web view, metrics).

What a repo's worker may touch, worked out from :mod:`coordination.keys` and what a
worker does around one todo (take its turn, run, finish, carry the sweep on):

- **Its repo's own keys, read and write**: its queue's kombu lists (every priority) and
  bindings, its lease slots, fence, breaker, waiting line, and its ``repo:`` pace bucket.
- **What every worker must share, read and write**: the sweeps' hashes and event
  streams (a sweep spans repos: its one hash holds every todo's checkpoint and its
  counters, which each finish moves), the namespace's event stream and channel, the
  workers' liveness records, the metrics hash, history, the result cache, the
  notification outbox, the shared resources' slots, fences and lines, the wake-up lists
  of waiters, the ``tag:``/``host:`` pace buckets, changes (a verify todo records into
  its change), kombu's ``unacked`` bookkeeping (one per namespace), the control queue,
  the catalog claim and the start-up probe keys.
- **Other repos' queues: write only** (``%W~``): a finish sends the todos that follow
  (an eager successor of another repo) to that repo's queue (LPUSH), and kombu reads the
  bindings to route it (``%R~``). A worker can neither read nor take another repo's
  messages (BRPOP, RPOP, LRANGE: NOPERM), nor touch another repo's leases, fences,
  breaker or line. A message names a todo of a (signed) spec, never a command.
- **Not the supervision.** The supervision pass re-sends lost messages (reading every
  queue), frees a gone holder's slots and counts lost runs against other repos'
  breakers: a per-repo worker runs with ``COORD_SUPERVISE=0`` (no supervisor thread),
  and the passes are made by processes under ``coord-supervisor`` (``plan sweep
  --wait``, ``sweep watch``, or workers started under that user).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from coordination.connection.preflight import ACL_COMMANDS
from coordination.keys import Keys, glob_escape

#: The kombu queue list of a priority above 0 is ``<queue>\x06\x16<priority>``.
PRIORITY_SEP = "\x06\x16"
SUPERVISOR = "coord-supervisor"
OBSERVER = "coord-observer"


def worker_user(repo: str) -> str:
    """The ACL user of ``repo``'s workers."""
    return f"coord-worker-{repo}"


@dataclass(frozen=True)
class AclUser:
    """One ``ACL SETUSER``: its user, role, and rules (after ``on`` and the password)."""

    user: str
    role: str  # "worker" (of ``repo``), "supervisor", "observer"
    repo: str | None
    rules: list[str]


def shared_patterns(keys: Keys) -> list[str]:
    """The key patterns every worker reads and writes (see the module docs)."""
    ns = glob_escape(keys.namespace)
    c = glob_escape(keys.celery_prefix)
    control = glob_escape(keys.control_queue)
    return [
        f"{ns}:sweep:*", f"{ns}:sweeps", f"{ns}:sweeps:active", f"{ns}:events",
        f"{ns}:workers", f"{ns}:worker:*", f"{ns}:metrics", f"{ns}:history:*",
        f"{ns}:cache:*", f"{ns}:notify:*", f"{ns}:wake:*",
        f"{ns}:resource:*", f"{ns}:fence:resource:*", f"{ns}:waiters:resource:*",
        f"{ns}:pace:tag:*", f"{ns}:pace:host:*",
        f"{ns}:change:*", f"{ns}:change-train", f"{ns}:deadletters", f"{ns}:catalog",
        f"{ns}:migrated:*", f"{ns}:acl-probe:*",
        f"{c}unacked", f"{c}unacked_index", f"{c}unacked_mutex", f"{c}_kombu.binding_deadlines",
        f"{c}{control}", f"{c}{control}{PRIORITY_SEP}*",
        f"{c}_kombu.binding.{control}", f"{c}_kombu.binding_permanent.{control}",
        f"{c}_kombu.binding.celery.pidbox", f"{c}_kombu.binding.reply.celery.pidbox",
        f"{c}*.reply.celery.pidbox",
    ]


def repo_patterns(keys: Keys, repo: str) -> list[str]:
    """The key patterns of ``repo``'s own (its worker reads and writes them)."""
    ns, r = glob_escape(keys.namespace), glob_escape(repo)
    c = glob_escape(keys.celery_prefix)
    queue = glob_escape(keys.repo_queue(repo))
    return [
        f"{ns}:lease:{r}:*", f"{ns}:fence:{r}", f"{ns}:breaker:{r}",
        f"{ns}:waiters:repo:{r}", f"{ns}:waiters:repo:{r}:seen", f"{ns}:pace:repo:{r}",
        f"{c}{queue}", f"{c}{queue}{PRIORITY_SEP}*",
        f"{c}_kombu.binding.{queue}", f"{c}_kombu.binding_permanent.{queue}",
        # its workers' remote-control queues (a worker's hostname: <repo>-<pid>@<host>)
        f"{c}{r}-[0-9]*@*.celery.pidbox", f"{c}{r}-[0-9]*@*.celery.pidbox{PRIORITY_SEP}*",
    ]


def worker_rules(keys: Keys, repo: str, db: int = 0) -> list[str]:
    """The rules of ``repo``'s workers' user (see the module docs)."""
    c = glob_escape(keys.celery_prefix)
    others = glob_escape(keys.repo_queue(""))
    rules = ["resetkeys", "resetchannels", "-@all"]
    rules += [f"~{p}" for p in (*repo_patterns(keys, repo), *shared_patterns(keys))]
    rules += [f"%W~{c}{others}*", f"%R~{c}_kombu.binding.*"]
    rules += [f"&{glob_escape(keys.namespace)}:*", "&" + keys.pidbox_channel(db)]
    commands = ACL_COMMANDS["worker"] + (("select",) if db else ())
    return rules + [f"+{x}" for x in commands]


def role_rules(role: str, keys: Keys, db: int = 0) -> list[str]:
    """The supervisor's (the whole namespace, as a CLI and a worker may) and the
    observer's (read only) rules."""
    ns = glob_escape(keys.namespace)
    rules = ["resetkeys", "resetchannels", "-@all"]
    if role == "observer":
        rules.append(f"%R~{ns}:*")
        commands = ACL_COMMANDS["ui"]
    else:
        rules += [f"~{ns}:*", f"&{ns}:*", "&" + keys.pidbox_channel(db)]
        commands = tuple(dict.fromkeys(ACL_COMMANDS["cli"] + ACL_COMMANDS["worker"]))
    commands = commands + (("select",) if db else ())
    return rules + [f"+{x}" for x in commands]


def users(keys: Keys, repos: Iterable[str], db: int = 0) -> list[AclUser]:
    """Every user ``coord acl`` writes: one per repo of ``repos``, then the roles."""
    out = [AclUser(worker_user(r), "worker", r, worker_rules(keys, r, db)) for r in repos]
    out.append(AclUser(SUPERVISOR, "supervisor", None, role_rules("supervisor", keys, db)))
    out.append(AclUser(OBSERVER, "observer", None, role_rules("observer", keys, db)))
    return out


def _quote(rule: str) -> str:
    """A rule as ``redis-cli`` reads it from a shell line."""
    if PRIORITY_SEP in rule:  # (the two control bytes: redis-cli's "\xHH" in double quotes)
        return '"' + rule.replace("\\", "\\\\").replace(PRIORITY_SEP, "\\x06\\x16") + '"'
    if rule[0] in "~&%" or "|" in rule or "\\" in rule or "*" in rule:
        return "'" + rule + "'"
    return rule


def setuser_line(u: AclUser) -> str:
    """``ACL SETUSER <user> on <rules>`` as one redis-cli line (the password left to
    whoever runs it: ``'>PASSWORD'``; an existing user keeps its passwords)."""
    return " ".join(["ACL", "SETUSER", u.user, "on", *(_quote(r) for r in u.rules)])


def apply(r: redis.Redis, wanted: list[AclUser]) -> dict[str, str]:
    """Send every ``ACL SETUSER``; a user that did not exist gets a new random password
    (returned, user -> password: Redis keeps only its hash); an existing one keeps its own."""
    created: dict[str, str] = {}
    existing = {str(u) for u in r.acl_users()}
    for u in wanted:
        extra: list[str] = []
        if u.user not in existing:
            created[u.user] = secrets.token_urlsafe(24)
            extra.append(">" + created[u.user])
        r.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", u.user, "on", *extra, *u.rules)
    return created
