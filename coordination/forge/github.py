"""GitHub and GitHub Enterprise Server (``api: https://ghe.example.com/api/v3``) through
the REST API (version 2022-11-28), with GraphQL where REST has nothing (a pull
request's draft state; a merge queue: ``enqueuePullRequest`` pinned to the verified
head, and the pull request's ``mergeQueueEntry``).

Pull requests are ``/repos/{o}/{r}/pulls``; labels and comments go through the pull
request's issue; a merge is ``PUT .../pulls/{n}/merge`` with ``sha`` (GitHub refuses
with 409 when the head moved) and ``merge_method``. Whether it would merge is GitHub's
``mergeable_state`` (``clean``, ``unstable``, ``has_hooks``: yes); the reasons beside
it come from the reviews, the combined status and check runs of the head, and the
base's protection (read by admins; others see the branch's summary, without the
review count) and the branch's rulesets (read by anyone who may read the repository).
A base whose rulesets hold a ``merge_queue`` rule refuses a direct merge (405): its pull
requests are enqueued instead (:meth:`GitHub.enqueue`) and the queue merges them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from coordination.errors import ForgeError, ForgeNotFound, MergeRefused
from coordination.forge.base import (
    Blocker,
    Check,
    Checks,
    MergeMethod,
    MergeResult,
    NewPullRequest,
    Protection,
    PullRequest,
    QueueEntry,
    QueueKind,
    ReviewState,
)
from coordination.forge.events import check_state
from coordination.forge.rest import RestForge, pull_request
from coordination.forge.verdict import head_moved

if TYPE_CHECKING:
    import httpx

API_VERSION = "2022-11-28"
#: mergeable_state values with which GitHub merges (unstable: only checks that are not
#: required fail; has_hooks: the merge runs pre-receive hooks).
MERGEABLE_STATES = ("clean", "unstable", "has_hooks")
_REVIEW = {"APPROVED": ReviewState.approved, "CHANGES_REQUESTED": ReviewState.changes_requested,
           "COMMENTED": ReviewState.commented, "DISMISSED": ReviewState.dismissed,
           "PENDING": ReviewState.pending}


#: The repository setting that allows each merge method.
_ALLOW = {"merge": "allow_merge_commit", "squash": "allow_squash_merge",
          "rebase": "allow_rebase_merge"}

def graphql_url(api: str) -> str:
    """GitHub's GraphQL endpoint beside the REST root (``/graphql`` on github.com,
    ``/api/graphql`` on Enterprise Server, whose REST root is ``/api/v3``)."""
    return api[: -len("/v3")] + "/graphql" if api.endswith("/api/v3") else api + "/graphql"


class GitHub(RestForge):
    """One repository on GitHub (``spec.project`` is ``owner/name``)."""

    OPEN_EXISTS = 422
    LABELS_AFTER_OPEN = True  # GitHub opens a pull request unlabelled
    STATUS_DESCRIPTION_MAX = 140
    REVIEW_WORDS = _REVIEW
    MERGE_409_IS_MOVED = True  # GitHub's 409 to a merge says the head was modified
    MERGE_FIELDS = {"sha": "sha", "merge_method": "method", "commit_title": "title",
                    "commit_message": "message"}
    VERDICT_FIELD = "mergeable_state"
    BEHIND = ("behind",)

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": API_VERSION,
                "Accept": "application/vnd.github+json"}

    @property
    def owner(self) -> str:
        return self.spec.project.split("/", 1)[0]

    # records ----------------------------------------------------------------------------

    def _pr(self, data: Mapping[str, Any]) -> PullRequest:
        return pull_request(data, merged=bool(data.get("merged") or data.get("merged_at")),
                            title=str(data.get("title") or ""), draft=bool(data.get("draft")))

    def _branch(self, branch: str) -> str:
        return quote(branch, safe="")

    # reads ------------------------------------------------------------------------------

    def find_pr(self, head: str, *, base: str | None = None,
                state: Literal["open", "all"] = "open") -> PullRequest | None:
        params: dict[str, Any] = {"head": f"{self.owner}:{head}", "state": state,
                                  "sort": "created", "direction": "desc"}
        if base:
            params["base"] = base
        for item in self._pages(f"{self.base}/pulls", params):
            if item["head"]["ref"] == head:
                return self._pr(item)
        return None

    def list_prs(self, *, label: str | None = None,
                 state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        if label is None:
            items = self._pages(f"{self.base}/pulls", {"state": state})
            return [self._pr(item) for item in items]
        # The pulls list cannot filter by label; the issues list can (pull requests are
        # issues with a pull_request key), then each is read whole (its head).
        issues = self._pages(f"{self.base}/issues", {"labels": label, "state": state})
        return [self.get_pr(int(i["number"])) for i in issues if i.get("pull_request")]

    def protection(self, branch: str) -> Protection:
        """The classic branch protection and the branch's active rulesets together: the
        larger approval count, every required check, strict if either is."""
        rules = self._rules(branch)
        data = self._classic(branch)
        if data is not None:
            checks = data.get("required_status_checks") or None
            reviews = data.get("required_pull_request_reviews") or None
            return Protection(
                branch, True, True,
                max(int(reviews.get("required_approving_review_count") or 0) if reviews else 0,
                    rules.approvals),
                _union(_check_names(checks) if checks else (), rules.checks),
                bool(checks and checks.get("strict")) or rules.strict, rules.queue_kind)
        # No classic protection (404), or the token may not read it (403, or 404 to a
        # non-admin): the branch's own summary, which any reader gets, says whether the
        # classic protection is on, and its checks.
        summary = self.http.get(f"{self.base}/branches/{self._branch(branch)}")
        classic = summary.get("protection") or {}
        if not classic.get("enabled", bool(summary.get("protected"))):  # the rulesets alone
            return Protection(branch, bool(summary.get("protected")) or rules.protects, True,
                              rules.approvals, rules.checks, rules.strict, rules.queue_kind)
        # On, but unreadable here: its review count unknown, the forge's verdict holds.
        checks = classic.get("required_status_checks") or {}
        return Protection(branch, True, False, None,
                          _union(_check_names(checks), rules.checks) or None,
                          merge_queue=rules.queue_kind)

    def _classic(self, branch: str) -> dict[str, Any] | None:
        """The branch's classic protection; None when it has none (404) or the token may
        not read it (403, or 404 to a non-admin)."""
        response = self.http.send("GET", f"{self.base}/branches/{self._branch(branch)}/protection",
                                  allow=(403, 404))
        return dict(response.json()) if response.status_code == 200 else None

    def _rules(self, branch: str) -> _Rules:
        """What the branch's active rulesets ask (repository's and organization's alike;
        rules only evaluated are not returned): any reader may ask, unlike the classic
        protection."""
        protects, approvals, strict, linear, queue = False, 0, False, False, False
        checks: tuple[str, ...] = ()
        methods: tuple[str, ...] | None = None
        try:
            found = list(self._pages(f"{self.base}/rules/branches/{self._branch(branch)}"))
        except ForgeNotFound:  # a GitHub Enterprise Server before rulesets (3.9)
            found = []
        for rule in found:
            protects = True
            params = rule.get("parameters") or {}
            if rule.get("type") == "pull_request":
                approvals = max(approvals, int(params.get("required_approving_review_count") or 0))
                allowed = params.get("allowed_merge_methods")
                if allowed:  # every ruleset's list must allow it
                    given = tuple(str(m) for m in allowed)
                    methods = given if methods is None else tuple(
                        m for m in methods if m in given)
            elif rule.get("type") == "required_linear_history":
                linear = True
            elif rule.get("type") == "merge_queue":
                queue = True
            elif rule.get("type") == "required_status_checks":
                checks = _union(checks, tuple(str(c["context"]) for c in
                                              params.get("required_status_checks") or ()
                                              if c.get("context")))
                strict = strict or bool(params.get("strict_required_status_checks_policy"))
        return _Rules(protects, approvals, checks, strict, linear, methods, queue)

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """The branch's rulesets (``allowed_merge_methods``, required linear history),
        its classic protection's required linear history, when the token may read it,
        and the repository's own settings (``allow_merge_commit``, ``allow_squash_merge``,
        ``allow_rebase_merge``)."""
        rules = self._rules(branch)
        if rules.queue:  # the queue merges by its own rule's merge_method, not the plan's
            return None
        classic = self._classic(branch) or {}
        linear = rules.linear or bool((classic.get("required_linear_history") or {}).get(
            "enabled"))
        where = f"{self.spec.project}: {branch}"
        if linear and method == "merge":
            return (f"{where} requires a linear history: GitHub refuses a merge commit "
                    "(set the plan's change: merge_method: squash or rebase)")
        if rules.methods is not None and method not in rules.methods:
            return (f"{where}: its rulesets allow only {', '.join(rules.methods) or 'no'} "
                    f"merges, not {method} (set the plan's change: merge_method:)")
        # The repository's own settings; a token that may not read them is told none
        # (the field is left out): the merge itself is then the forge's to refuse.
        setting = _ALLOW[method]
        if self.http.get(self.base).get(setting) is False:
            return (f"{self.spec.project}: its settings do not allow {method} merges "
                    f"({setting}: false; set the plan's change: merge_method: to one it "
                    "allows, or allow it in the repository's settings)")
        return None

    def checks(self, sha: str, *, branch: str | None = None,
               protection: Protection | None = None) -> Checks:
        found: dict[str, Check] = {}
        status = self.http.get(f"{self.base}/commits/{sha}/status", {"per_page": 100})
        for s in status.get("statuses") or ():
            check = self._status_check(s, "state")
            found[check.name] = check
        for run in self._pages(f"{self.base}/commits/{sha}/check-runs", key="check_runs"):
            word = run.get("conclusion") if run.get("status") == "completed" else run.get(
                "status")
            found[str(run["name"])] = Check(str(run["name"]), check_state(word),
                                            url=run.get("html_url"))
        return Checks.marked(sha, found.values(), self._required_checks(branch, protection))

    # mergeability: GitHub's mergeable_state, computed in the background ---------------

    def _computing(self, data: Mapping[str, Any]) -> bool:
        return data.get("mergeable") is None and data.get("state") == "open"

    def _merge_word(self, data: Mapping[str, Any]) -> str:
        return str(data.get("mergeable_state") or "unknown")

    def _conflict(self, data: Mapping[str, Any], pr: PullRequest, word: str) -> bool | None:
        return None if data.get("mergeable") is None else not data["mergeable"]

    def _would_merge(self, word: str, pr: PullRequest, found: tuple[Blocker, ...]) -> bool:
        return word in MERGEABLE_STATES and not pr.draft

    # writes -----------------------------------------------------------------------------

    def _open_body(self, new: NewPullRequest) -> dict[str, Any]:
        return {"title": new.title, "head": new.head, "base": new.base, "body": new.body,
                "draft": new.draft}

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None,
                  draft: bool | None = None,
                  labels: Sequence[str] | None = None) -> PullRequest:
        patch = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        if patch:
            self.http.write("PATCH", f"{self.base}/pulls/{number}", patch)
        if labels is not None:
            self.http.write("PUT", f"{self.base}/issues/{number}/labels",
                            {"labels": list(labels)})
        data = self._raw_pr(number)
        if draft is not None and bool(data.get("draft")) != draft:
            self._set_draft(str(data["node_id"]), draft)
            data = self._raw_pr(number)
        return self._pr(data)

    def _set_draft(self, node_id: str, draft: bool) -> None:
        """REST cannot change a pull request's draft state; GraphQL's two mutations can."""
        mutation = ("convertPullRequestToDraft" if draft else "markPullRequestReadyForReview")
        query = (f"mutation($id: ID!) {{ {mutation}(input: {{pullRequestId: $id}}) "
                 "{ pullRequest { isDraft } } }")
        self._graphql(mutation, query, {"id": node_id})

    def _graphql(self, what: str, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """One GraphQL request beside the REST root (same token); its ``data``. GitHub
        answers a refused operation 200 with ``errors``: a ``ForgeError`` naming them."""
        data = self.http.write("POST", graphql_url(self.spec.api),
                               {"query": query, "variables": dict(variables)})
        if not isinstance(data, dict) or data.get("errors"):
            words = "; ".join(str(e.get("message")) for e in (data or {}).get("errors") or ())
            raise self.http.error(ForgeError, f"GitHub refused {what}: {words}")
        return dict(data.get("data") or {})

    def enqueue(self, number: int, *, sha: str) -> QueueEntry:
        """``enqueuePullRequest`` with ``expectedHeadOid`` = ``sha``: checked here first
        (open, head ``sha``: ``MergeRefused``, ``HeadMoved``), and by GitHub again (a
        head that moved in between is refused there, never queued)."""
        where, data = self._merge_preconditions(number, sha)
        node_id = str(data["node_id"])
        query = ("mutation($id: ID!, $sha: GitObjectID!) { enqueuePullRequest(input: "
                 "{pullRequestId: $id, expectedHeadOid: $sha}) { mergeQueueEntry "
                 "{ state position } } }")
        try:
            data = self._graphql("enqueuePullRequest", query, {"id": node_id, "sha": sha})
        except ForgeError as exc:
            now = self.get_pr(number).head_sha
            if now != sha:
                raise head_moved(where, number, sha, now, self.kind, self.project) from exc
            raise MergeRefused(f"{where}: GitHub did not enqueue it: {exc.message}",
                               number=number, reason=exc.message, forge=self.kind,
                               project=self.project) from exc
        entry = (data.get("enqueuePullRequest") or {}).get("mergeQueueEntry") or {}
        return QueueEntry(number, False, _word(entry.get("state")), _int(entry.get("position")),
                          "OPEN", head_sha=sha)

    def queue_entry(self, number: int) -> QueueEntry:
        """The pull request's ``merged``, ``state``, head, merge commit and
        ``mergeQueueEntry``, in one GraphQL query (REST does not say whether it is
        queued)."""
        owner, name = self.spec.project.split("/", 1)
        query = ("query($owner: String!, $name: String!, $number: Int!) { repository("
                 "owner: $owner, name: $name) { pullRequest(number: $number) { merged state "
                 "headRefOid mergeCommit { oid } mergeQueueEntry { state position } } } }")
        found = self._graphql("mergeQueueEntry", query,
                              {"owner": owner, "name": name, "number": number})
        pr = (found.get("repository") or {}).get("pullRequest")
        if not isinstance(pr, dict):
            raise self.http.error(ForgeNotFound, f"{self.spec.project}#{number}: GitHub "
                                  "has no such pull request")
        entry = pr.get("mergeQueueEntry") or {}
        merge = (pr.get("mergeCommit") or {}).get("oid")
        return QueueEntry(number, bool(pr.get("merged")), _word(entry.get("state")),
                          _int(entry.get("position")), str(pr.get("state") or ""),
                          head_sha=_word(pr.get("headRefOid")),
                          merge_sha=_word(merge) if pr.get("merged") else None)

    def _merge_result(self, where: str, number: int, sha: str, method: MergeMethod,
                      response: httpx.Response) -> MergeResult:
        data = response.json()
        if not data.get("merged"):
            reason = str(data.get("message") or "not merged")
            raise MergeRefused(f"{where}: GitHub did not merge: {reason}", number=number,
                               reason=reason, forge=self.kind, project=self.project)
        return MergeResult(number, str(data["sha"]), sha, method, str(data.get("message") or ""))


def _check_names(checks: Mapping[str, Any]) -> tuple[str, ...]:
    names = [str(c) for c in checks.get("contexts") or ()]
    names += [str(c["context"]) for c in checks.get("checks") or () if c.get("context")]
    return tuple(dict.fromkeys(names))


def _word(value: object) -> str | None:
    return str(value) if value else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int) else None


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))


@dataclass(frozen=True)
class _Rules:
    """What a branch's active rulesets ask of a merge (``GET .../rules/branches/{b}``).
    ``protects``: any rule applies (the branch reads protected, as GitHub's summary says)."""

    protects: bool
    approvals: int
    checks: tuple[str, ...]
    strict: bool
    #: a ``required_linear_history`` rule applies (no merge commits)
    linear: bool = False
    #: the merge methods every ``pull_request`` rule allows (None: they do not say)
    methods: tuple[str, ...] | None = None
    #: a ``merge_queue`` rule applies (a direct merge is refused: enqueue)
    queue: bool = False

    @property
    def queue_kind(self) -> QueueKind | None:
        return "merge_queue" if self.queue else None


__all__ = ["GitHub"]
