"""A forge's issues: what ``coord issue link`` mirrors a catalog issue to (GitHub's and
Gitea's issues, GitLab's project issues).

Four calls, over the REST clients' own HTTP session (:class:`~coordination.forge.http.
ForgeHTTP`: the token, rate limits, retries and refusals as every other call has them),
never new methods on the clients themselves:

- GitHub, Gitea/Forgejo: ``POST .../issues`` (title, body), ``GET .../issues/{n}``,
  ``PATCH .../issues/{n}`` (title, ``state: open|closed``), ``POST .../issues/{n}/comments``;
- GitLab: ``POST .../issues`` (title, description), ``GET .../issues/{iid}``,
  ``PUT .../issues/{iid}`` (title, ``state_event: close|reopen``), ``POST .../issues/{iid}/notes``.

:func:`issue_number` says whether a URL is an issue of a repo's forge project (its web
host and path, as the forge shows the issue's page); :func:`issue_event` reads the
forge's ``issues`` (GitLab ``Issue Hook``) webhook delivery into an :class:`IssueEvent`.
The stub kind keeps its issues in memory (:class:`StubIssues`)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from coordination.errors import ForgeNotFound
from coordination.forge.base import API_PATH, Forge, ForgeSpec, Kind, WebhookEvent

IssueState = Literal["open", "closed"]
#: The event names of an issue's webhook delivery, per kind.
ISSUE_EVENTS: dict[str, str] = {"github": "issues", "gitlab": "Issue Hook", "gitea": "issues"}


@dataclass(frozen=True)
class ForgeIssue:
    """An issue as the forge shows it now: ``number`` (GitLab's ``iid``), its web page."""

    number: int
    url: str
    title: str
    state: IssueState


@dataclass(frozen=True)
class IssueEvent(WebhookEvent):
    """A forge issue opened, edited, closed or reopened (GitHub and Gitea ``issues``,
    GitLab ``Issue Hook``), read from a verified delivery."""

    number: int
    action: str
    title: str
    state: IssueState
    url: str = ""


class IssueTracker(Protocol):
    """The issues of one forge project."""

    def create_issue(self, title: str, body: str = "") -> ForgeIssue: ...

    def get_issue(self, number: int) -> ForgeIssue: ...

    def edit_issue(self, number: int, *, title: str | None = None,
                   state: IssueState | None = None) -> ForgeIssue: ...

    def comment_issue(self, number: int, body: str) -> None: ...


# where an issue's page is ---------------------------------------------------------------

def web_root(spec: ForgeSpec) -> tuple[str, int | None, str]:
    """The host, port and path prefix the forge's web pages live under, from its API
    root: ``api.github.com`` -> ``github.com``, ``api.SUB.ghe.com`` -> ``SUB.ghe.com``,
    otherwise the API's host with the kind's API path taken off (``/api/v3``...)."""
    parts = urlsplit(spec.api)
    host, path = (parts.hostname or "").lower(), parts.path.rstrip("/")
    if spec.kind == "github" and (host == "api.github.com" or (
            host.startswith("api.") and host.endswith(".ghe.com"))):
        return host[len("api."):], parts.port, ""
    suffix = API_PATH.get(spec.kind, "")
    if suffix and path.endswith(suffix):
        path = path[: -len(suffix)]
    return host, parts.port, path


def issue_url(spec: ForgeSpec, number: int) -> str:
    """The web page of issue ``number`` of ``spec``'s project (the stub's too)."""
    parts = urlsplit(spec.api)
    host, port, root = web_root(spec)
    netloc = f"{host}:{port}" if port else host
    middle = "/-" if spec.kind == "gitlab" else ""
    return f"{parts.scheme}://{netloc}{root}/{spec.project}{middle}/issues/{number}"


_ISSUE_PATH = re.compile(r"(?P<project>.+?)(?:/-)?/issues/(?P<number>[1-9][0-9]{0,9})/?")


def issue_number(url: str, spec: ForgeSpec) -> int | None:
    """The number of the issue ``url`` shows, when it is an issue of ``spec``'s project
    on ``spec``'s forge (same host and port, the project's path, ``/issues/N``;
    GitLab's ``/-/issues/N`` too); None otherwise. Projects compare without case, as the
    forges route them."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or parts.query or parts.fragment:
        return None
    host, want_port, root = web_root(spec)
    if (parts.hostname or "").lower() != host or port != want_port:
        return None
    path = parts.path
    if not path.startswith(root + "/"):
        return None
    match = _ISSUE_PATH.fullmatch(path[len(root) + 1:])
    if match is None or match["project"].casefold() != spec.project.casefold():
        return None
    if "/-/" in match.group(0) and spec.kind != "gitlab":
        return None
    return int(match["number"])


# the REST kinds ---------------------------------------------------------------------------

class RestIssues:
    """Issues through a REST client's session (``forge.http``) and repository path
    (``forge.base``)."""

    def __init__(self, forge: Any) -> None:
        self.kind: str = forge.kind
        self.project: str = forge.project
        self.http = forge.http
        self.base: str = forge.base

    def _issue(self, data: Mapping[str, Any]) -> ForgeIssue:
        if self.kind == "gitlab":
            return ForgeIssue(int(data["iid"]), str(data["web_url"]), str(data["title"]),
                              "open" if data["state"] == "opened" else "closed")
        return ForgeIssue(int(data["number"]), str(data["html_url"]), str(data["title"]),
                          "open" if data["state"] == "open" else "closed")

    def create_issue(self, title: str, body: str = "") -> ForgeIssue:
        text = "description" if self.kind == "gitlab" else "body"
        return self._issue(self.http.write("POST", f"{self.base}/issues",
                                           {"title": title, text: body}))

    def get_issue(self, number: int) -> ForgeIssue:
        data = self.http.get(f"{self.base}/issues/{number}")
        if data.get("pull_request"):  # GitHub and Gitea answer a pull request's number too
            raise ForgeNotFound(f"#{number} of {self.project} is a pull request, not an issue",
                                forge=self.kind, project=self.project, status=200)
        return self._issue(data)

    def edit_issue(self, number: int, *, title: str | None = None,
                   state: IssueState | None = None) -> ForgeIssue:
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if state is not None:
            if self.kind == "gitlab":
                body["state_event"] = "close" if state == "closed" else "reopen"
            else:
                body["state"] = state
        if not body:
            return self.get_issue(number)
        verb = "PUT" if self.kind == "gitlab" else "PATCH"
        return self._issue(self.http.write(verb, f"{self.base}/issues/{number}", body))

    def comment_issue(self, number: int, body: str) -> None:
        where = "notes" if self.kind == "gitlab" else "comments"
        self.http.write("POST", f"{self.base}/issues/{number}/{where}", {"body": body})


@dataclass
class StubIssues:
    """The stub kind's issues, in memory: ``comments`` per number, ``calls`` in order."""

    spec: ForgeSpec
    issues: dict[int, ForgeIssue] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _get(self, number: int) -> ForgeIssue:
        if number not in self.issues:
            raise ForgeNotFound(f"the stub forge: no issue {number} in {self.spec.project}",
                                forge=self.spec.kind, project=self.spec.project, status=404)
        return self.issues[number]

    def create_issue(self, title: str, body: str = "") -> ForgeIssue:
        self.calls.append(("create_issue", title))
        n = next(self._numbers)
        self.issues[n] = ForgeIssue(n, issue_url(self.spec, n), title, "open")
        return self.issues[n]

    def get_issue(self, number: int) -> ForgeIssue:
        self.calls.append(("get_issue", number))
        return self._get(number)

    def edit_issue(self, number: int, *, title: str | None = None,
                   state: IssueState | None = None) -> ForgeIssue:
        self.calls.append(("edit_issue", (number, title, state)))
        old = self._get(number)
        self.issues[number] = ForgeIssue(number, old.url, title or old.title, state or old.state)
        return self.issues[number]

    def comment_issue(self, number: int, body: str) -> None:
        self.calls.append(("comment_issue", number))
        self._get(number)
        self.comments.setdefault(number, []).append(body)


def tracker_for(forge: Forge) -> IssueTracker:
    """The issues of ``forge``'s project: a stub forge's own (its ``issue_tracker``),
    else through the REST client's session."""
    own = getattr(forge, "issue_tracker", None)
    if callable(own):
        tracker: IssueTracker = own()
        return tracker
    return RestIssues(forge)


# webhook deliveries -------------------------------------------------------------------------

def issue_event(kind: Kind, name: str, data: Mapping[str, Any],
                delivery: str | None) -> IssueEvent | None:
    """The issue event of a delivery named ``name`` (None: not an issue event, or a pull
    request's, which GitHub and Gitea also send as issue events of theirs). A missing
    key is a ``KeyError`` (the caller names the delivery)."""
    if name != ISSUE_EVENTS.get(kind):
        return None
    if kind == "gitlab":
        attrs = data["object_attributes"]
        state: IssueState = "open" if attrs["state"] == "opened" else "closed"
        return IssueEvent("gitlab", str(data["project"]["path_with_namespace"]),
                          int(attrs["iid"]), str(attrs.get("action") or ""),
                          str(attrs["title"]), state, str(attrs.get("url") or ""),
                          delivery=delivery)
    issue = data["issue"]
    if issue.get("pull_request"):
        return None
    state = "open" if issue["state"] == "open" else "closed"
    return IssueEvent(kind, str(data["repository"]["full_name"]), int(issue["number"]),
                      str(data.get("action") or ""), str(issue["title"]), state,
                      str(issue.get("html_url") or ""), delivery=delivery)


__all__ = ["ForgeIssue", "IssueEvent", "IssueState", "IssueTracker", "RestIssues",
           "StubIssues", "issue_event", "issue_number", "issue_url", "tracker_for",
           "web_root"]
