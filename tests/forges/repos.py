"""What the fake GitHub and the fake Gitea share: both address a repository as
``/repos/{owner}/{name}`` (Gitea's API follows GitHub's), read a pull request, take a
comment on its issue and a commit status the same way, close a pull request by
``PATCH`` with ``state: closed``, and send their webhooks under their own names. Every
answer still goes through :class:`~tests.forges.server.FakeForge`'s check against the
kind's description; a kind gives its own JSON (``comment_json``, ``status_json``)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.forges.server import PR, Answer, FakeForge, Project, Status

REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


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

    def add_routes(self) -> None:
        r = self.route
        r("GET", REPO + r"/pulls/(?P<number>\d+)", self.get_pull)
        r("POST", REPO + r"/issues/(?P<number>\d+)/comments", self.comment)
        r("POST", REPO + r"/statuses/(?P<sha>[0-9a-f]{40})", self.create_status)

    # the kind's JSON --------------------------------------------------------------------

    def pr_json(self, p: Project, pr: PR) -> dict[str, Any]:
        raise NotImplementedError

    def comment_json(self, number: int, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def status_json(self, s: Status) -> dict[str, Any]:
        raise NotImplementedError

    # handlers ---------------------------------------------------------------------------

    def missing(self) -> Answer:
        return 404, self.not_found, {}

    def project(self, owner: str, name: str) -> Project | None:
        return self.projects.get(f"{owner}/{name}")

    def _pr(self, owner: str, name: str, number: str) -> tuple[Project, PR] | None:
        p = self.project(owner, name)
        if p is None or int(number) not in p.prs:
            return None
        return p, p.prs[int(number)]

    def get_pull(self, owner: str, name: str, number: str, **_: Any) -> Answer:
        found = self._pr(owner, name, number)
        if found is None:
            return self.missing()
        return 200, self.pr_json(*found), {}

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
        found = self._pr(owner, name, number)
        if found is None:
            return self.missing()
        p, pr = found
        p.comments.setdefault(pr.number, []).append(body["body"])
        return 201, self.comment_json(len(p.comments[pr.number]), body["body"]), {}

    def create_status(self, owner: str, name: str, sha: str, body: dict[str, Any],
                      **_: Any) -> Answer:
        p = self.project(owner, name)
        if p is None:
            return self.missing()
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

    def status_event(self, p: Project, sha: str, check: str, state: str) -> None:
        self._send("status", {"sha": sha, "context": check, "state": state,
                              "repository": {"full_name": p.name}})

    def push_event(self, p: Project, ref: str, before: str, after: str) -> None:
        self._send("push", {"ref": ref, "before": before, "after": after,
                            "repository": {"full_name": p.name}})
