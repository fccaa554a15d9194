"""Per-repo and per-person Redis ACL users: ``coord acl`` (what each may touch; sending
them to a server is :mod:`coordination.runtime.acl.server`).

A user per repo's workers (``coord-worker-<repo>``), one per role: the supervisor
(``coord-supervisor``: the CLIs that start, steer and wait on sweeps, and a process
that supervises; the whole namespace, as :func:`coordination.connection.preflight.acl_rules`
gives a CLI), the read-only observer (``coord-observer``: the web view, metrics), and
one per person (``coord-person-<name>``: an operator or an observer of some repos).

What a repo's worker may touch, worked out from :mod:`coordination.keys` and what a
worker does around one todo (take its turn, run, finish, carry the sweep on):

- **Its repo's own keys, read and write**: its queue's kombu lists (every priority) and
  bindings, its lease slots, fence, breaker, waiting line, its ``repo:`` pace bucket,
  and its workers' remote-control queues by their exact names (a worker's hostname is
  ``<repo>-<pid>@<host>``: the pid's digits are spelled out, so repo ``api``'s patterns
  never match a queue of repo ``api-2``'s workers).
- **What every worker must share, read and write**: the sweeps' hashes and event
  streams (a sweep spans repos: its one hash holds every todo's checkpoint and its
  counters, which each finish moves), the namespace's event stream and channel, the
  workers' liveness records, the metrics hash, history, the result cache, the
  notification outbox, the shared resources' slots, fences and lines, the wake-up lists
  of waiters, the ``tag:``/``host:`` pace buckets, changes (a verify todo records into
  its change), the shared context (``coord context`` in a todo), kombu's ``unacked``
  bookkeeping (one per namespace), the control queue, the catalog claim and the
  start-up probe keys.
- **Other repos' queues: push only** (a Redis 7 selector, ``(%W~... +lpush +rpush)``):
  a finish sends the todos that follow (an eager successor of another repo) to that
  repo's queue (LPUSH; kombu's redelivery RPUSHes), and kombu reads the bindings to
  route it (``%R~``). Nothing else on another repo's queue: not read or take (LRANGE,
  BRPOP, RPOP, LPOP: NOPERM), not remove or cut (DEL, LTRIM, LREM, LSET, EXPIRE,
  RENAME...), nor another repo's leases, fences, breaker or line. A message names a
  todo of a (signed) spec, never a command.
- **Celery's remote control: listen only.** A worker subscribes to the pidbox channel
  (another selector: ``(&<channel> +psubscribe +subscribe)``), and may not PUBLISH on
  it: a broadcast (``shutdown``, ``pool_restart``...) reaches every worker of the
  namespace, so a worker user that could publish one could stop another repo's workers.
  Its root channels are only those it publishes on (the events channel, Celery's task
  events when Flower turns them on, the start-up probe's).
- **Not the supervision.** The supervision pass re-sends lost messages (reading every
  queue), frees a gone holder's slots and counts lost runs against other repos'
  breakers: a per-repo worker runs with ``COORD_SUPERVISE=0`` (no supervisor thread),
  and the passes are made by processes under ``coord-supervisor`` (``plan sweep
  --wait``, ``sweep watch``, or workers started under that user).

A person's user (``coord acl --person NAME --repos SEL --role ROLE``): an ``operator``
starts, steers and waits on sweeps of the selected repos (what a CLI runs, on the
shared records and on those repos' keys and queues; no other repo's key, no remote
control); an ``observer`` reads the shared records and those repos' keys, and writes
nothing. The selector is resolved to names when the user is written.

A person's sweeps are bounded by name (issue 78). Every key of a sweep starts
``<ns>:sweep:{<id>`` and a sweep's id starts with its plan's (or, ``todo run``, its
todo's) id (:meth:`~coordination.keys.Keys.sweep_scope`), so a person is not given the
workers' ``<ns>:sweep:*``: it reads every sweep's record and events (``<ns>:sweep:{*}``,
``...}:events``: ``sweep list``, ``status``, ``watch``), and reads and writes (an
operator; an observer reads) every key of the sweeps of the plans that run todos of its
repos and of its repos' todos: their records, events, logs and locks. Pausing,
cancelling, resuming or rolling back another repo's sweep writes its record first
(coord's scripts declare it), which Redis refuses (NOPERM) before anything changes, and
another repo's sweep's logs (``:log:``, ``:attempts:``) are not readable. What the
person was given is also kept in ``<ns>:acl:person:<name>`` (written by whoever applies
the user, readable by the person), so its CLI refuses first, saying why. Not granted:
ad-hoc runs (``coord run``: ``RUN-...``, which name no plan), and the freeze is read,
never written (``coord freeze``/``unfreeze`` are the supervisor's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coordination.connection.preflight import (
    ACL_COMMANDS,
    ACL_OBSERVER,
    ACL_PERSON_PREFIX,
    ACL_SUPERVISOR,
    ACL_WORKER_PREFIX,
    is_coord_acl_user,
)
from coordination.keys import Keys, glob_escape, sweep_stem

#: The kombu queue list of a priority above 0 is ``<queue>\x06\x16<priority>``.
PRIORITY_SEP = "\x06\x16"
SUPERVISOR = ACL_SUPERVISOR
OBSERVER = ACL_OBSERVER
WORKER_PREFIX = ACL_WORKER_PREFIX
PERSON_PREFIX = ACL_PERSON_PREFIX
#: A person's roles (``--role``); the first is the default (fail closed: reads only).
PERSON_ROLES = ("observer", "operator")
#: The most digits a worker's pid has (2**32 - 1): one pidbox pattern per length, so a
#: pattern matches a pid (digits only) and never another repo's ``<repo>-<more>``.
PID_DIGITS = 10
#: What a worker user may do to another repo's queue: push a message onto it.
PUSH = ("lpush", "rpush")
#: What a worker user may do on Celery's remote-control channel: listen.
LISTEN = ("psubscribe", "subscribe")


def worker_user(repo: str) -> str:
    """The ACL user of ``repo``'s workers."""
    return f"{WORKER_PREFIX}{repo}"


def person_user(name: str) -> str:
    """The ACL user of the person ``name``."""
    return f"{PERSON_PREFIX}{name}"


#: Whether a user is one ``coord acl`` writes (and so may rotate).
made_by_coord = is_coord_acl_user


@dataclass(frozen=True)
class AclUser:
    """One ``ACL SETUSER``: its user, role, and rules (after ``on`` and the password)."""

    user: str
    role: str  # "worker" (of ``repo``), "supervisor", "observer", "person-<role>"
    repo: str | None
    rules: list[str]
    repos: tuple[str, ...] = ()  # a person's repos (the selector resolved)
    #: a person's plans (and todos) whose sweeps it may write: those running its repos
    plans: tuple[str, ...] = ()
    todos: tuple[str, ...] = ()


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
        f"{ns}:migrated:*", f"{ns}:acl-probe:*", f"{ns}:ctx:*", f"{ns}:ctx-stats",
        f"{c}unacked", f"{c}unacked_index", f"{c}unacked_mutex", f"{c}_kombu.binding_deadlines",
        f"{c}{control}", f"{c}{control}{PRIORITY_SEP}*",
        f"{c}_kombu.binding.{control}", f"{c}_kombu.binding_permanent.{control}",
        f"{c}_kombu.binding.celery.pidbox", f"{c}_kombu.binding.reply.celery.pidbox",
        f"{c}*.reply.celery.pidbox",
    ]


def cli_patterns(keys: Keys) -> list[str]:
    """What a person's CLI shares beyond a worker's: a change's lander record, and the
    webhook deliveries its receiver (``coord forge webhook``, ``coord ui``) has seen."""
    ns = glob_escape(keys.namespace)
    return [*shared_patterns(keys), f"{ns}:change-lander:*", f"{ns}:webhook-delivery:*"]


def pidbox_patterns(keys: Keys, repo: str) -> list[str]:
    """``repo``'s workers' remote-control queues, ``<repo>-<pid>@<host>.celery.pidbox``,
    a pattern per length of the pid (Redis globs have no "one or more digits")."""
    c, r = glob_escape(keys.celery_prefix), glob_escape(repo)
    out = []
    for n in range(1, PID_DIGITS + 1):
        name = f"{c}{r}-{'[0-9]' * n}@*.celery.pidbox"
        out += [name, f"{name}{PRIORITY_SEP}*"]
    return out


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
        *pidbox_patterns(keys, repo),
    ]


def published_channels(keys: Keys, db: int = 0) -> list[str]:
    """The channels a worker publishes on: the events channel, Celery's task events
    (when Flower turns them on), the start-up probe's. Never the pidbox channel."""
    ns, c = glob_escape(keys.namespace), glob_escape(keys.celery_prefix)
    return [glob_escape(keys.events_channel), f"{ns}:acl-probe:*", f"{c}/{db}.celeryev*"]


def selector(rules: Iterable[str]) -> str:
    """One Redis 7 selector: a further set of permissions, each command allowed only on
    the selector's own keys and channels."""
    return "(" + " ".join(rules) + ")"


def worker_rules(keys: Keys, repo: str, db: int = 0) -> list[str]:
    """The rules of ``repo``'s workers' user (see the module docs)."""
    c = glob_escape(keys.celery_prefix)
    others = glob_escape(keys.repo_queue(""))
    rules = ["resetkeys", "resetchannels", "-@all", "clearselectors"]
    rules += [f"~{p}" for p in (*repo_patterns(keys, repo), *shared_patterns(keys))]
    rules.append(f"%R~{c}_kombu.binding.*")
    rules += [f"&{ch}" for ch in published_channels(keys, db)]
    commands = ACL_COMMANDS["worker"] + (("select",) if db else ())
    rules += [f"+{x}" for x in commands]
    rules.append(selector([f"%W~{c}{others}*", *(f"+{x}" for x in PUSH)]))
    # (as it is: Redis compares a PSUBSCRIBE pattern with the ACL's letter by letter)
    rules.append(selector(["&" + keys.pidbox_channel(db),
                           *(f"+{x}" for x in LISTEN)]))
    return rules


def role_rules(role: str, keys: Keys, db: int = 0) -> list[str]:
    """The supervisor's (the whole namespace, as a CLI and a worker may) and the
    observer's (read only) rules."""
    ns = glob_escape(keys.namespace)
    rules = ["resetkeys", "resetchannels", "-@all", "clearselectors"]
    if role == "observer":
        rules.append(f"%R~{ns}:*")
        commands = ACL_COMMANDS["ui"]
    else:
        rules += [f"~{ns}:*", f"&{ns}:*", "&" + keys.pidbox_channel(db)]
        commands = tuple(dict.fromkeys(ACL_COMMANDS["cli"] + ACL_COMMANDS["worker"]))
    commands = commands + (("select",) if db else ())
    return rules + [f"+{x}" for x in commands]


def sweep_read_patterns(keys: Keys) -> list[str]:
    """Every sweep's record and events, read (never its logs): what ``sweep list``,
    ``status`` and ``watch`` read of sweeps a person may not steer."""
    ns = glob_escape(keys.namespace)
    return [f"{ns}:sweep:{{*}}", f"{ns}:sweep:{{*}}:events"]


def person_rules(keys: Keys, repos: Iterable[str], role: str, db: int = 0, *,
                 name: str | None = None, scopes: Iterable[str] = ()) -> list[str]:
    """A person's rules (see the module docs): ``operator`` reads and writes the shared
    records (but the sweeps), ``repos``' keys and every key of the sweeps of ``scopes``
    (plans and todos that run ``repos``' todos) with a CLI's commands; ``observer``
    reads them. Every sweep's record and events, the freeze and its own scope record
    (``name``), it reads."""
    if role not in PERSON_ROLES:
        raise ValueError(f"unknown role {role!r}")
    c, ns = glob_escape(keys.celery_prefix), glob_escape(keys.namespace)
    every_sweep = f"{ns}:sweep:*"
    patterns = [*(p for p in cli_patterns(keys) if p != every_sweep),
                *(p for r in repos for p in repo_patterns(keys, r)),
                *dict.fromkeys(keys.sweep_scope(s) for s in scopes)]
    rules = ["resetkeys", "resetchannels", "-@all", "clearselectors"]
    read = [*sweep_read_patterns(keys), glob_escape(keys.freeze)]
    if name is not None:
        read.append(glob_escape(keys.acl_person(name)))
    rules += [f"%R~{p}" for p in read]
    if role == "observer":
        rules += [f"%R~{p}" for p in patterns]
        commands = ACL_COMMANDS["ui"]
    else:
        rules += [f"~{p}" for p in patterns]
        rules.append(f"%R~{c}_kombu.binding.*")
        rules += [f"&{ch}" for ch in published_channels(keys, db)]
        commands = ACL_COMMANDS["cli"]
    commands = commands + (("select",) if db else ())
    return rules + [f"+{x}" for x in commands]


def users(keys: Keys, repos: Iterable[str], db: int = 0) -> list[AclUser]:
    """Every user ``coord acl`` writes: one per repo of ``repos``, then the roles."""
    out = [AclUser(worker_user(r), "worker", r, worker_rules(keys, r, db)) for r in repos]
    out.append(AclUser(SUPERVISOR, "supervisor", None, role_rules("supervisor", keys, db)))
    out.append(AclUser(OBSERVER, "observer", None, role_rules("observer", keys, db)))
    return out


def person(keys: Keys, name: str, repos: Iterable[str], role: str, db: int = 0, *,
           plans: Iterable[str] = (), todos: Iterable[str] = ()) -> AclUser:
    """The user ``coord acl --person NAME`` writes; ``plans`` and ``todos``: those that
    run todos of ``repos`` (:func:`scopes_of`), whose sweeps it may write."""
    chosen, p, t = tuple(repos), tuple(plans), tuple(todos)
    return AclUser(person_user(name), f"person-{role}", None,
                   person_rules(keys, chosen, role, db, name=name, scopes=(*p, *t)),
                   chosen, p, t)


@dataclass(frozen=True)
class PersonScope:
    """What a person's user was given (:meth:`Keys.acl_person`), as its CLI reads it."""

    name: str
    role: str
    repos: tuple[str, ...]
    plans: tuple[str, ...]
    todos: tuple[str, ...]

    @property
    def user(self) -> str:
        return person_user(self.name)

    def covers(self, sweep_id: str) -> bool:
        """Is ``sweep_id`` a sweep of one of its plans or todos (its keys are the
        person's by :meth:`Keys.sweep_scope`)?"""
        return any(re.fullmatch(re.escape(sweep_stem(n)) + r"-[0-9]{14}-.*", sweep_id)
                   for n in (*self.plans, *self.todos))


def scope_document(u: AclUser, *, who: str, at: str) -> str:
    """The JSON of a person's scope record (:meth:`Keys.acl_person`)."""
    return json.dumps({"user": u.user, "role": u.role.removeprefix("person-"),
                       "repos": list(u.repos), "plans": list(u.plans),
                       "todos": list(u.todos), "by": who, "at": at}, sort_keys=True)


def person_of(user: str | None) -> str | None:
    """The person a Redis user name is (``coord-person-<name>``), else None."""
    if user and user.startswith(PERSON_PREFIX) and len(user) > len(PERSON_PREFIX):
        return user[len(PERSON_PREFIX):]
    return None


def scope_of(rt: Any, name: str) -> PersonScope | None:
    """:func:`read_scope` in ``rt``'s Redis (a :class:`~coordination.runtime.context.Runtime`)."""
    return read_scope(rt.redis, rt.keys, name)


def scope_key(rt: Any, name: str) -> str:
    """The key of a person's scope record (named in a refusal's message)."""
    keys: Keys = rt.keys
    return keys.acl_person(name)


def scope_record(keys: Keys, user: AclUser, *, who: str, at: str) -> tuple[str, str] | None:
    """The scope record of ``user`` (a wanted ACL user) as the printed lines give it: its
    key and JSON; None for a user that is no person's."""
    name = person_of(user.user)
    if name is None:
        return None
    return keys.acl_person(name), scope_document(user, who=who, at=at)


def read_scope(r: object, keys: Keys, name: str) -> PersonScope | None:
    """The person's scope record, None where there is none or it cannot be read (a
    caller refuses then: fail closed)."""
    raw = r.get(keys.acl_person(name))  # type: ignore[attr-defined]
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        return PersonScope(name, str(doc["role"]), tuple(map(str, doc["repos"])),
                           tuple(map(str, doc["plans"])), tuple(map(str, doc["todos"])))
    except (ValueError, KeyError, TypeError):
        return None


def _quote(rule: str) -> str:
    """A rule as ``redis-cli`` reads it from a shell line."""
    if PRIORITY_SEP in rule:  # (the two control bytes: redis-cli's "\xHH" in double quotes)
        return '"' + rule.replace("\\", "\\\\").replace(PRIORITY_SEP, "\\x06\\x16") + '"'
    if rule[0] in "~&%(" or any(ch in rule for ch in "|\\*[? "):
        return "'" + rule + "'"
    return rule


def setuser_line(u: AclUser) -> str:
    """``ACL SETUSER <user> on <rules>`` as one redis-cli line (the password left to
    whoever runs it: ``'>PASSWORD'``; an existing user keeps its passwords)."""
    return " ".join(["ACL", "SETUSER", u.user, "on", *(_quote(r) for r in u.rules)])
