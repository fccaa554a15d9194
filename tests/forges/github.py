"""A fake GitHub: the REST operations coord calls (``openapi/github.json``, trimmed from
``@octokit/openapi``), answered from the shared state with GitHub's shapes and
refusals (422 for a second pull request of one head, 405 for a merge the protection
refuses, 409 for a merge whose ``sha`` is not the head), and GitHub's webhooks signed
with ``X-Hub-Signature-256``. Its GraphQL endpoint runs the two draft mutations,
``enqueuePullRequest`` and the query of a pull request's ``mergeQueueEntry``
(``repository { pullRequest(number:) }``) with graphql-core against ``openapi/github.graphql`` (trimmed from
``@octokit/graphql-schema``): a query or variables that schema refuses is an error.
A ruleset's ``merge_queue`` rule refuses a direct merge (405, GitHub's words); an
enqueued pull request waits in the project's ``queue`` until the test releases it
(:meth:`FakeForge.release`: merged on the bare repository) or removes it
(:meth:`FakeForge.dequeue`).

A GitHub App (:meth:`FakeGitHub.add_app`): the installation and its tokens are asked for
with the App's JWT, which the fake verifies with the App's public key (RS256, ``iss`` the
App's id, at most 10 minutes); an installation token is refused once its ``expires_at``
(by :attr:`FakeGitHub.clock`) has passed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import graphql

from tests.forges.gitrepo import HeadMovedError, MergeConflict
from tests.forges.repos import REPO, RepoForge, combined_state
from tests.forges.server import PR, Answer, Issue, Project, QueueEntry, Seen, Status
from tests.forges.validation import skeleton

DOCS = "https://docs.github.com/rest"
GRAPHQL_PATH = "/api/graphql"  # beside Enterprise's /api/v3


class Refused(Exception):
    """A GraphQL operation GitHub refuses (answered 200 with ``errors``, as GitHub does)."""


@cache
def graphql_schema() -> graphql.GraphQLSchema:
    return graphql.build_schema(
        (Path(__file__).parent / "openapi" / "github.graphql").read_text())
_REVIEW_WORD = {"approved": "APPROVED", "changes_requested": "CHANGES_REQUESTED",
                "commented": "COMMENTED"}


class FakeGitHub(RepoForge):
    kind = "github"
    prefix = "/api/v3"  # as GitHub Enterprise Server: what spec_of makes of a bare host
    not_found = {"message": "Not Found"}
    event_header, delivery_header = "X-GitHub-Event", "X-GitHub-Delivery"

    #: A GitHub App (add_app): its id and public key; the installation tokens it
    #: issued (token -> expires_at, epoch seconds), and how long each lives.
    app_id: str | None = None
    app_public_key: Any = None
    token_ttl: float = 3600.0
    #: The fake's clock for tokens' expiry (a test shares it with coord's).
    clock: Callable[[], float] = staticmethod(time.time)

    def add_app(self, app_id: str, public_key: Any, *, token_ttl: float = 3600.0,
                clock: Callable[[], float] | None = None) -> None:
        """A GitHub App installed on every project: ``public_key`` verifies its JWTs."""
        self.app_id, self.app_public_key, self.token_ttl = app_id, public_key, token_ttl
        self.installation_tokens: dict[str, float] = {}
        self.jwts: list[dict[str, Any]] = []  # the claims of every JWT verified
        self.expired: list[str] = []  # installation tokens refused for being past expiry
        if clock is not None:
            self.clock = clock

    def _jwt_claims(self, headers: dict[str, str]) -> dict[str, Any] | None:
        """The claims of the request's JWT if the App's key signed it as GitHub
        requires (RS256, iss the App's id, iat and exp at most 10 minutes apart)."""
        import jwt

        value = headers.get("authorization", "")
        if self.app_id is None or not value.startswith("Bearer "):
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                value[7:], self.app_public_key, algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_iat": False,
                         "verify_exp": False})
        except jwt.PyJWTError:
            return None
        now = self.clock()
        if (str(claims["iss"]) != self.app_id or claims["exp"] - claims["iat"] > 600
                or not claims["iat"] <= now < claims["exp"]):
            return None
        return claims

    def authorized(self, headers: dict[str, str]) -> bool:
        if headers.get("authorization") == f"Bearer {self.token}":
            return True
        if self.app_id is None:
            return False
        value = headers.get("authorization", "")[len("Bearer "):]
        if self._app_path:  # the App's own endpoints: its JWT, nothing else
            claims = self._jwt_claims(headers)
            if claims is not None:
                self.jwts.append(claims)
            return claims is not None
        ends = self.installation_tokens.get(value)
        if ends is None:
            return False
        if self.clock() >= ends:
            self.expired.append(value)
            return False
        return True

    _app_path = False

    def handle(self, method: str, path: str, query: list[tuple[str, str]],
               headers: dict[str, str], body: bytes) -> Answer:
        if path != GRAPHQL_PATH:
            with self.lock:
                self._app_path = path.startswith(f"{self.prefix}/app/") or path.endswith(
                    "/installation")
                try:
                    return super().handle(method, path, query, headers, body)
                finally:
                    self._app_path = False
        with self.lock:
            self.seen.append(Seen(method, path, query, headers, body))
            if not self.authorized(headers):
                return 401, {"message": "Bad credentials"}, {}
            doc = json.loads(body)
            result = graphql.graphql_sync(graphql_schema(), doc["query"],
                                          root_value=self._mutations(),
                                          variable_values=doc.get("variables"))
            if result.errors:
                words = "; ".join(e.message for e in result.errors)
                if all(e.original_error is not None and isinstance(e.original_error, Refused)
                       for e in result.errors):  # the operation's own refusal, as GitHub's
                    return 200, {"data": result.data, "errors": [
                        {"message": e.message} for e in result.errors]}, {}
                error = f"POST {path}: graphql: " + words
                self.errors.append(error)
                return 500, {"message": error}, {}
            return 200, {"data": result.data}, {}

    def _mutations(self) -> dict[str, Any]:
        def draft(to: bool) -> Any:
            def resolve(_info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
                _, pid, number = str(input["pullRequestId"]).split("_")
                p = next(x for x in self.projects.values() if x.id == int(pid))
                pr = p.prs[int(number)]
                pr.draft = to
                self.pr_event(p, pr, "converted_to_draft" if to else "ready_for_review")
                return {"pullRequest": {"id": input["pullRequestId"], "isDraft": pr.draft,
                                        "number": pr.number}}
            return resolve
        def pull_of(node_id: object) -> tuple[Project, PR]:
            _, pid, number = str(node_id).split("_")
            p = next(x for x in self.projects.values() if x.id == int(pid))
            return p, p.prs[int(number)]

        def entry_json(p: Project, e: QueueEntry) -> dict[str, Any]:
            return {"id": f"MQE_{p.id}_{e.number}", "state": e.state,
                    "position": p.queue.index(e) + 1}

        def enqueue(_info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
            p, pr = pull_of(input["pullRequestId"])
            head = p.head_of(pr)
            if p.ruleset is None or not p.ruleset.queue or pr.base != p.default_branch:
                raise Refused("Pull request is not in a merge queue enabled branch")
            if input.get("expectedHeadOid") and input["expectedHeadOid"] != head:
                raise Refused("Head sha didn't match expected head sha")
            if pr.state != "open" or self.blockers(p, pr):
                raise Refused("Pull request is not mergeable")
            if any(e.number == pr.number for e in p.queue):
                raise Refused("Pull request is already in the merge queue")
            e = QueueEntry(pr.number, head)
            p.queue.append(e)
            return {"mergeQueueEntry": entry_json(p, e)}

        def repository(_info: Any, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
            p = self.projects.get(f"{owner}/{name}")
            if p is None:
                return None

            def pull_request(_info: Any, number: int) -> dict[str, Any] | None:
                pr = p.prs.get(number)
                if pr is None:
                    return None
                entry = next((e for e in p.queue if e.number == pr.number), None)
                if entry is not None:
                    entry.reads += 1
                merged = pr.state == "merged"
                return {"id": f"PR_{p.id}_{pr.number}", "number": pr.number,
                        "isDraft": pr.draft, "merged": merged, "state": pr.state.upper(),
                        "headRefOid": p.head_of(pr),
                        "mergeCommit": {"id": f"C_{pr.merge_sha}", "oid": pr.merge_sha}
                        if merged and pr.merge_sha else None,
                        "mergeQueueEntry": None if entry is None else entry_json(p, entry)}

            return {"id": f"R_{p.id}", "pullRequest": pull_request}

        return {"convertPullRequestToDraft": draft(True),
                "markPullRequestReadyForReview": draft(False),
                "enqueuePullRequest": enqueue, "repository": repository}

    # the merge queue, as the test drives it ------------------------------------------------

    def queue_method(self, p: Project) -> str:
        return (p.ruleset.queue if p.ruleset and p.ruleset.queue else "MERGE").lower()

    def set_queue_state(self, name: str, number: int, state: str) -> int:
        """The entry's state now (``UNMERGEABLE``: a check failed in the queue); how
        often coord had read it."""
        with self.lock:
            [e] = [x for x in self.projects[name].queue if x.number == number]
            e.state = state
            return e.reads

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        return {"X-Hub-Signature-256": "sha256=" + self.hmac_hex(body, secret)}

    def add_routes(self) -> None:
        super().add_routes()
        r = self.route
        r("GET", REPO + "/issues", self.list_issues)
        r("PUT", REPO + r"/issues/(?P<number>\d+)/labels", self.set_labels)
        r("GET", REPO + r"/commits/(?P<ref>[^/]+)/check-runs", self.check_runs)
        r("GET", REPO + r"/branches/(?P<branch>[^/]+)/protection", self.protection)
        r("GET", REPO + r"/rules/branches/(?P<branch>[^/]+)", self.rules)
        r("GET", REPO + "/installation", self.installation)
        r("GET", REPO + "$", self.get_repo)
        r("POST", r"/app/installations/(?P<installation>\d+)/access_tokens", self.access_token)

    # JSON -------------------------------------------------------------------------------

    def user_json(self, login: str = "coord-bot") -> dict[str, Any]:
        return skeleton("github", "simple-user", login=login, id=abs(hash(login)) % 10_000,
                        type="User")

    def repo_json(self, p: Project) -> dict[str, Any]:
        owner, name = p.name.split("/")
        return skeleton("github", "repository", id=p.id, name=name, full_name=p.name,
                        default_branch=p.default_branch, owner=self.user_json(owner))

    def label_json(self, p: Project, name: str) -> dict[str, Any]:
        return skeleton("github", "label", id=p.labels.setdefault(name, len(p.labels) + 1),
                        name=name, color="ededed", description="")

    def pr_json(self, p: Project, pr: PR, schema: str = "pull-request") -> dict[str, Any]:
        head = p.head_of(pr)
        owner = p.name.split("/")[0]
        extra: dict[str, Any] = {}
        if schema == "pull-request":
            blockers = self.blockers(p, pr) if pr.state == "open" else []
            conflict = pr.state == "open" and "conflict" in blockers
            state = ("dirty" if conflict else "draft" if pr.draft else
                     "blocked" if blockers else "clean")
            if p.queued_word and any(e.number == pr.number for e in p.queue):
                state = p.queued_word
            extra = {"merged": pr.state == "merged", "mergeable": not conflict,
                     "mergeable_state": state if pr.state == "open" else "unknown",
                     "merged_by": None, "comments": 0, "review_comments": 0, "commits": 1,
                     "additions": 1, "deletions": 0, "changed_files": 1,
                     "maintainer_can_modify": False}
        return skeleton(
            "github", schema, number=pr.number, id=pr.number, node_id=f"PR_{p.id}_{pr.number}",
            html_url=f"{self.origin}/{p.name}/pull/{pr.number}",
            url=f"{self.api}/repos/{p.name}/pulls/{pr.number}",
            state="open" if pr.state == "open" else "closed", title=pr.title, body=pr.body,
            draft=pr.draft, labels=[self.label_json(p, x) for x in pr.labels],
            user=self.user_json(pr.author), locked=False,
            merged_at="2026-01-01T00:00:00Z" if pr.state == "merged" else None,
            merge_commit_sha=pr.merge_sha,
            head={"label": f"{owner}:{pr.head}", "ref": pr.head, "sha": head,
                  "repo": self.repo_json(p), "user": self.user_json(owner)},
            base={"label": f"{owner}:{pr.base}", "ref": pr.base,
                  "sha": p.repo.head(pr.base) or "", "repo": self.repo_json(p),
                  "user": self.user_json(owner)}, **extra)

    def issue_json(self, p: Project, issue: Issue) -> dict[str, Any]:
        return skeleton(
            "github", "issue", id=issue.number, node_id=f"I{issue.number}",
            number=issue.number, title=issue.title, body=issue.body, state=issue.state,
            user=self.user_json(), html_url=f"{self.origin}/{p.name}/issues/{issue.number}",
            url=f"{self.api}/repos/{p.name}/issues/{issue.number}", comments=len(
                p.comments.get(issue.number, [])), author_association="MEMBER")

    def comment_json(self, number: int, text: str) -> dict[str, Any]:
        return skeleton("github", "issue-comment", id=number, node_id="C1", body=text,
                        user=self.user_json(), author_association="MEMBER")

    def status_json(self, s: Status) -> dict[str, Any]:
        return skeleton("github", "status", id=1, node_id="S1", state=s.state,
                        context=s.name, target_url=s.target_url, description=s.description,
                        creator=self.user_json())

    # handlers ---------------------------------------------------------------------------

    def user(self, **_: Any) -> Answer:
        return 200, skeleton("github", "public-user", login="coord-bot", id=1, type="User",
                             user_view_type="public"), {}

    def list_pulls(self, owner: str, name: str, query: dict[str, str], **_: Any) -> Answer:
        p = self.repo(owner, name)
        state = query.get("state", "open")
        head = query.get("head", "")
        items = [pr for pr in sorted(p.prs.values(), key=lambda x: -x.number)
                 if (state == "all" or (pr.state == "open") == (state == "open"))
                 and (not head or f"{owner}:{pr.head}" == head)
                 and (not query.get("base") or pr.base == query["base"])]
        return self.page([self.pr_json(p, pr, "pull-request-simple") for pr in items], query,
                         f"{self.prefix}/repos/{owner}/{name}/pulls")

    def create_pull(self, owner: str, name: str, body: dict[str, Any], **_: Any) -> Answer:
        p = self.repo(owner, name)
        head, base = body["head"].split(":")[-1], body["base"]
        if p.repo.head(head) is None:
            return 422, {"message": "Validation Failed", "documentation_url": DOCS, "errors": [
                {"resource": "PullRequest", "field": "head", "code": "invalid"}]}, {}
        if any(pr.head == head and pr.base == base and pr.state == "open"
               for pr in p.prs.values()):
            return 422, {"message": "Validation Failed", "documentation_url": DOCS, "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {owner}:{head}."}]}, {}
        pr = PR(self.number(), head, base, body.get("title", ""), body.get("body") or "", [],
                draft=bool(body.get("draft")))
        p.prs[pr.number] = pr
        self.pr_event(p, pr, "opened")
        return 201, self.pr_json(p, pr), {}

    def edit_pull(self, owner: str, name: str, number: str, body: dict[str, Any],
                  **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        pr.title = body.get("title", pr.title)
        pr.body = body.get("body", pr.body)
        self.close_or_edit(p, pr, body)
        return 200, self.pr_json(p, pr), {}

    def merge_pull(self, owner: str, name: str, number: str, body: dict[str, Any] | None,
                   **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        body = body or {}
        head = p.head_of(pr)
        if body.get("sha") and body["sha"] != head:
            return 409, {"message": "Head branch was modified. Review and try the merge again."}, {}
        if pr.state != "open" or pr.number in p.refusals or self.blockers(p, pr):
            why = p.refusals.get(pr.number) or "Pull Request is not mergeable"
            return 405, {"message": why}, {}
        method = body.get("merge_method", "merge")
        r = p.ruleset
        if r is not None and r.queue and pr.base == p.default_branch:
            return 405, {"message": "Repository rule violations found\n\nChanges must be "
                         "made through the merge queue\n\n",
                         "documentation_url": f"{DOCS}/pulls/pulls#merge-a-pull-request"}, {}
        if (r is not None and pr.base == p.default_branch and (
                (r.linear and method == "merge") or (r.methods and method not in r.methods))
                or p.allowed_methods is not None and method not in p.allowed_methods):
            return 405, {"message": f"{method} merges are not allowed on this repository"}, {}
        try:
            sha = self.do_merge(p, pr, head, method, body.get("commit_title") or
                                f"Merge pull request #{pr.number}")
        except HeadMovedError:
            return 409, {"message": "Head branch was modified. Review and try the merge again."}, {}
        except MergeConflict:
            return 405, {"message": "Pull Request is not mergeable"}, {}
        return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}

    def list_reviews(self, owner: str, name: str, number: str, query: dict[str, str],
                     **_: Any) -> Answer:
        p, pr = self.pull(owner, name, number)
        items = [skeleton("github", "pull-request-review", id=i + 1, node_id=f"R{i}",
                          user=self.user_json(user), body="", state=_REVIEW_WORD[state],
                          commit_id=sha, html_url=f"{self.origin}/{p.name}/pull/{pr.number}",
                          pull_request_url=f"{self.api}/repos/{p.name}/pulls/{pr.number}",
                          author_association="MEMBER",
                          _links={"html": {"href": "https://fake.invalid/"},
                                  "pull_request": {"href": "https://fake.invalid/"}},
                          submitted_at="2026-01-01T00:00:00Z")
                 for i, (user, state, sha) in enumerate(p.reviews.get(pr.number, []))]
        return self.page(items, query,
                         f"{self.prefix}/repos/{owner}/{name}/pulls/{number}/reviews")

    def list_issues(self, owner: str, name: str, query: dict[str, str], **_: Any) -> Answer:
        p = self.repo(owner, name)
        want = set(filter(None, query.get("labels", "").split(",")))
        state = query.get("state", "open")
        items = []
        for pr in sorted(p.prs.values(), key=lambda x: -x.number):
            if want - set(pr.labels):
                continue
            if state != "all" and (pr.state == "open") != (state == "open"):
                continue
            items.append(skeleton(
                "github", "issue", id=pr.number, node_id=f"I{pr.number}", number=pr.number,
                title=pr.title, state="open" if pr.state == "open" else "closed",
                labels=[self.label_json(p, x) for x in pr.labels], user=self.user_json(),
                pull_request={"url": f"{self.api}/repos/{p.name}/pulls/{pr.number}",
                              "html_url": None, "diff_url": None, "patch_url": None},
                html_url=f"{self.origin}/{p.name}/pull/{pr.number}", comments=0,
                author_association="MEMBER"))
        return self.page(items, query, f"{self.prefix}/repos/{owner}/{name}/issues")

    def _labels(self, owner: str, name: str, number: str, body: dict[str, Any],
                replace: bool) -> Answer:
        p, pr = self.pull(owner, name, number)
        names = [x if isinstance(x, str) else x["name"] for x in body.get("labels", [])]
        pr.labels = list(dict.fromkeys(names if replace else [*pr.labels, *names]))
        self.pr_event(p, pr, "labeled")
        return 200, [self.label_json(p, x) for x in pr.labels], {}

    def add_labels(self, owner: str, name: str, number: str, body: dict[str, Any],
                   **_: Any) -> Answer:
        return self._labels(owner, name, number, body, replace=False)

    def set_labels(self, owner: str, name: str, number: str, body: dict[str, Any],
                   **_: Any) -> Answer:
        return self._labels(owner, name, number, body, replace=True)

    def combined_status(self, owner: str, name: str, ref: str, **_: Any) -> Answer:
        p = self.repo(owner, name)
        sha = p.repo.head(ref) or ref
        statuses = [s for s in p.statuses.get(sha, {}).values()]
        combined = combined_state({s.state for s in statuses}, bool(statuses))
        return 200, skeleton("github", "combined-commit-status", state=combined, sha=sha,
                             total_count=len(statuses),
                             statuses=[skeleton("github", "simple-commit-status", id=i + 1,
                                                node_id=f"S{i}", state=s.state, context=s.name,
                                                target_url=s.target_url,
                                                description=s.description or None,
                                                avatar_url=None,
                                                required=s.name in p.required()[1])
                                       for i, s in enumerate(statuses)],
                             repository=skeleton("github", "minimal-repository", id=p.id,
                                                 name=p.name.split("/")[1], full_name=p.name,
                                                 owner=self.user_json(owner))), {}

    def get_repo(self, owner: str, name: str, **_: Any) -> Answer:
        """The repository as its admin reads it: its merge settings (``allow_*``) from
        the project's ``allowed_methods`` (None: every method)."""
        p = self.projects.get(f"{owner}/{name}")
        if p is None:
            return 404, {"message": "Not Found"}, {}
        allowed = p.allowed_methods
        return 200, skeleton(
            "github", "full-repository", id=p.id, name=name, full_name=p.name,
            default_branch=p.default_branch, owner=self.user_json(owner),
            **{f: allowed is None or m in allowed for f, m in (
                ("allow_merge_commit", "merge"), ("allow_rebase_merge", "rebase"),
                ("allow_squash_merge", "squash"))}), {}

    def installation(self, owner: str, name: str, **_: Any) -> Answer:
        p = self.repo(owner, name)
        return 200, skeleton("github", "installation", id=7000 + p.id,
                             app_id=int(self.app_id or 0), app_slug="coord",
                             account=self.user_json(owner), target_type="Organization",
                             repository_selection="selected", events=["pull_request"],
                             permissions={"contents": "write", "pull_requests": "write",
                                          "statuses": "write", "metadata": "read"}), {}

    def access_token(self, installation: str, **_: Any) -> Answer:
        if int(installation) - 7000 not in {p.id for p in self.projects.values()}:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        token = f"ghs_fake{len(self.installation_tokens) + 1:04d}installation"
        ends = self.clock() + self.token_ttl
        self.installation_tokens[token] = ends
        when = datetime.fromtimestamp(ends, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, skeleton("github", "installation-token", token=token, expires_at=when), {}

    def check_runs(self, owner: str, name: str, ref: str, query: dict[str, str],
                   **_: Any) -> Answer:
        # coord's statuses are commit statuses; the fake's CI reports none as check runs.
        return self.page([], query, f"{self.prefix}/repos/{owner}/{name}/commits/{ref}/check-runs",
                         key="check_runs", wrap={"total_count": 0})

    def protection(self, owner: str, name: str, branch: str, **_: Any) -> Answer:
        p = self.project(owner, name)
        if p is not None and not p.admin:  # GitHub's answer to a token that may not read it
            return 404, {"message": "Not Found"}, {}
        if p is None or not p.protected or branch != p.default_branch:
            return 404, {"message": "Branch not protected"}, {}
        return 200, skeleton(
            "github", "branch-protection",
            required_status_checks={"strict": False, "contexts": list(p.checks),
                                    "checks": [{"context": c, "app_id": None} for c in p.checks]},
            required_pull_request_reviews={
                "required_approving_review_count": p.approvals,
                "dismiss_stale_reviews": False, "require_code_owner_reviews": False}), {}

    def rules(self, owner: str, name: str, branch: str, query: dict[str, str],
              **_: Any) -> Answer:
        """The active rules of the branch: the ruleset's pull request and status check
        rules, and its ban on force pushes (which asks nothing of a merge)."""
        p = self.project(owner, name)
        rules: list[dict[str, Any]] = []
        if p is not None and p.ruleset is not None and branch == p.default_branch:
            r, info = p.ruleset, {"ruleset_source_type": "Repository",
                                  "ruleset_source": p.name, "ruleset_id": 1}
            rules = [{"type": "non_fast_forward", **info},
                     {"type": "pull_request", "parameters": {
                         "dismiss_stale_reviews_on_push": False,
                         "require_code_owner_review": False,
                         "require_last_push_approval": False,
                         "required_approving_review_count": r.approvals,
                         "required_review_thread_resolution": False,
                         **({"allowed_merge_methods": r.methods} if r.methods else {})},
                      **info}]
            if r.linear:
                rules.append({"type": "required_linear_history", **info})
            if r.queue:
                rules.append({"type": "merge_queue", "parameters": {
                    "check_response_timeout_minutes": 60, "grouping_strategy": "ALLGREEN",
                    "max_entries_to_build": 5, "max_entries_to_merge": 5,
                    "merge_method": r.queue, "min_entries_to_merge": 1,
                    "min_entries_to_merge_wait_minutes": 5}, **info})
            if r.checks:
                rules.append({"type": "required_status_checks", "parameters": {
                    "required_status_checks": [{"context": c} for c in r.checks],
                    "strict_required_status_checks_policy": r.strict}, **info})
        return self.page(rules, query, f"{self.prefix}/repos/{owner}/{name}/rules/branches/{branch}")

    def branch(self, owner: str, name: str, branch: str, **_: Any) -> Answer:
        p = self.project(owner, name)
        sha = p.repo.head(branch) if p else None
        if p is None or sha is None:
            return 404, {"message": "Branch not found"}, {}
        classic = p.protected and branch == p.default_branch
        # protected: by the classic protection or a ruleset; its protection: the classic's
        protected = classic or (p.ruleset is not None and branch == p.default_branch)
        return 200, skeleton(
            "github", "branch-with-protection", name=branch, protected=protected,
            protection=skeleton("github", "branch-protection", enabled=classic,
                                required_status_checks={
                                    "contexts": list(p.checks) if classic else [],
                                    "checks": [{"context": c, "app_id": None}
                                               for c in (p.checks if classic else [])],
                                    "enforcement_level": "everyone" if classic else "off"}),
            protection_url=f"{self.api}/repos/{p.name}/branches/{branch}/protection",
            commit=skeleton("github", "commit", sha=sha)), {}

    # webhooks ---------------------------------------------------------------------------

    def review_event(self, p: Project, pr: PR, user: str, state: str) -> None:
        self._send("pull_request_review", {
            "action": "submitted", "review": {"state": state, "user": {"login": user},
                                              "commit_id": p.head_of(pr)},
            "pull_request": self.pr_json(p, pr), "repository": {"full_name": p.name}})
