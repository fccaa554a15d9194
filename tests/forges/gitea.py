"""A fake Gitea (and so Forgejo): the API v1 operations coord calls (``openapi/gitea.json``,
trimmed from Gitea's swagger), with Gitea's refusals (409 for a second pull request of
one head and base, and for a merge whose ``head_commit_id`` is not the head: "head out
of date"; 405 for a merge the protection refuses) and its webhooks signed with
``X-Gitea-Signature``. Note Gitea answers an edit with 201."""

from __future__ import annotations

from typing import Any

from tests.forges.gitrepo import HeadMovedError, MergeConflict
from tests.forges.repos import REPO, RepoForge, combined_state
from tests.forges.server import PR, Answer, Issue, Missing, Project, Status
from tests.forges.validation import skeleton

_REVIEW_WORD = {"approved": "APPROVED", "changes_requested": "REQUEST_CHANGES",
                "commented": "COMMENT"}


class FakeGitea(RepoForge):
    kind = "gitea"
    prefix = "/api/v1"
    page_param = "limit"
    event_header, delivery_header = "X-Gitea-Event", "X-Gitea-Delivery"
    merge_verb = "POST"

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"token {self.token}"

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        return {"X-Gitea-Signature": self.hmac_hex(body, secret)}

    def add_routes(self) -> None:
        super().add_routes()
        self.route("GET", REPO + "$", self.get_repo)
        self.route("GET", REPO + "/labels", self.list_labels)
        self.route("POST", REPO + "/labels", self.create_label)

    # JSON -------------------------------------------------------------------------------

    def user_json(self, login: str = "coord-bot") -> dict[str, Any]:
        return skeleton("gitea", "User", id=abs(hash(login)) % 10_000, login=login,
                        full_name=login, email=f"{login}@fake.invalid")

    def repo_json(self, p: Project) -> dict[str, Any]:
        owner, name = p.name.split("/")
        allowed = p.allowed_methods
        return skeleton("gitea", "Repository", id=p.id, name=name, full_name=p.name,
                        default_branch=p.default_branch, owner=self.user_json(owner),
                        **{f: allowed is None or m in allowed for f, m in (
                            ("allow_merge_commits", "merge"), ("allow_rebase", "rebase"),
                            ("allow_squash_merge", "squash"))})

    def get_repo(self, owner: str, name: str, **_: Any) -> Answer:
        p = self.projects.get(f"{owner}/{name}")
        if p is None:
            return 404, None, {"message": "repository not found"}
        return 200, self.repo_json(p), {}

    def label_json(self, p: Project, name: str) -> dict[str, Any]:
        return skeleton("gitea", "Label", id=p.labels[name], name=name, color="ededed")

    #: The next this many answers naming an open pull request say ``mergeable: false``:
    #: Gitea still checking it (after a push), which it says as it says a conflict.
    checking = 0

    def pr_json(self, p: Project, pr: PR) -> dict[str, Any]:
        title = ("WIP: " + pr.title) if pr.draft else pr.title
        conflict = pr.state == "open" and p.repo.conflicts(pr.base, pr.head)
        if pr.state == "open" and self.checking > 0:
            self.checking -= 1
            conflict = True
        return skeleton(
            "gitea", "PullRequest", id=pr.number, number=pr.number, title=title, body=pr.body,
            state="open" if pr.state == "open" else "closed", merged=pr.state == "merged",
            mergeable=not conflict, merge_commit_sha=pr.merge_sha or "",
            html_url=f"{self.origin}/{p.name}/pulls/{pr.number}",
            labels=[self.label_json(p, x) for x in pr.labels], user=self.user_json(pr.author),
            head={"ref": pr.head, "sha": p.head_of(pr), "label": pr.head,
                  "repo": self.repo_json(p), "repo_id": p.id},
            base={"ref": pr.base, "sha": p.repo.head(pr.base) or "", "label": pr.base,
                  "repo": self.repo_json(p), "repo_id": p.id})

    issue_edited = 201  # Gitea answers an issue's edit 201

    def issue_json(self, p: Project, issue: Issue) -> dict[str, Any]:
        return skeleton("gitea", "Issue", id=issue.number, number=issue.number,
                        title=issue.title, body=issue.body, state=issue.state,
                        html_url=f"{self.origin}/{p.name}/issues/{issue.number}",
                        url=f"{self.api}/repos/{p.name}/issues/{issue.number}",
                        user=self.user_json(), labels=[])

    def comment_json(self, number: int, text: str) -> dict[str, Any]:
        return skeleton("gitea", "Comment", id=number, body=text, user=self.user_json())

    def status_json(self, s: Status) -> dict[str, Any]:
        return skeleton("gitea", "CommitStatus", id=1, context=s.name, status=s.state,
                        target_url=s.target_url or "", description=s.description,
                        creator=self.user_json())

    # handlers ---------------------------------------------------------------------------

    def user(self, **_: Any) -> Answer:
        return 200, self.user_json(), {}

    def list_pulls(self, owner: str, name: str, query: dict[str, str],
                   pairs: list[tuple[str, str]], **_: Any) -> Answer:
        p = self.repo(owner, name)
        state = query.get("state", "open")
        want = {int(v) for k, v in pairs if k == "labels"}
        ids = {name: i for name, i in p.labels.items()}
        items = [pr for pr in sorted(p.prs.values(), key=lambda x: -x.number)
                 if (state == "all" or (pr.state == "open") == (state == "open"))
                 and want <= {ids[x] for x in pr.labels}]
        return self.page([self.pr_json(p, pr) for pr in items], query,
                         f"{self.prefix}/repos/{owner}/{name}/pulls")

    def create_pull(self, owner: str, name: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self.repo(owner, name)
        head, base = body["head"], body["base"]
        if p.repo.head(head) is None:
            raise Missing(self.not_found)
        if any(pr.head == head and pr.base == base and pr.state == "open"
               for pr in p.prs.values()):
            return 409, {"message": "pull request already exists for these targets"}, {}
        by_id = {i: n for n, i in p.labels.items()}
        title = body.get("title", "")
        draft = title.lower().startswith(("wip:", "[wip]"))
        pr = PR(self.number(), head, base, title.split(":", 1)[1].strip() if draft else title,
                body.get("body") or "", [by_id[i] for i in body.get("labels", [])], draft=draft)
        p.prs[pr.number] = pr
        self.pr_event(p, pr, "opened")
        return 201, self.pr_json(p, pr), {}

    def edit_pull(self, owner: str, name: str, number: str, body: dict[str, Any],
                  **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        if "title" in body:
            t = body["title"]
            pr.draft = t.lower().startswith("wip:")
            pr.title = t.split(":", 1)[1].strip() if pr.draft else t
        pr.body = body.get("body", pr.body)
        if "labels" in body:
            by_id = {i: n for n, i in p.labels.items()}
            pr.labels = [by_id[i] for i in body["labels"]]
        self.close_or_edit(p, pr, body)
        return 201, self.pr_json(p, pr), {}

    def merge_pull(self, owner: str, name: str, number: str, body: dict[str, Any],
                   **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        head = p.head_of(pr)
        if pr.state != "open" or pr.number in p.refusals or [
                b for b in self.blockers(p, pr) if b != "conflict"]:
            return 405, None, {"message": p.refusals.get(pr.number, "Please try again later")}
        if body.get("head_commit_id") and body["head_commit_id"] != head:
            return 409, None, {"message": "head out of date"}
        method = {"merge": "merge", "squash": "squash", "rebase": "rebase"}[body["Do"]]
        if p.allowed_methods is not None and method not in p.allowed_methods:
            return 405, None, {"message": f"merge style {method} is not allowed"}
        try:
            self.do_merge(p, pr, head, method, body.get("MergeTitleField") or
                          f"Merge pull request '{pr.title}' (#{pr.number})")
        except HeadMovedError:
            return 409, None, {"message": "head out of date"}
        except MergeConflict:
            return 409, None, {"message": "merge add conflicts"}
        return 200, None, {}

    def list_reviews(self, owner: str, name: str, number: str, query: dict[str, str],
                **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        head = p.head_of(pr)
        items = [skeleton("gitea", "PullReview", id=i + 1, user=self.user_json(user),
                          state=_REVIEW_WORD[state], commit_id=sha, official=True,
                          stale=sha != head, dismissed=False)
                 for i, (user, state, sha) in enumerate(p.reviews.get(pr.number, []))]
        return self.page(items, query, f"{self.prefix}/repos/{owner}/{name}/pulls/{number}/reviews")

    def list_labels(self, owner: str, name: str, query: dict[str, str], **_: Any) -> Answer:
        p = self.repo(owner, name)
        return self.page([self.label_json(p, x) for x in p.labels], query,
                         f"{self.prefix}/repos/{owner}/{name}/labels")

    def create_label(self, owner: str, name: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self.repo(owner, name)
        p.labels.setdefault(body["name"], len(p.labels) + 1)
        return 201, self.label_json(p, body["name"]), {}

    def add_labels(self, owner: str, name: str, number: str, body: dict[str, Any],
                   **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        by_id = {i: n for n, i in p.labels.items()}
        pr.labels = list(dict.fromkeys([*pr.labels, *(by_id[i] for i in body["labels"])]))
        self.pr_event(p, pr, "label_updated")
        return 200, [self.label_json(p, x) for x in pr.labels], {}

    def combined_status(self, owner: str, name: str, ref: str, query: dict[str, str],
                 **_: Any) -> Answer:
        p = self.repo(owner, name)
        sha = p.repo.head(ref) or ref
        statuses = [self.status_json(s) for s in p.statuses.get(sha, {}).values()]
        combined = combined_state({s["status"] for s in statuses}, bool(statuses))
        return self.page(statuses, query, f"{self.prefix}/repos/{owner}/{name}/commits/{ref}/status",
                         key="statuses", wrap={"sha": sha, "state": combined,
                                               "total_count": len(statuses)})

    def branch(self, owner: str, name: str, branch: str, **_: Any) -> Answer:
        p = self.project(owner, name)
        sha = p.repo.head(branch) if p else None
        if p is None or sha is None:
            raise Missing(self.not_found)
        protected = p.protected and branch == p.default_branch
        return 200, skeleton("gitea", "Branch", name=branch, protected=protected,
                             required_approvals=p.approvals if protected else 0,
                             enable_status_check=protected and bool(p.checks),
                             status_check_contexts=list(p.checks) if protected else [],
                             commit={"id": sha}, user_can_merge=True,
                             user_can_push=not protected), {}

    # webhooks ---------------------------------------------------------------------------

    def review_event(self, p: Project, pr: PR, user: str, state: str) -> None:
        event = {"approved": "pull_request_approved",
                 "changes_requested": "pull_request_rejected"}.get(state, "pull_request_comment")
        self._send(event, {"action": "reviewed", "pull_request": self.pr_json(p, pr),
                           "sender": {"login": user}, "repository": {"full_name": p.name}})
