"""What the fake GitHub and the fake Gitea share: both address a repository as
``/repos/{owner}/{name}`` (Gitea's API follows GitHub's), read a pull request, take a
comment on its issue and a commit status the same way, close a pull request by
``PATCH`` with ``state: closed``, and send their webhooks under their own names. Every
answer still goes through :class:`~tests.forges.server.FakeForge`'s check against the
kind's description; a kind gives its own JSON (``comment_json``, ``status_json``)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.forges.server import PR, Answer, FakeForge, Issue, Missing, Project, Status

REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
PULL = REPO + r"/pulls/(?P<number>\d+)"
#: The operations both kinds answer, by the name of the handler each kind has (its own
#: JSON and rules); ``MERGE`` is the kind's verb for a merge (``merge_verb``).
ROUTES = (
    ("GET", "/user", "user"),
    ("GET", REPO + "/pulls", "list_pulls"),
    ("POST", REPO + "/pulls", "create_pull"),
    ("GET", PULL, "get_pull"),
    ("PATCH", PULL, "edit_pull"),
    ("MERGE", PULL + "/merge", "merge_pull"),
    ("GET", PULL + "/reviews", "list_reviews"),
    ("POST", REPO + r"/issues/(?P<number>\d+)/labels", "add_labels"),
    ("POST", REPO + r"/issues/(?P<number>\d+)/comments", "comment"),
    ("POST", REPO + "/issues", "create_issue"),
    ("GET", REPO + r"/issues/(?P<number>\d+)", "get_issue"),
    ("PATCH", REPO + r"/issues/(?P<number>\d+)", "edit_issue"),
    ("POST", REPO + r"/statuses/(?P<sha>[0-9a-f]{40})", "create_status"),
    ("GET", REPO + r"/commits/(?P<ref>[^/]+)/status", "combined_status"),
    ("GET", REPO + r"/branches/(?P<branch>[^/]+)", "branch"),
)


def combined_state(states: set[str], any_reported: bool) -> str:
    """A commit's combined status from its statuses' states (GitHub's and Gitea's rule)."""
    return ("failure" if states & {"failure", "error"} else
            "pending" if "pending" in states or not any_reported else "success")


class RepoForge(FakeForge):
    """A fake forge of ``owner/name`` repositories (GitHub, Gitea)."""

    #: The body of a 404 (GitHub's message; Gitea's is empty).
    not_found: Any = None
    #: The webhook's event and delivery headers.
    event_header = ""
    delivery_header = ""
    #: A merge: ``PUT`` (GitHub) or ``POST`` (Gitea) on ``.../pulls/{n}/merge``.
    merge_verb = "PUT"

    def add_routes(self) -> None:
        for method, pattern, handler in ROUTES:
            self.route(self.merge_verb if method == "MERGE" else method, pattern,
                       getattr(self, handler))

    # the kind's JSON --------------------------------------------------------------------

    def pr_json(self, p: Project, pr: PR) -> dict[str, Any]:
        raise NotImplementedError

    def comment_json(self, number: int, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def issue_json(self, p: Project, issue: Issue) -> dict[str, Any]:
        raise NotImplementedError

    #: The status of an answer to an issue's edit (GitHub 200, Gitea 201).
    issue_edited = 200

    def status_json(self, s: Status) -> dict[str, Any]:
        raise NotImplementedError

    # handlers ---------------------------------------------------------------------------

    def project(self, owner: str, name: str) -> Project | None:
        return self.projects.get(f"{owner}/{name}")

    def repo(self, owner: str, name: str) -> Project:
        """The project, or the kind's 404 (:class:`Missing`)."""
        p = self.project(owner, name)
        if p is None:
            raise Missing(self.not_found)
        return p

    def pull(self, owner: str, name: str, number: str) -> tuple[Project, PR]:
        """The project and its pull request ``number``, or the kind's 404."""
        p = self.repo(owner, name)
        if int(number) not in p.prs:
            raise Missing(self.not_found)
        return p, p.prs[int(number)]

    def get_pull(self, owner: str, name: str, number: str, **_: Any) -> Answer:
        return 200, self.pr_json(*self.pull(owner, name, number)), {}

    def close_or_edit(self, p: Project, pr: PR, body: dict[str, Any]) -> None:
        """The end of an edit: ``state: closed`` closes an open pull request (its head
        frozen), any other edit is one."""
        if body.get("state") == "closed" and pr.state == "open":
            pr.head_sha, pr.state = p.head_of(pr), "closed"
            self.pr_event(p, pr, "closed")
        else:
            self.pr_event(p, pr, "edited")

    def comment(self, owner: str, name: str, number: str, body: dict[str, Any],
                **_: Any) -> Answer:
        p = self.repo(owner, name)
        if int(number) not in p.issues:  # an issue's conversation, or a pull request's
            p, _pr = self.pull(owner, name, number)
        p.comments.setdefault(int(number), []).append(body["body"])
        return 201, self.comment_json(len(p.comments[int(number)]), body["body"]), {}

    def issue(self, owner: str, name: str, number: str) -> tuple[Project, Issue]:
        p = self.repo(owner, name)
        if int(number) not in p.issues:
            raise Missing(self.not_found)
        return p, p.issues[int(number)]

    def create_issue(self, owner: str, name: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self.repo(owner, name)
        issue = Issue(self.number(), body["title"], body.get("body") or "")
        p.issues[issue.number] = issue
        self.issue_event(p, issue, "opened")
        return 201, self.issue_json(p, issue), {}

    def get_issue(self, owner: str, name: str, number: str, **_: Any) -> Answer:
        return 200, self.issue_json(*self.issue(owner, name, number)), {}

    def edit_issue(self, owner: str, name: str, number: str, body: dict[str, Any],
                   **_: Any) -> Answer:
        p, issue = self.issue(owner, name, number)
        action = ""
        if body.get("title") is not None and body["title"] != issue.title:
            issue.title, action = body["title"], "edited"
        if body.get("state") in ("open", "closed") and body["state"] != issue.state:
            issue.state = body["state"]
            action = "closed" if issue.state == "closed" else "reopened"
        if action:  # the forge tells its webhooks of coord's own edits too
            self.issue_event(p, issue, action)
        return self.issue_edited, self.issue_json(p, issue), {}

    def create_status(self, owner: str, name: str, sha: str, body: dict[str, Any],
                      **_: Any) -> Answer:
        p = self.repo(owner, name)
        context = body.get("context") or "default"
        s = Status(context, body["state"], body.get("target_url"), body.get("description") or "")
        p.statuses.setdefault(sha, {})[context] = s
        self.status_event(p, sha, context, body["state"])
        return 201, self.status_json(s), {}

    # webhooks ---------------------------------------------------------------------------

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        self.send(event, payload, {self.event_header: event,
                                   self.delivery_header: str(uuid.uuid4())})

    def pr_event(self, p: Project, pr: PR, action: str) -> None:
        self._send("pull_request", {"action": action, "number": pr.number,
                                    "pull_request": self.pr_json(p, pr),
                                    "repository": {"full_name": p.name}})

    def issue_event(self, p: Project, issue: Issue, action: str) -> None:
        self._send("issues", {"action": action, "number": issue.number,
                              "issue": self.issue_json(p, issue),
                              "repository": {"full_name": p.name}})

    def status_event(self, p: Project, sha: str, check: str, state: str) -> None:
        self._send("status", {"sha": sha, "context": check, "state": state,
                              "repository": {"full_name": p.name}})

    def push_event(self, p: Project, ref: str, before: str, after: str) -> None:
        self._send("push", {"ref": ref, "before": before, "after": after,
                            "repository": {"full_name": p.name}})
