"""A fake GitLab: merge requests, approvals, commit statuses, pipelines, protected
branches and notes of the API v4 (``openapi/gitlab.json``: written from GitLab's API
docs, see its ``x-coord-source``), with GitLab's refusals (409 for a second open merge
request of one source branch or a ``sha`` that is not the head, 405 for a merge the
rules refuse, 406 for a conflict) and its webhooks with ``X-Gitlab-Token``.

A project that runs merge trains (:meth:`FakeGitLab.merge_trains`: its
``merge_trains_enabled``) takes a merge with ``auto_merge`` (or the deprecated
``merge_when_pipeline_succeeds``) onto its train: the merge request stays open with
``merge_when_pipeline_succeeds`` true until the test merges it
(:meth:`FakeForge.release`) or drops it (:meth:`FakeForge.dequeue`: auto-merge
cancelled, the reason in ``merge_error``). Nothing here is beyond the description: the
train is seen only through the project and the merge request (the description has no
merge trains endpoint)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from tests.forges.gitrepo import HeadMovedError, MergeConflict
from tests.forges.server import (
    PR,
    Answer,
    FakeForge,
    Issue,
    Missing,
    Project,
    QueueEntry,
    Status,
)
from tests.forges.validation import skeleton

PROJECT = r"/projects/(?P<pid>[^/]+)"
MR = PROJECT + r"/merge_requests/(?P<iid>\d+)"
ISSUE = PROJECT + r"/issues/(?P<iid>\d+)"
_STATE = {"open": "opened", "closed": "closed", "merged": "merged"}
#: coord's words -> GitLab's commit status words, and back.
_WORD = {"success": "success", "failure": "failed", "pending": "pending"}
_BACK = {"success": "success", "failed": "failure", "canceled": "failure", "pending": "pending",
         "running": "pending", "created": "pending", "skipped": "success"}


class FakeGitLab(FakeForge):
    kind = "gitlab"
    prefix = "/api/v4"
    pipelines_must_succeed = False

    def authorized(self, headers: dict[str, str]) -> bool:
        return (headers.get("authorization") == f"Bearer {self.token}"
                or headers.get("private-token") == self.token)

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        return {"X-Gitlab-Token": secret}

    def status_word(self, state: str) -> str:
        return _WORD[state]

    def check_word(self, word: str) -> str:
        return _BACK.get(word, "failure")

    def add_routes(self) -> None:
        r = self.route
        r("GET", "/user", self.user)
        r("GET", PROJECT, self.project_info)
        r("GET", PROJECT + "/merge_requests", self.list_mrs)
        r("POST", PROJECT + "/merge_requests", self.create_mr)
        r("GET", MR, self.get_mr)
        r("PUT", MR, self.update_mr)
        r("PUT", MR + "/merge", self.merge_mr)
        r("GET", MR + "/approvals", self.approvals)
        r("POST", MR + "/notes", self.note)
        r("POST", PROJECT + "/issues", self.create_issue)
        r("GET", ISSUE, self.get_issue)
        r("PUT", ISSUE, self.update_issue)
        r("POST", ISSUE + "/notes", self.issue_note)
        r("POST", PROJECT + r"/statuses/(?P<sha>[0-9a-f]{40})", self.create_status)
        r("GET", PROJECT + r"/repository/commits/(?P<sha>[0-9a-f]{40})/statuses", self.statuses)
        r("GET", PROJECT + "/pipelines", self.pipelines)
        r("GET", PROJECT + r"/protected_branches/(?P<branch>[^/]+)", self.protected_branch)

    def merge_trains(self, name: str, on: bool = True) -> None:
        """The project runs merge trains (``merge_trains_enabled``)."""
        self.projects[name].merge_trains = on

    def queue_method(self, p: Project) -> str:
        return "rebase" if p.merge_method in ("ff", "rebase_merge") else "merge"

    def protect(self, name: str, *, approvals: int = 0, checks: list[str] | None = None) -> None:
        """GitLab requires no check by name: "Pipelines must succeed" requires the head's
        pipeline (the check ``pipeline``), which any ``checks`` here turns on."""
        super().protect(name, approvals=approvals, checks=["pipeline"] if checks else [])
        self.pipelines_must_succeed = bool(checks)

    # JSON -------------------------------------------------------------------------------

    def user_json(self, login: str = "coord-bot") -> dict[str, Any]:
        return skeleton("gitlab", "UserBasic", id=abs(hash(login)) % 10_000, username=login,
                        name=login, state="active", web_url=f"{self.origin}/{login}")

    def detailed(self, p: Project, pr: PR) -> str:
        if pr.state != "open":
            return "not_open"
        if p.queued_word and self.on_train(p, pr) is not None:
            return p.queued_word
        found = self.blockers(p, pr)
        for reason, word in (("draft", "draft_status"), ("conflict", "conflict"),
                             ("changes requested", "requested_changes"),
                             ("review required", "not_approved")):
            if reason in found:
                return word
        if found:
            return "ci_must_pass"
        return "mergeable"

    def mr_json(self, p: Project, pr: PR) -> dict[str, Any]:
        title = ("Draft: " + pr.title) if pr.draft else pr.title
        return skeleton(
            "gitlab", "MergeRequest", id=1000 + pr.number, iid=pr.number, project_id=p.id,
            title=title, description=pr.body, state=_STATE[pr.state],
            target_branch=pr.base, source_branch=pr.head, labels=list(pr.labels),
            draft=pr.draft, work_in_progress=pr.draft, sha=p.head_of(pr),
            merge_commit_sha=pr.merge_sha, squash_commit_sha=None,
            has_conflicts=pr.state == "open" and p.repo.conflicts(pr.base, pr.head),
            detailed_merge_status=self.detailed(p, pr), author=self.user_json(pr.author),
            merge_when_pipeline_succeeds=self.on_train(p, pr) is not None,
            merge_error=pr.merge_error,
            web_url=f"{self.origin}/{p.name}/-/merge_requests/{pr.number}")

    def on_train(self, p: Project, pr: PR) -> QueueEntry | None:
        """Its entry on the project's merge train (auto-merge set), if it is on it."""
        return next((e for e in p.queue if e.number == pr.number), None)

    # handlers ---------------------------------------------------------------------------

    def _project(self, pid: str) -> Project | None:
        key = unquote(pid)
        return self.projects.get(key) or next(
            (p for p in self.projects.values() if str(p.id) == key), None)

    def _known(self, pid: str) -> Project:
        """The project, or GitLab's 404 (:class:`Missing`)."""
        p = self._project(pid)
        if p is None:
            raise Missing({"message": "404 Project Not Found"})
        return p

    def _mr(self, pid: str, iid: str) -> tuple[Project, PR]:
        """The project and its merge request, or GitLab's 404."""
        p = self._project(pid)
        if p is None or int(iid) not in p.prs:
            raise Missing({"message": "404 Not found"})
        return p, p.prs[int(iid)]

    def user(self, **_: Any) -> Answer:
        return 200, self.user_json(), {}

    def project_info(self, pid: str, **_: Any) -> Answer:
        p = self._known(pid)
        return 200, skeleton("gitlab", "Project", id=p.id, path_with_namespace=p.name,
                             default_branch=p.default_branch, web_url=f"{self.origin}/{p.name}",
                             merge_method=p.merge_method,
                             only_allow_merge_if_pipeline_succeeds=self.pipelines_must_succeed,
                             merge_trains_enabled=p.merge_trains,
                             merge_trains_skip_train_allowed=False), {}

    def list_mrs(self, pid: str, query: dict[str, str], **_: Any) -> Answer:
        p = self._known(pid)
        state = query.get("state", "all")
        labels = set(filter(None, query.get("labels", "").split(",")))
        items = [pr for pr in sorted(p.prs.values(), key=lambda x: -x.number)
                 if (state == "all" or _STATE[pr.state] == state)
                 and (not query.get("source_branch") or pr.head == query["source_branch"])
                 and (not query.get("target_branch") or pr.base == query["target_branch"])
                 and labels <= set(pr.labels)]
        return self.page([self.mr_json(p, pr) for pr in items], query,
                         f"{self.prefix}/projects/{pid}/merge_requests")

    def create_mr(self, pid: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self._known(pid)
        head, base = body["source_branch"], body["target_branch"]
        if p.repo.head(head) is None:
            return 400, {"message": {"source_branch": ["is invalid"]}}, {}
        if any(pr.head == head and pr.state == "open" for pr in p.prs.values()):
            return 409, {"message": ["Another open merge request already exists for this "
                                     "source branch"]}, {}
        title = body["title"]
        draft = title.lower().startswith(("draft:", "[draft]", "(draft)"))
        pr = PR(self.number(), head, base, title.split(":", 1)[1].strip() if draft else title,
                body.get("description") or "",
                [x for x in body.get("labels", "").split(",") if x], draft=draft)
        p.prs[pr.number] = pr
        self.pr_event(p, pr, "open")
        return 201, self.mr_json(p, pr), {}

    def get_mr(self, pid: str, iid: str, **_: Any) -> Answer:
        p, pr = self._mr(pid, iid)
        entry = self.on_train(p, pr)
        if entry is not None:
            entry.reads += 1
        return 200, self.mr_json(p, pr), {}

    def update_mr(self, pid: str, iid: str, body: dict[str, Any], **_: Any) -> Answer:
        p, pr = self._mr(pid, iid)
        if "title" in body:
            t = body["title"]
            pr.draft = t.lower().startswith("draft:")
            pr.title = t.split(":", 1)[1].strip() if pr.draft else t
        pr.body = body.get("description", pr.body)
        if "labels" in body:
            pr.labels = [x for x in body["labels"].split(",") if x]
        if "add_labels" in body:
            pr.labels = list(dict.fromkeys([*pr.labels, *body["add_labels"].split(",")]))
        if body.get("state_event") == "close" and pr.state == "open":
            pr.head_sha, pr.state = p.head_of(pr), "closed"
            self.pr_event(p, pr, "close")
        else:
            self.pr_event(p, pr, "update")
        return 200, self.mr_json(p, pr), {}

    def merge_mr(self, pid: str, iid: str, body: dict[str, Any], **_: Any) -> Answer:
        p, pr = self._mr(pid, iid)
        head = p.head_of(pr)
        if body.get("sha") and body["sha"] != head:
            return 409, {"message": "SHA does not match HEAD of source branch: " + head}, {}
        if pr.state != "open":
            return 405, {"message": "405 Method Not Allowed"}, {}
        found_blockers = self.blockers(p, pr)
        if "conflict" in found_blockers:
            return 406, {"message": "Branch cannot be merged"}, {}
        if pr.number in p.refusals or found_blockers:
            return 405, {"message": p.refusals.get(pr.number) or "405 Method Not Allowed"}, {}
        if p.merge_trains and (body.get("auto_merge") or body.get("merge_when_pipeline_succeeds")):
            if self.on_train(p, pr) is None:  # (already on it: as it is)
                p.queue.append(QueueEntry(pr.number, head))
                pr.merge_error = None
            return 200, self.mr_json(p, pr), {}
        method = "squash" if body.get("squash") else (
            "rebase" if p.merge_method in ("ff", "rebase_merge") else "merge")
        try:
            self.do_merge(p, pr, head, method, body.get("merge_commit_message") or
                          body.get("squash_commit_message") or f"Merge branch '{pr.head}'")
        except HeadMovedError:
            return 409, {"message": "SHA does not match HEAD of source branch"}, {}
        except MergeConflict:
            return 406, {"message": "Branch cannot be merged"}, {}
        return 200, self.mr_json(p, pr), {}

    def approvals(self, pid: str, iid: str, **_: Any) -> Answer:
        p, pr = self._mr(pid, iid)
        latest: dict[str, str] = {}
        for user, state, _sha in p.reviews.get(pr.number, []):
            latest[user] = state
        approved = [u for u, s in latest.items() if s == "approved"]
        return 200, skeleton("gitlab", "Approvals", id=1000 + pr.number, iid=pr.number,
                             project_id=p.id, approved=len(approved) >= p.approvals,
                             approvals_required=p.approvals,
                             approvals_left=max(0, p.approvals - len(approved)),
                             approved_by=[{"user": self.user_json(u)} for u in approved]), {}

    def note(self, pid: str, iid: str, body: dict[str, Any], **_: Any) -> Answer:
        p, pr = self._mr(pid, iid)
        p.comments.setdefault(pr.number, []).append(body["body"])
        return 201, skeleton("gitlab", "Note", id=len(p.comments[pr.number]), body=body["body"],
                             author=self.user_json()), {}

    # issues (coord issue link) -------------------------------------------------------------

    def issue_json(self, p: Project, issue: Issue) -> dict[str, Any]:
        return skeleton("gitlab", "Issue", id=5000 + issue.number, iid=issue.number,
                        project_id=p.id, title=issue.title, description=issue.body,
                        state=_STATE[issue.state], author=self.user_json(), labels=[],
                        web_url=f"{self.origin}/{p.name}/-/issues/{issue.number}")

    def _issue(self, pid: str, iid: str) -> tuple[Project, Issue]:
        p = self._project(pid)
        if p is None or int(iid) not in p.issues:
            raise Missing({"message": "404 Not found"})
        return p, p.issues[int(iid)]

    def create_issue(self, pid: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self._known(pid)
        issue = Issue(self.number(), body["title"], body.get("description") or "")
        p.issues[issue.number] = issue
        self.issue_event(p, issue, "open")
        return 201, self.issue_json(p, issue), {}

    def get_issue(self, pid: str, iid: str, **_: Any) -> Answer:
        return 200, self.issue_json(*self._issue(pid, iid)), {}

    def update_issue(self, pid: str, iid: str, body: dict[str, Any], **_: Any) -> Answer:
        p, issue = self._issue(pid, iid)
        action = ""
        if body.get("title") is not None and body["title"] != issue.title:
            issue.title, action = body["title"], "update"
        want = {"close": "closed", "reopen": "open"}.get(body.get("state_event") or "")
        if want and want != issue.state:
            issue.state, action = want, ("close" if want == "closed" else "reopen")
        if action:
            self.issue_event(p, issue, action)
        return 200, self.issue_json(p, issue), {}

    def issue_note(self, pid: str, iid: str, body: dict[str, Any], **_: Any) -> Answer:
        p, issue = self._issue(pid, iid)
        p.comments.setdefault(issue.number, []).append(body["body"])
        return 201, skeleton("gitlab", "Note", id=len(p.comments[issue.number]),
                             body=body["body"], author=self.user_json()), {}

    def _status_json(self, sha: str, s: Status) -> dict[str, Any]:
        return skeleton("gitlab", "CommitStatus", id=abs(hash((sha, s.name))) % 100_000,
                        sha=sha, status=s.state, name=s.name, target_url=s.target_url,
                        description=s.description or None)

    def create_status(self, pid: str, sha: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self._known(pid)
        name = body.get("name") or body.get("context") or "default"
        s = Status(name, body["state"], body.get("target_url"), body.get("description") or "")
        p.statuses.setdefault(sha, {})[name] = s
        p.status_log.setdefault(sha, []).append(s)
        self.status_event(p, sha, name, self.check_word(body["state"]))
        return 201, self._status_json(sha, s), {}

    def statuses(self, pid: str, sha: str, query: dict[str, str], **_: Any) -> Answer:
        p = self._known(pid)
        # GitLab lists every status of the commit (a re-run's beside the first), by id,
        # oldest first unless sort=desc
        log = [(i, s) for i, s in enumerate(p.status_log.get(sha, [])) if s.name != "pipeline"]
        if query.get("sort") == "desc":
            log.reverse()
        items = [{**self._status_json(sha, s), "id": i + 1} for i, s in log]
        return self.page(items, query,
                         f"{self.prefix}/projects/{pid}/repository/commits/{sha}/statuses")

    def _pipeline(self, p: Project, sha: str) -> str:
        s = p.statuses.get(sha, {}).get("pipeline")
        return s.state if s else ""

    def pipelines(self, pid: str, query: dict[str, str], **_: Any) -> Answer:
        p = self._known(pid)
        sha = query.get("sha", "")
        state = self._pipeline(p, sha)
        items = [skeleton("gitlab", "PipelineBasic", id=1, iid=1, project_id=p.id, sha=sha,
                          ref="", status=state, web_url=f"{self.origin}/{p.name}/-/pipelines/1")
                 ] if state else []
        return self.page(items, query, f"{self.prefix}/projects/{pid}/pipelines")

    def protected_branch(self, pid: str, branch: str, **_: Any) -> Answer:
        p = self._project(pid)
        if p is None or not p.protected or unquote(branch) != p.default_branch:
            return 404, {"message": "404 Not found"}, {}
        return 200, skeleton("gitlab", "ProtectedBranch", id=1, name=p.default_branch,
                             push_access_levels=[{"access_level": 0}],
                             merge_access_levels=[{"access_level": 30}]), {}

    # webhooks ---------------------------------------------------------------------------

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        self.send(event, payload, {"X-Gitlab-Event": event,
                                   "X-Gitlab-Event-UUID": str(uuid.uuid4())})

    def pr_event(self, p: Project, pr: PR, action: str) -> None:
        attrs = {"iid": pr.number, "action": "merge" if pr.state == "merged" else action,
                 "state": _STATE[pr.state], "source_branch": pr.head,
                 "target_branch": pr.base, "last_commit": {"id": p.head_of(pr)}}
        self._send("Merge Request Hook", {"object_kind": "merge_request",
                                          "project": {"path_with_namespace": p.name},
                                          "object_attributes": attrs})

    def review_event(self, p: Project, pr: PR, user: str, state: str) -> None:
        if state != "approved":
            return
        self._send("Merge Request Hook", {
            "object_kind": "merge_request", "user": {"username": user},
            "project": {"path_with_namespace": p.name},
            "object_attributes": {"iid": pr.number, "action": "approved", "state": "opened",
                                  "source_branch": pr.head, "target_branch": pr.base,
                                  "last_commit": {"id": p.head_of(pr)}}})

    def status_event(self, p: Project, sha: str, check: str, state: str) -> None:
        if check == "pipeline":
            self._send("Pipeline Hook", {"object_kind": "pipeline",
                                         "project": {"path_with_namespace": p.name},
                                         "object_attributes": {"sha": sha,
                                                               "status": _WORD[state]}})

    def issue_event(self, p: Project, issue: Issue, action: str) -> None:
        action = {"edited": "update", "closed": "close", "reopened": "reopen"}.get(action, action)
        self._send("Issue Hook", {"object_kind": "issue", "event_type": "issue",
                                  "project": {"path_with_namespace": p.name},
                                  "object_attributes": {
                                      "iid": issue.number, "title": issue.title,
                                      "state": _STATE[issue.state], "action": action,
                                      "url": f"{self.origin}/{p.name}/-/issues/{issue.number}"}})

    def push_event(self, p: Project, ref: str, before: str, after: str) -> None:
        self._send("Push Hook", {"object_kind": "push", "ref": ref, "before": before,
                                 "after": after, "project": {"path_with_namespace": p.name}})
