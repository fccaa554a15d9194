"""`coord doctor`: what is wrong with this deployment, each finding with its fix.

A check is one small function of :class:`Doctor` returning :class:`Finding`s; the
checks run in the order of :data:`CHECKS`, and adding one is one function and its
place in that list. A check reads what it needs through the doctor's cached reads
(the runtime, the server's facts, the catalog, the live workers), so the Redis
server is asked each thing once however many checks look at it; a read that fails
turns the checks that need it into one problem (Redis unreachable) or a
``not_checked`` note, never a traceback.

Levels: ``problem`` (coord will lose or stall work: exit 1), ``warning`` (worth
fixing, nothing breaks yet), ``ok``, ``not_checked`` (said why).
"""

from __future__ import annotations

import functools
import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, TypeVar

from coordination.catalog.file.store import CatalogStore
from coordination.connection.sentinel import SentinelFacts, sentinel_facts
from coordination.errors import CoordError
from coordination.planner.validate import APPROVERS_FIX, unproven_gates
from coordination.redis_url import is_sentinel, redact_url, scrub
from coordination.runtime.context import Runtime
from coordination.settings import Settings
from coordination.trust import sshsig

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog
    from coordination.connection.server_facts import ServerFacts
    from coordination.runtime.workers import WorkerClock, WorkerRecord

#: coord's scripts call GETDEL (Redis 6.2); nothing newer is needed.
MIN_REDIS = (6, 2)
#: Clocks further apart than this (seconds) are a problem: durations, deadlines,
#: breaker cooldowns and a waiter's 5 s liveness are compared across hosts.
CLOCK_TOLERANCE = 1.0
MEMORY_WARN, MEMORY_PROBLEM = 0.75, 0.90
LATENCY_WARN_MS, LATENCY_PROBLEM_MS = 5.0, 50.0


class Level(StrEnum):
    ok = "ok"
    warning = "warning"
    problem = "problem"
    not_checked = "not_checked"


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str
    fix: str | None = None


class FindingDocument(TypedDict):
    check: str
    level: str
    message: str
    fix: str | None


class Report(TypedDict):
    """The `coord doctor --json` document."""

    ok: bool
    problems: int
    warnings: int
    redis: str
    findings: list[FindingDocument]


T = TypeVar("T")


class Unavailable(Exception):
    """A read a check needs failed; ``finding`` says what (already reported once)."""


def _ok(check: str, message: str) -> Finding:
    return Finding(check, Level.ok, message)


@dataclass
class Doctor:
    """What the checks share: settings, the catalog's path, the repos this machine
    serves (None: those of its live workers; embedded: every repo), and cached reads."""

    settings: Settings
    catalog_path: Path
    served: Sequence[str] | None = None
    runtime_factory: Callable[[], Runtime] | None = None
    host: str = field(default_factory=socket.gethostname)

    @property
    def embedded(self) -> bool:
        return self.settings.embedded

    @property
    def where(self) -> str:
        if self.settings.redis_url:
            return redact_url(self.settings.redis_url)
        return f"embedded (beside {self.catalog_path})"

    @functools.cached_property
    def _runtime(self) -> Runtime | Exception:
        return _attempt(self.runtime_factory or (
            lambda: Runtime.create(self.settings, catalog=self.catalog_path)))

    def runtime(self) -> Runtime:
        return _available(self._runtime)

    @functools.cached_property
    def _facts(self) -> ServerFacts | Exception:
        return _attempt(lambda: self.runtime().server_facts())

    def facts(self) -> ServerFacts:
        return _available(self._facts)

    @functools.cached_property
    def _catalog(self) -> Catalog | Exception:
        return _attempt(lambda: CatalogStore(self.catalog_path).load(), (CoordError, OSError))

    def catalog(self) -> Catalog:
        return _available(self._catalog)

    @functools.cached_property
    def _workers(self) -> list[WorkerRecord] | Exception:
        return _attempt(lambda: self.runtime().workers.live())

    def workers(self) -> list[WorkerRecord]:
        return _available(self._workers)


def _attempt(read: Callable[[], T],
             errors: tuple[type[Exception], ...] = (Exception,)) -> T | Exception:
    """What ``read`` returns, or the error it raised: a read the checks share is made
    once, and a failed one is reported as a finding, once."""
    try:
        return read()
    except errors as exc:
        return exc


def _available(got: T | Exception) -> T:
    """A shared read's result; :class:`Unavailable` (saying why) when it failed."""
    if isinstance(got, Exception):
        raise Unavailable(str(got))
    return got


Check = Callable[[Doctor], list[Finding]]


# -- Redis -----------------------------------------------------------------------------
def check_reachable(d: Doctor) -> list[Finding]:
    rt = d._runtime
    if isinstance(rt, CoordError):  # e.g. the namespace belongs to another catalog
        return [Finding("redis", Level.problem, rt.message,
                        rt.hint or "fix COORD_REDIS_URL or COORD_NAMESPACE")]
    try:
        f = d.facts()
    except Unavailable as exc:
        return [Finding("redis", Level.problem, f"cannot read Redis at {d.where}: {exc}",
                        "start Redis, or fix COORD_REDIS_URL (unset: embedded mode)")]
    return [_ok("redis", f"{d.where} answers ({f.mode or 'standalone'}, "
                         f"{f.role or 'unknown role'})")]


def check_role(d: Doctor) -> list[Finding]:
    f = d.facts()
    if f.role == "slave":
        return [Finding("redis.role", Level.problem,
                        "this Redis is a replica: every write coord makes fails (READONLY)",
                        "point COORD_REDIS_URL at the master (or at Sentinel)")]
    return []


def check_version(d: Doctor) -> list[Finding]:
    f = d.facts()
    if not f.version:
        return [Finding("redis.version", Level.not_checked,
                        f"INFO was refused ({f.refused.get('info', 'no answer')})",
                        "allow INFO to the user coord connects as (+info)")]
    try:
        have = tuple(int(x) for x in f.version.split(".")[:2])
    except ValueError:
        return [Finding("redis.version", Level.warning, f"unknown version {f.version!r}")]
    if have < MIN_REDIS:
        need = ".".join(map(str, MIN_REDIS))
        return [Finding("redis.version", Level.problem,
                        f"Redis {f.version}: coord's Lua scripts need {need} or later (GETDEL)",
                        f"upgrade Redis to {need} or later")]
    return [_ok("redis.version", f"Redis {f.version}")]


def check_eviction(d: Doctor) -> list[Finding]:
    f = d.facts()
    if f.maxmemory_policy is None:
        return [Finding("redis.maxmemory-policy", Level.not_checked,
                        "neither INFO nor CONFIG GET maxmemory-policy answered",
                        "check it by hand: it must be noeviction")]
    if f.maxmemory_policy != "noeviction":
        return [Finding(
            "redis.maxmemory-policy", Level.problem,
            f"maxmemory-policy is {f.maxmemory_policy}: under memory pressure Redis evicts "
            "coord's leases, checkpoints and queued messages (lost keys mid-sweep)",
            "CONFIG SET maxmemory-policy noeviction, and `maxmemory-policy noeviction` in "
            "redis.conf")]
    return [_ok("redis.maxmemory-policy", "noeviction")]


def check_persistence(d: Doctor) -> list[Finding]:
    f = d.facts()
    if f.aof_enabled is None:
        return [Finding("redis.persistence", Level.not_checked, "INFO persistence was refused",
                        "check by hand: appendonly yes")]
    out: list[Finding] = []
    if f.aof_last_write_ok is False or f.rdb_last_bgsave_ok is False:
        out.append(Finding("redis.persistence", Level.problem,
                           "Redis's last write to disk failed (INFO persistence)",
                           "look at Redis's log: disk full or not writable?"))
    if f.aof_enabled:
        return out or [_ok("redis.persistence", "appendonly yes")]
    if f.rdb_save is None:
        out.append(Finding("redis.persistence", Level.warning,
                           "appendonly is off and CONFIG GET save was refused: persistence "
                           "unknown", "CONFIG SET appendonly yes (and in redis.conf)"))
    elif not f.rdb_save.strip():
        out.append(Finding(
            "redis.persistence", Level.problem,
            "no persistence (appendonly no, no save points): a Redis restart loses every "
            "sweep, lease, checkpoint and queued message",
            "CONFIG SET appendonly yes, and `appendonly yes` in redis.conf"))
    else:
        out.append(Finding(
            "redis.persistence", Level.warning,
            f"snapshots only (save {f.rdb_save}): a crash loses what changed since the last "
            "one", "CONFIG SET appendonly yes, and `appendonly yes` in redis.conf"))
    return out


def check_memory(d: Doctor) -> list[Finding]:
    f = d.facts()
    if f.used_memory is None:
        return [Finding("redis.memory", Level.not_checked, "INFO memory was refused")]
    used = f.used_memory
    limit, what = (f.maxmemory, "maxmemory") if f.maxmemory else (
        f.total_system_memory, "the machine's memory")
    if not limit:
        return [_ok("redis.memory", f"{_mib(used)} used, no limit known")]
    share = used / limit
    text = f"{_mib(used)} used of {what} ({_mib(limit)}, {share:.0%})"
    if share >= MEMORY_PROBLEM:
        return [Finding("redis.memory", Level.problem, text + ": writes will soon be refused",
                        "raise maxmemory, or shorten COORD_RETENTION_DAYS / COORD_HISTORY_DAYS")]
    if share >= MEMORY_WARN:
        return [Finding("redis.memory", Level.warning, text,
                        "raise maxmemory before it fills (noeviction refuses writes then)")]
    return [_ok("redis.memory", text)]


def check_latency(d: Doctor) -> list[Finding]:
    f = d.facts()
    if f.latency_ms is None:
        return []
    text = f"round trip {f.latency_ms:.2f} ms (median of 10; max {f.latency_max_ms:.2f} ms)"
    if f.latency_ms >= LATENCY_PROBLEM_MS:
        return [Finding("redis.latency", Level.problem, text + ": every todo costs several",
                        "run Redis near the workers; look for a slow network or a busy server")]
    if f.latency_ms >= LATENCY_WARN_MS:
        return [Finding("redis.latency", Level.warning, text,
                        "run Redis near the workers (a todo costs a few round trips)")]
    return [_ok("redis.latency", text)]


def check_sentinel(d: Doctor) -> list[Finding]:
    """A sentinel:// URL: what the sentinels say of the master, its replicas and their
    quorum (:func:`coordination.connection.sentinel.sentinel_facts`)."""
    url = d.settings.redis_url or ""
    if not is_sentinel(url):
        return []
    check = "redis.sentinel"
    try:
        f = sentinel_facts(url)
    except Exception as exc:  # noqa: BLE001 - reported as a finding
        return [Finding(check, Level.problem, f"cannot ask the sentinels: {scrub(str(exc), url)}",
                        "check the sentinels' hosts and ports in COORD_REDIS_URL")]
    if not f.answered:
        return [Finding(check, Level.problem,
                        f"no sentinel answered ({', '.join(f.silent)})",
                        "start the sentinels, or fix their hosts and ports in COORD_REDIS_URL")]
    if f.address is None:
        return [Finding(check, Level.problem,
                        f"the sentinels know no master {f.master!r} ({f.quorum_says})",
                        "check ?master= in COORD_REDIS_URL against their 'sentinel monitor' "
                        "line")]
    out: list[Finding] = []
    if f.silent:
        out.append(Finding(check, Level.warning,
                           f"{len(f.silent)} of the URL's sentinels did not answer: "
                           f"{', '.join(f.silent)}",
                           "start them, or drop them from COORD_REDIS_URL"))
    if f.master_down:
        out.append(Finding(check, Level.problem,
                           f"the sentinels see the master {f.master!r} at {f.address} down",
                           "a failover should follow; if none does, check the replicas"))
    if f.replicas == 0:
        # A warning: workers go on (their writes unconfirmed, each worker's log says so);
        # what is at risk is the next failover, which has nowhere to go.
        out.append(Finding(check, Level.warning,
                           "no replica in sync with the master: coord's writes go on "
                           "unconfirmed, and a failover has nowhere to go (losing the master "
                           "loses them)",
                           "start a replica (replicaof the master) and let it sync"))
    elif f.replicas == 1:
        out.append(Finding(check, Level.warning,
                           "one replica in sync: after a failover none is left"
                           + (f" ({f.replicas_down} more down)" if f.replicas_down else ""),
                           "run two replicas or more"))
    out += _quorum(f)
    if f.quorum_ok and f.sentinels < 3:
        out.append(Finding(check, Level.warning,
                           f"{f.sentinels} sentinel(s) monitor the master: one more lost and "
                           "no failover can be agreed", "run three sentinels or more"))
    if not any(x.level == Level.problem for x in out):
        out.append(_ok(check, f"master {f.master!r} at {f.address}: {f.replicas} replica(s) "
                              f"in sync, {f.sentinels} sentinels, quorum {f.quorum} "
                              f"({f.quorum_says})"))
    return out


def _quorum(f: SentinelFacts) -> list[Finding]:
    """Can the sentinels still agree a failover? A problem when not, or when it is not
    known: no quorum means no failover, whatever else is fine.

    SENTINEL CKQUORUM alone is not enough: a sentinel counts another one usable until
    it has looked down for ``down-after-milliseconds`` (30 s by default), so right after
    two of three sentinels die it still answers OK. So the sentinels that did not answer
    here count against the quorum too: at most ``sentinels - silent`` can vote, and a
    failover needs the quorum to see the master down and a majority of all of them to
    authorize it."""
    check = "redis.sentinel"
    ask = f"`redis-cli -p PORT SENTINEL CKQUORUM {f.master}` on a sentinel"
    majority = f.sentinels // 2 + 1
    need = max(majority, f.quorum or 0)
    can_vote = f.sentinels - len(f.silent)
    if f.quorum_ok is not False and f.silent and can_vote < need:
        return [Finding(check, Level.problem,
                        f"no quorum: {len(f.silent)} of {f.sentinels} sentinels did not answer "
                        f"({', '.join(f.silent)}); at most {can_vote} can vote, and a failover "
                        f"needs {need} (quorum {f.quorum}, majority {majority}): losing the "
                        "master now stops coord",
                        f"start the silent sentinels, then check with {ask} (it must say OK)")]
    if f.quorum_ok is False:
        return [Finding(check, Level.problem,
                        f"no quorum: the sentinels cannot authorize a failover "
                        f"({f.quorum_says})",
                        f"start the sentinels that are down (three or more, with a quorum of a "
                        f"majority of them), then check with {ask} (it must say OK)")]
    if f.quorum_ok is None:
        return [Finding(check, Level.problem,
                        f"cannot tell whether the sentinels can authorize a failover "
                        f"(SENTINEL CKQUORUM: {f.quorum_says or 'no answer'})",
                        f"check with {ask} (it must say OK)")]
    return []


# -- catalog and checkouts ---------------------------------------------------------------
def check_catalog(d: Doctor) -> list[Finding]:
    try:
        cat = d.catalog()
    except Unavailable as exc:
        return [Finding("catalog", Level.problem, str(exc),
                        "fix the file where the message says (`coord plan validate PLAN`)")]
    return [_ok("catalog", f"{d.catalog_path}: {len(cat.repos)} repos, "
                           f"{len(cat.coordination.todos)} todos")]


def _served(d: Doctor, cat: Catalog) -> tuple[list[str], str]:
    if d.served is not None:
        return list(d.served), "named with --repo"
    if d.embedded:
        return [r.name for r in cat.repos], "embedded: this machine runs every repo's todos"
    names = sorted({r for w in d.workers() if w.host == d.host for r in w.repos})
    return names, f"served by live workers on {d.host}"


def check_checkouts(d: Doctor) -> list[Finding]:
    cat = d.catalog()
    try:
        names, why = _served(d, cat)
    except Unavailable as exc:
        return [Finding("checkouts", Level.not_checked, f"workers unreadable: {exc}",
                        "name this machine's repos: coord doctor --repo NAME")]
    if not names:
        return [Finding("checkouts", Level.not_checked,
                        f"no live worker on {d.host}: no repo known to be served here",
                        "name this machine's repos: coord doctor --repo NAME")]
    base = d.catalog_path.absolute().parent
    repos = {r.name: r for r in cat.repos}
    out: list[Finding] = []
    for name in names:
        repo = repos.get(name)
        if repo is None:
            out.append(Finding(f"checkout.{name}", Level.problem,
                               f"{name} is not a repo of the catalog ({why})",
                               "add it (coord repo add) or stop serving it"))
            continue
        path = repo.checkout(base)
        if path.is_dir():
            out.append(_ok(f"checkout.{name}", f"{path} ({why})"))
        else:
            out.append(Finding(f"checkout.{name}", Level.problem,
                               f"{name}'s checkout {path} is missing ({why})",
                               f"clone {name} there, or fix its `path:` in the catalog "
                               "(a worker started with --path uses that directory instead)"))
    return out


def check_approvers(d: Doctor) -> list[Finding]:
    """Do the catalog's gates know who approves them? Without ``approvers:`` anyone
    can approve under any name (COORD_USER); with it, its allowed-signers file must
    be there, name the gates' approvers, and ssh-keygen must be installed."""
    cat = d.catalog()
    named = sorted({u for t in cat.coordination.todos if t.gate is not None
                    for u in t.gate.from_})
    if not any(t.gate is not None for t in cat.coordination.todos):
        return [_ok("approvers", "no gates in the catalog")]
    if cat.approvers is None:
        unproven = unproven_gates(cat)
        if unproven:  # a gate asks for particular or several people: a name proves neither
            return [Finding("approvers", Level.problem,
                            f"{len(unproven)} gate(s) ask for particular or several people "
                            "but approvers are self-declared (anyone approves under any "
                            "name, COORD_USER): " + "; ".join(f"{tid}: {why.split(' but ')[0]}"
                                                              for tid, why in unproven[:10]),
                            APPROVERS_FIX)]
        return [Finding("approvers", Level.warning,
                        "approvers are self-declared: anyone can approve a gate under any "
                        "name (COORD_USER)",
                        "add `approvers: {allowed_signers: FILE}` (git's allowed-signers "
                        "format) to the catalog, so approvals are proven by SSH signatures")]
    allowed = Path(cat.approvers.allowed_signers).expanduser()
    if not allowed.is_absolute():
        allowed = d.catalog_path.absolute().parent / allowed
    if shutil.which("ssh-keygen") is None:
        return [Finding("approvers", Level.problem, "ssh-keygen is not installed: no approval "
                        "can be signed or checked here", "install OpenSSH's client")]
    try:
        principals = sshsig.principals(allowed)
    except OSError as exc:
        return [Finding("approvers", Level.problem,
                        f"approvers' allowed-signers file {allowed} is unreadable: {exc}",
                        "create it (one `PRINCIPAL KEYTYPE KEY` line per approver) or fix "
                        "approvers.allowed_signers in the catalog")]
    missing = [u for u in named if u not in principals]
    if missing:
        return [Finding("approvers", Level.warning,
                        f"gates name approvers with no key in {allowed}: {', '.join(missing)} "
                        "(their approvals cannot count)",
                        f"add their SSH public keys to {allowed}")]
    return [_ok("approvers", f"approvals proven by SSH signatures: {len(principals)} "
                             f"principals in {allowed}")]


# -- workers and clocks ------------------------------------------------------------------
def check_workers(d: Doctor) -> list[Finding]:
    if d.embedded:
        return [_ok("workers", "embedded: workers run inside each sweeping process")]
    cat = d.catalog()
    rt = d.runtime()
    live: dict[str, int] = {}
    for w in d.workers():
        if not w.stopping:
            for repo in w.repos:
                live[repo] = live.get(repo, 0) + 1
    names = [r.name for r in cat.repos]
    waiting = rt.queue_lengths([rt.keys.repo_queue(n) for n in names])
    out: list[Finding] = []
    for name in names:
        n, queued = live.get(name, 0), waiting.get(rt.keys.repo_queue(name), 0)
        if n:
            out.append(_ok(f"workers.{name}", f"{n} live worker{'s' if n != 1 else ''}"))
        elif queued:
            out.append(Finding(f"workers.{name}", Level.problem,
                               f"{queued} message{'s' if queued != 1 else ''} wait in "
                               f"{rt.keys.repo_queue(name)} and no live worker serves {name}",
                               f"start one on {name}'s machine: coord worker --repo {name}"))
        else:
            out.append(Finding(f"workers.{name}", Level.warning,
                               f"no live worker serves {name}: its todos would wait",
                               f"start one on {name}'s machine: coord worker --repo {name}"))
    return out


def check_todo_users(d: Doctor) -> list[Finding]:
    """A worker holding a signing key whose todos run as root is a warning: a root todo
    reads any process's /proc/<pid>/environ and memory, the worker's key with them
    (not dumpable stops only other users: `coord worker --todo-user NAME`)."""
    if d.embedded:
        return []
    out: list[Finding] = []
    for w in d.workers():
        if w.keyed and w.todos_as_root:
            out.append(Finding(
                "workers.todo_user", Level.warning,
                f"worker {w.name} ({w.host}) holds the signing key and runs its todos as "
                "root: a todo (a repo's code) can read the key from the worker's "
                "/proc/<pid>/environ or memory",
                "restart it with --todo-user NAME (a user with access to the checkouts), "
                "or run it as that user"))
    if not out:
        keyed = sum(1 for w in d.workers() if w.keyed)
        out.append(_ok("workers.todo_user",
                       f"no worker holding a key runs todos as root ({keyed} hold one)"))
    return out


def check_freeze(d: Doctor) -> list[Finding]:
    """A frozen fleet (`coord freeze`) is a warning: meant, but nothing new starts."""
    from coordination.runtime.freeze import describe  # lazy: only this check reads it

    rec = d.runtime().freeze().get()
    if rec is None:
        return [_ok("freeze", "not frozen: sweeps and landings may start")]
    return [Finding("freeze", Level.warning,
                    f"the fleet is {describe(rec)}: no new sweep, resume, firing, trigger or "
                    "landing starts", "when the emergency is over: coord unfreeze")]


def check_clocks(d: Doctor) -> list[Finding]:
    f = d.facts()
    out: list[Finding] = []
    if f.clock_offset is None:
        out.append(Finding("clock", Level.not_checked, "TIME was refused"))
    elif abs(f.clock_offset) > CLOCK_TOLERANCE:
        out.append(Finding("clock", Level.problem,
                           f"this machine's clock is {-f.clock_offset or 0.0:+.3f} s off Redis's",
                           "synchronise clocks (chrony, systemd-timesyncd) here or on Redis's "
                           "host"))
    else:
        out.append(_ok("clock", f"this machine is {-f.clock_offset or 0.0:+.3f} s from Redis"))
    return out


def check_worker_clocks(d: Doctor) -> list[Finding]:
    if d.embedded:
        return []  # its workers run in the process that sweeps: this machine's clock
    out: list[Finding] = []
    clocks: list[WorkerClock] = d.runtime().worker_clocks()
    for c in clocks:
        w = c.record
        if c.skew is None:
            continue
        if abs(c.skew) > CLOCK_TOLERANCE:
            out.append(Finding(f"clock.{w.name}", Level.problem,
                               f"worker {w.name}'s clock ({w.host}) is {c.skew:+.3f} s off "
                               "Redis's", f"synchronise the clock of {w.host} (chrony, "
                               "systemd-timesyncd)"))
    if clocks and all(c.skew is not None and abs(c.skew) <= CLOCK_TOLERANCE for c in clocks):
        worst = max(abs(c.skew or 0.0) for c in clocks)
        out.append(_ok("clock.workers", f"{len(clocks)} workers within {worst:.3f} s of Redis"))
    return out


#: The checks, in the order they run and are shown.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("redis", check_reachable),
    ("redis.role", check_role),
    ("redis.version", check_version),
    ("redis.maxmemory-policy", check_eviction),
    ("redis.persistence", check_persistence),
    ("redis.memory", check_memory),
    ("redis.latency", check_latency),
    ("redis.sentinel", check_sentinel),
    ("catalog", check_catalog),
    ("checkouts", check_checkouts),
    ("approvers", check_approvers),
    ("workers", check_workers),
    ("workers.todo_user", check_todo_users),
    ("freeze", check_freeze),
    ("clock", check_clocks),
    ("clock.workers", check_worker_clocks),
)


def run(d: Doctor, checks: Sequence[tuple[str, Check]] = CHECKS) -> list[Finding]:
    """Every check's findings, in order. A check whose read failed (reported by the
    check that owns the read) says ``not_checked`` with the reason."""
    out: list[Finding] = []
    for name, check in checks:
        try:
            out += check(d)
        except Unavailable as exc:
            out.append(Finding(name, Level.not_checked, f"not checked: {exc}"))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the rest
            out.append(Finding(name, Level.not_checked, f"not checked: {type(exc).__name__}: "
                                                        f"{exc}"))
    return out


def report(d: Doctor, findings: list[Finding]) -> Report:
    return {
        "ok": not any(f.level == Level.problem for f in findings),
        "problems": sum(f.level == Level.problem for f in findings),
        "warnings": sum(f.level == Level.warning for f in findings),
        "redis": d.where,
        "findings": [{"check": f.check, "level": str(f.level), "message": f.message,
                      "fix": f.fix} for f in findings],
    }


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
