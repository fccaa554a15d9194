"""What every fake forge shares: its state (projects over real bare repositories, pull
requests, labels, reviews, statuses, protection), a Starlette app served by uvicorn on a
free loopback port in a thread, the check of every request and response against the
forge's description (a failure answers 500 and is recorded: the fixture fails the test
at teardown), the token, faults a test injects (rate limits, 5xx), pages, and webhooks
sent to registered URLs with real signatures.

A kind (``github.py``, ``gitlab.py``, ``gitea.py``) adds its routes and its JSON;
GitHub and Gitea, whose APIs are alike, share more in ``repos.py``."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.forges import validation
from tests.forges.gitrepo import BareRepo

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
Answer = tuple[int, Any, dict[str, str]]


class Seen(NamedTuple):
    """One request as the fake received it: the headers lower-cased in their order, the
    body's bytes as sent."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


class Missing(Exception):
    """What a handler raises for something the forge does not have: answered 404 with
    ``body`` (the kind's words), checked against the description as any answer is."""

    def __init__(self, body: Any = None) -> None:
        super().__init__("not found")
        self.body = body


@dataclass
class PR:
    number: int
    head: str
    base: str
    title: str
    body: str
    labels: list[str]
    draft: bool = False
    state: str = "open"  # open | closed | merged
    merge_sha: str | None = None
    head_sha: str | None = None  # frozen when closed or merged
    author: str = "coord-bot"
    #: why GitLab's merge train dropped it (its ``merge_error``), until added again
    merge_error: str | None = None


@dataclass
class Issue:
    """A forge issue (``coord issue link``): its number shares the pull requests' series."""

    number: int
    title: str
    body: str = ""
    state: str = "open"  # open | closed


@dataclass
class Status:
    name: str
    state: str  # the forge's own word
    target_url: str | None = None
    description: str = ""


@dataclass
class Ruleset:
    approvals: int = 0
    checks: list[str] = field(default_factory=list)
    strict: bool = False
    #: a required_linear_history rule (no merge commits)
    linear: bool = False
    #: the pull_request rule's allowed_merge_methods (None: not said)
    methods: list[str] | None = None
    #: a merge_queue rule (its merge_method): a direct merge is refused, pull requests
    #: are enqueued (GraphQL) and merged when the test releases them
    queue: str | None = None


@dataclass
class QueueEntry:
    """A pull request in a merge queue (GitHub's ``MergeQueueEntry``; GitLab's merge
    train)."""

    number: int
    sha: str
    state: str = "QUEUED"
    reads: int = 0  # how often coord read it (a test waits for a read)


@dataclass
class Project:
    name: str
    id: int
    repo: BareRepo
    prs: dict[int, PR] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[str, Status]] = field(default_factory=dict)
    #: every status posted on a commit, oldest first (GitLab lists them all, by id)
    status_log: dict[str, list[Status]] = field(default_factory=dict)
    reviews: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    approvals: int = 0
    checks: list[str] = field(default_factory=list)
    protected: bool = True
    #: the merge queue of the default branch (a ruleset's merge_queue rule; GitLab's
    #: merge train), in order
    queue: list[QueueEntry] = field(default_factory=list)
    #: GitHub's rulesets on the default branch: required approvals, checks, and whether the
    #: head must be up to date (a second source of requirements beside ``protected``'s)
    ruleset: Ruleset | None = None
    #: whether the token may read the classic protection (GitHub: admins only)
    admin: bool = True
    refusals: dict[int, str] = field(default_factory=dict)
    merge_method: str = "merge"  # GitLab's project merge method
    #: GitLab's merge_trains_enabled: an auto-merge puts the merge request on the train
    merge_trains: bool = False
    #: Gitea's repository settings: the merge styles it allows (None: every one)
    allowed_methods: list[str] | None = None
    #: what the forge's mergeability word says of a pull request in the queue (GitHub's
    #: ``mergeable_state``, a free word in its description; GitLab's
    #: ``detailed_merge_status``, one of its enum: ``ci_still_running`` while the train's
    #: pipeline runs); None: as of any other pull request
    queued_word: str | None = None

    @property
    def default_branch(self) -> str:
        return self.repo.default_branch

    def required(self) -> tuple[int, list[str]]:
        """The approvals and checks a merge into the default branch needs: the classic
        protection's and the ruleset's together (the larger count, every check)."""
        approvals, checks = (self.approvals, list(self.checks)) if self.protected else (0, [])
        if self.ruleset is not None:
            approvals = max(approvals, self.ruleset.approvals)
            checks += [c for c in self.ruleset.checks if c not in checks]
        return approvals, checks

    def head_of(self, pr: PR) -> str:
        if pr.head_sha is not None:
            return pr.head_sha
        return self.repo.head(pr.head) or ""


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


@dataclass
class Delivery:
    url: str
    event: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None


class FakeForge:
    """A forge in a thread. ``errors``: every validation failure (must stay empty);
    ``seen``: every request (:class:`Seen`)."""

    kind = ""
    prefix = ""  # the API root's path
    page_param = "per_page"
    #: The most items a page holds whatever the client asks (the tests make it small to
    #: see pages followed).
    max_page = 100

    def __init__(self, root: Path, token: str = "fake-token-0123456789") -> None:
        self.root = root
        self.token = token
        self.projects: dict[str, Project] = {}
        self.errors: list[str] = []
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.hooks: list[tuple[str, str]] = []
        self.deliveries: list[Delivery] = []
        self.lock = threading.RLock()
        # Webhook deliveries, and pushes the hooks reported, in order, on one thread.
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._numbers = 0
        self.port = 0
        self.server: uvicorn.Server | None = None
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = []
        self.add_routes()

    # life -------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.origin + self.prefix

    def start(self) -> FakeForge:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=METHODS)])
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                         daemon=True).start()
        threading.Thread(target=self._deliver, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake forge did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._outbox.put(None)
        if self.server is not None:
            self.server.should_exit = True

    # state a test sets up -------------------------------------------------------------

    def add_project(self, name: str, default_branch: str = "main") -> Project:
        project = Project(name, len(self.projects) + 1,
                          BareRepo(self.root / "remotes", name, default_branch))
        project.repo.notify_pushes(f"{self.origin}/_fake/pushed?project={name}")
        self.projects[name] = project
        return project

    def protect(self, name: str, *, approvals: int = 0, checks: list[str] | None = None) -> None:
        p = self.projects[name]
        p.approvals, p.checks, p.protected = approvals, list(checks or []), True

    def add_ruleset(self, name: str, *, approvals: int = 0, checks: list[str] | None = None,
                    strict: bool = False, linear: bool = False,
                    methods: list[str] | None = None, queue: str | None = None) -> None:
        """A ruleset on the default branch (GitHub's): beside the classic protection, or
        alone (``protected`` False). ``queue``: a merge_queue rule merging by that
        method (``MERGE``, ``SQUASH``, ``REBASE``)."""
        self.projects[name].ruleset = Ruleset(approvals, list(checks or []), strict, linear,
                                              methods, queue)

    def review(self, name: str, number: int, user: str, state: str = "approved") -> None:
        """``state``: approved | changes_requested | commented (coord's words)."""
        with self.lock:
            p = self.projects[name]
            pr = p.prs[number]
            p.reviews.setdefault(number, []).append((user, state, p.head_of(pr)))
            self.review_event(p, pr, user, state)

    def set_check(self, name: str, sha: str, check: str, state: str = "success") -> None:
        """``state``: success | failure | pending (coord's words)."""
        with self.lock:
            p = self.projects[name]
            p.statuses.setdefault(sha, {})[check] = Status(check, self.status_word(state))
            p.status_log.setdefault(sha, []).append(p.statuses[sha][check])
            self.status_event(p, sha, check, state)

    def merge_by_hand(self, name: str, number: int) -> str:
        with self.lock:
            p = self.projects[name]
            pr = p.prs[number]
            return self.do_merge(p, pr, p.head_of(pr), "merge", f"Merge #{number} by hand")

    def close_by_hand(self, name: str, number: int) -> None:
        with self.lock:
            p = self.projects[name]
            pr = p.prs[number]
            pr.head_sha, pr.state = p.head_of(pr), "closed"

    def add_issue(self, name: str, title: str, state: str = "open") -> Issue:
        """An issue opened by a person (no webhook: it existed before the test)."""
        with self.lock:
            issue = Issue(self.number(), title, "", state)
            self.projects[name].issues[issue.number] = issue
            return issue

    def edit_issue_by_hand(self, name: str, number: int, *, title: str | None = None,
                           state: str | None = None) -> None:
        """A person edits, closes or reopens an issue on the forge: its webhook goes."""
        with self.lock:
            p = self.projects[name]
            issue = p.issues[number]
            action = "edited" if title is not None else ""
            if title is not None:
                issue.title = title
            if state is not None and state != issue.state:
                issue.state = state
                action = "closed" if state == "closed" else "reopened"
            self.issue_event(p, issue, action or "edited")

    def fail(self, method: str, path: str, status: int, *, headers: dict[str, str] | None = None,
             body: Any = None, times: int = 1) -> None:
        """The next ``times`` requests matching answer ``status`` (a rate limit, a 5xx):
        the infrastructure's answers, not an operation's, so not checked against the
        description (the request still is)."""
        self.faults.append(Fault(method, re.compile(path), status, headers or {},
                                 body if body is not None else {"message": "injected"}, times))

    def add_webhook(self, url: str, secret: str) -> None:
        self.hooks.append((url, secret))

    # the merge queue (GitHub) or train (GitLab), as the test drives it --------------------

    def queued(self, name: str) -> list[int]:
        """The pull requests in ``name``'s merge queue, first first."""
        with self.lock:
            return [e.number for e in self.projects[name].queue]

    def queue_reads(self, name: str, number: int) -> int:
        """How often coord read ``number``'s entry (-1: not queued)."""
        with self.lock:
            return next((e.reads for e in self.projects[name].queue if e.number == number), -1)

    def release(self, name: str, number: int) -> str:
        """The queue merges ``number`` (its queued head, by the queue's merge method)."""
        with self.lock:
            p = self.projects[name]
            [e] = [x for x in p.queue if x.number == number]
            p.queue.remove(e)
            return self.do_merge(p, p.prs[number], e.sha, self.queue_method(p),
                                 f"Merge pull request #{number}")

    def dequeue(self, name: str, number: int, reason: str | None = None) -> None:
        """The queue removes ``number`` unmerged (it stays open); ``reason``: what the
        forge says of it, where it says (GitLab's ``merge_error``)."""
        with self.lock:
            p = self.projects[name]
            p.queue = [e for e in p.queue if e.number != number]
            p.prs[number].merge_error = reason

    def queue_method(self, p: Project) -> str:
        """The merge method the queue merges by (the kind's)."""
        return "merge"

    # the forge's own semantics (what a merge does) --------------------------------------

    def number(self) -> int:
        self._numbers += 1
        return self._numbers

    def blockers(self, p: Project, pr: PR) -> list[str]:
        """Why this forge would not merge ``pr`` now (empty: it would)."""
        out = []
        if pr.state != "open":
            return [f"pull request is {pr.state}"]
        if pr.draft:
            out.append("draft")
        if p.repo.conflicts(pr.base, pr.head):
            out.append("conflict")
        latest: dict[str, str] = {}
        for user, state, _sha in p.reviews.get(pr.number, []):
            if state != "commented" or user not in latest:
                latest[user] = state
        if any(s == "changes_requested" for s in latest.values()):
            out.append("changes requested")
        approvals, checks = p.required()
        if sum(s == "approved" for s in latest.values()) < approvals:
            out.append("review required")
        statuses = p.statuses.get(p.head_of(pr), {})
        for check in checks:
            s = statuses.get(check)
            if s is None or self.check_word(s.state) != "success":
                out.append(f"required check {check}")
        return out

    def do_merge(self, p: Project, pr: PR, sha: str, method: str, message: str) -> str:
        merged = p.repo.merge(pr.base, pr.head, sha, method, message)
        pr.head_sha, pr.state, pr.merge_sha = sha, "merged", merged
        self.pr_event(p, pr, "closed")
        return merged

    # hooks a kind fills in --------------------------------------------------------------

    def add_routes(self) -> None:
        raise NotImplementedError

    def route(self, method: str, pattern: str, handler: Callable[..., Answer]) -> None:
        self.routes.append((method, re.compile("^" + self.prefix + pattern + "$"), handler))

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def status_word(self, state: str) -> str:
        return state

    def check_word(self, word: str) -> str:
        return word

    def pr_event(self, p: Project, pr: PR, action: str) -> None: ...

    def review_event(self, p: Project, pr: PR, user: str, state: str) -> None: ...

    def status_event(self, p: Project, sha: str, check: str, state: str) -> None: ...

    def push_event(self, p: Project, ref: str, before: str, after: str) -> None: ...

    def issue_event(self, p: Project, issue: Issue, action: str) -> None: ...

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        raise NotImplementedError

    # webhooks ---------------------------------------------------------------------------

    def send(self, event: str, payload: dict[str, Any], headers: dict[str, str]) -> None:
        body = json.dumps(payload).encode()
        for url, secret in self.hooks:
            h = {"Content-Type": "application/json", **headers, **self.sign(body, secret)}
            self._outbox.put(Delivery(url, event, body, h))

    @staticmethod
    def hmac_hex(body: bytes, secret: str) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def _deliver(self) -> None:
        while (d := self._outbox.get()) is not None:
            if isinstance(d, tuple):
                if d[0] == "settled":
                    d[1].set()
                else:
                    with self.lock:
                        self._pushed(d[1], d[2])
                continue
            req = urllib.request.Request(d.url, data=d.body, headers=d.headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    d.status = resp.status
            except urllib.error.HTTPError as exc:
                d.status = exc.code
            except OSError:
                d.status = -1
            self.deliveries.append(d)

    # the HTTP side ----------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        if request.url.path == "/_fake/pushed":
            # From the post-receive hook, maybe of the fake's own merge (which holds the
            # lock until git push returns): queued, handled after.
            self._outbox.put(("pushed", request.query_params["project"], body))  # type: ignore[arg-type]
            return Response(b"", status_code=204)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = list(request.query_params.multi_items())
        # The path as sent (GitLab's project ids hold %2F, which the decoded path loses).
        path = request.scope.get("raw_path", b"").decode() or request.url.path
        status, data, extra = await run_in_threadpool(
            self.handle, request.method, path.split("?", 1)[0], query, headers, body)
        raw = b"" if data is None else json.dumps(data).encode()
        return Response(raw, status_code=status, headers=extra,
                        media_type="application/json" if raw else None)

    def handle(self, method: str, path: str, query: list[tuple[str, str]],
               headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.seen.append(Seen(method, path, query, headers, body))
            error = validation.check_request(self.kind, self.origin, method, path, query,
                                             headers, body)
            if error:
                self.errors.append(error)
                return 500, {"message": error}, {}
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    return fault.status, fault.body, dict(fault.headers)
            if not self.authorized(headers):
                return 401, {"message": "Bad credentials"}, {}
            try:
                answer = self._dispatch(method, path, query, body)
            except Missing as missing:
                answer = 404, missing.body, {}
            except Exception as exc:  # a bug of the fake: it fails the test too
                self.errors.append(f"{method} {path}: the fake raised {exc!r}")
                return 500, {"message": repr(exc)}, {}
            status, data, extra = answer
            raw = b"" if data is None else json.dumps(data).encode()
            error = validation.check_response(self.kind, self.origin, method, path, query,
                                              headers, body, status, raw)
            if error:
                self.errors.append(error)
                return 500, {"message": error}, {}
            return answer

    def _dispatch(self, method: str, path: str, query: list[tuple[str, str]],
                  body: bytes) -> Answer:
        data = json.loads(body) if body else None
        for m, pattern, handler in self.routes:
            match = pattern.match(path)
            if m == method and match:
                return handler(query=dict(query), body=data, pairs=query, **match.groupdict())
        return 404, {"message": "Not Found"}, {}

    def page(self, items: list[Any], query: dict[str, str], path: str,
             key: str | None = None, wrap: dict[str, Any] | None = None) -> Answer:
        """One page of ``items`` and the Link header (and GitLab's X-Next-Page)."""
        size = min(int(query.get(self.page_param) or 30), self.max_page)
        number = int(query.get("page") or 1)
        chunk = items[(number - 1) * size: number * size]
        headers: dict[str, str] = {}
        if number * size < len(items):
            nxt = {**query, "page": str(number + 1)}
            headers["Link"] = f'<{self.origin}{path}?{urlencode(nxt)}>; rel="next"'
            headers["X-Next-Page"] = str(number + 1)
        if key is not None:
            return 200, {**(wrap or {}), key: chunk}, headers
        return 200, chunk, headers

    def _pushed(self, name: str, body: bytes) -> None:
        p = self.projects[name]
        for line in body.decode().splitlines():
            before, after, ref = line.split()
            self.push_event(p, ref, before, after)
            branch = ref.removeprefix("refs/heads/")
            for pr in p.prs.values():
                if pr.state == "open" and pr.head == branch:
                    self.pr_event(p, pr, "synchronize")

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every push reported and webhook queued so far is handled."""
        deadline = time.monotonic() + timeout
        while True:
            done = threading.Event()
            self._outbox.put(("settled", done))
            if not done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("the fake forge's outbox did not drain")
            if self._outbox.empty():
                return
