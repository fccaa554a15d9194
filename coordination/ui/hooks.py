"""Forge webhooks in: ``POST /hooks/<kind>`` (``coord forge webhook``, and ``coord ui``
beside its pages), for GitHub, GitLab and Gitea/Forgejo.

A delivery is believed only when its signature holds (:func:`coordination.forge.webhooks.
verify_signature`: ``X-Hub-Signature-256``, ``X-Gitlab-Token``, ``X-Gitea-Signature``)
under a secret coord has: ``COORD_FORGE_WEBHOOK_SECRET``, or the variable a repo's
``forge: {webhook_secret_env: ...}`` names (a repo's own secret lets in only events of
that repo's project). A missing, malformed or wrong signature, or no secret set at all,
is refused with 401 and changes nothing; so is an unknown kind (404) or a body that is
not an event (400; a push whose ``after`` is not a commit SHA among them). Nothing of the
body is parsed before its signature held, and it is read as it streams in: past
:data:`MAX_BODY` it is refused 413 before more is buffered (a chunked body declares no
length). A delivery whose id (``X-GitHub-Delivery``, ``X-Gitlab-Event-UUID``,
``X-Gitea-Delivery``) was seen in the last day is answered 200 ``{"duplicate": true}``
and starts or changes nothing (:mod:`coordination.runtime.deliveries`).

A verified ``pull_request``, review or check event updates what ``coord change status``
shows of the change's pull requests (:func:`coordination.change.pulls.forge_events.
apply_event`); a ``push`` to a repo of the catalog (its ``forge:`` names the event's
project) starts the plans whose ``on: {push: ...}`` select it, as ``coord trigger push``
does (:func:`coordination.firing.on_push`: a freeze refuses them, each start audited).
A verified ``issues`` (GitLab ``Issue Hook``) event of a forge issue a catalog issue is
linked to (``coord issue link``) writes the forge issue's title and state into it
(:func:`coordination.forge.issue_link.apply_issue_event`).
The answer is a small JSON document (never a secret, never the body back).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coordination.catalog.file.store import CatalogStore
from coordination.change.pulls.forge_events import apply_event
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import ChangePlan, change_of
from coordination.errors import CoordError
from coordination.forge.base import KINDS, ForgeEvent, ForgeFactory, Kind, PushEvent
from coordination.forge.issue_link import apply_issue_event
from coordination.forge.issues import IssueEvent
from coordination.forge.webhooks import parse_event, verify_signature
from coordination.runtime.context import Runtime
from coordination.sweeps.governance.forge_reviews import count_reviews, views_for_votes

log = logging.getLogger("coord.ui.hooks")

#: The most a delivery's body may hold (GitHub caps its own at 25 MB; a change's events
#: are far smaller).
MAX_BODY = 5 * 1024 * 1024
#: The variable every forge's webhook secret is read from when its repo names none.
GLOBAL = "COORD_FORGE_WEBHOOK_SECRET"


class Hooks:
    """The webhook endpoint over ``rt`` and the catalog at ``catalog`` (its repos'
    ``forge:`` say which secrets sign which projects). ``env``: where secrets and
    tokens are read (default the process's environment); ``factory``: the forges'
    (tests give a stub's)."""

    def __init__(self, rt: Runtime, catalog: str | Path | None,
                 env: Mapping[str, str] | None = None,
                 factory: ForgeFactory | None = None) -> None:
        self.rt = rt
        self.catalog = Path(catalog) if catalog is not None else None
        self.env = os.environ if env is None else env
        self.factory = factory

    def routes(self) -> list[Route]:
        return [Route("/hooks/{kind}", self.receive, methods=["POST"])]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())

    def _secrets(self, kind: str) -> list[tuple[str, frozenset[str] | None]]:
        """(secret, the projects it may speak for; None: any) for ``kind``."""
        out: list[tuple[str, frozenset[str] | None]] = []
        if self.env.get(GLOBAL):
            out.append((self.env[GLOBAL], None))
        if self.catalog is None or not self.catalog.is_file():
            return out
        try:
            repos = CatalogStore(self.catalog).load().repos
        except CoordError:
            return out
        own: dict[str, set[str]] = {}
        for r in repos:
            f = r.forge
            if f is not None and f.kind == kind and f.webhook_secret_env:
                value = self.env.get(f.webhook_secret_env, "")
                if value:
                    own.setdefault(value, set()).add(f.project)
        out += [(secret, frozenset(projects)) for secret, projects in own.items()]
        return out

    async def receive(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return JSONResponse({"error": f"no forge kind {kind[:40]!r}",
                                 "hint": "POST to /hooks/github, /hooks/gitlab or /hooks/gitea"},
                                status_code=404)
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            return JSONResponse({"error": "a Content-Length that is no number"}, status_code=400)
        if declared > MAX_BODY:
            return _too_large()
        body = await _capped_body(request)
        if body is None:
            return _too_large()
        headers = dict(request.headers)
        secrets = self._secrets(kind)
        if not secrets:
            log.warning("a %s webhook delivery refused: no webhook secret is set (%s)",
                        kind, GLOBAL)
            return _unauthorized(f"no webhook secret is set here: set {GLOBAL} (or the "
                                 "repo's forge: webhook_secret_env) to the forge's secret")
        fk = cast("Kind", kind)
        allowed = [projects for secret, projects in secrets
                   if verify_signature(fk, headers, body, secret)]
        if not allowed:
            log.warning("a %s webhook delivery refused: its signature does not verify", kind)
            return _unauthorized("the delivery's signature is missing or does not verify")
        try:
            event = parse_event(fk, headers, body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)[:300]}, status_code=400)
        if event is None:
            return JSONResponse({"event": None, "ignored": True}, status_code=202)
        if all(p is not None and event.project not in p for p in allowed):
            return _unauthorized(f"the secret it was signed with is not {event.project}'s")
        # A delivery seen in the last day (a replay of a captured one, a redelivery of one
        # handled) starts and changes nothing: answered 200 so the forge stops retrying.
        seen = event.delivery
        if seen and not await anyio.to_thread.run_sync(self.rt.deliveries.first, kind, seen):
            log.info("a %s webhook delivery %s was seen already: ignored", kind, seen[:80])
            return JSONResponse({"event": type(event).__name__, "duplicate": True})
        answer = await self._handle(event)
        if seen and answer.status_code >= 400:  # not handled: its redelivery is taken
            await anyio.to_thread.run_sync(self.rt.deliveries.forget, kind, seen)
        return answer

    async def _handle(self, event: ForgeEvent | IssueEvent) -> Response:
        """What a verified, first-seen delivery's event does."""
        if self.catalog is None:
            return JSONResponse({"event": type(event).__name__, "updated": {}})
        catalog_path = self.catalog
        if isinstance(event, PushEvent):
            return JSONResponse(await anyio.to_thread.run_sync(pushed, catalog_path, event))
        if isinstance(event, IssueEvent):
            try:
                return JSONResponse(await anyio.to_thread.run_sync(
                    apply_issue_event, catalog_path, event))
            except CoordError as exc:
                return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=400)
        pr_event: ForgeEvent = event

        def apply() -> dict[str, object]:
            catalog = CatalogStore(catalog_path).load()
            base = catalog_path.resolve().parent
            done = apply_event(self.rt, catalog, base, pr_event, factory=self.factory,
                               env=self.env)
            counted = []
            for plan in done.updated:  # a gate that counts the pull request's approvals
                counted += counted_reviews(self.rt, catalog_path, change_of(catalog, plan, base),
                                           self.factory, self.env)
            return {**done.document(), "votes": counted}

        try:
            return JSONResponse(await anyio.to_thread.run_sync(apply))
        except CoordError as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=400)


def pushed(catalog: Path, event: ForgeEvent) -> dict[str, object]:
    """A verified push: each catalog repo on the event's forge project starts what its
    push triggers select (:func:`coordination.firing.on_push`); a repo no trigger
    selects starts nothing. Each start (or why it did not: a frozen fleet) is listed."""
    from coordination.firing import on_push, push_catalog  # lazy: the send path

    assert isinstance(event, PushEvent)
    read = push_catalog(catalog)  # once, for every repo the event names
    repos = [r.name for r in read.repos if r.forge is not None
             and r.forge.kind == event.forge and r.forge.project == event.project]
    started: list[dict[str, object]] = []
    for repo in repos:
        _, each = on_push(catalog, repo, event.branch, event.sha, read=read)
        started += [s.document() for s in each]
    return {"event": type(event).__name__, "updated": {}, "repos": repos, "started": started}


def counted_reviews(rt: Runtime, catalog: Path, cp: ChangePlan, factory: ForgeFactory | None,
                    env: Mapping[str, str]) -> list[dict[str, object]]:
    """A ``forge_reviews`` gate's pull request's approvals cast as its votes."""
    if not any((cp.gate_specs.get(g) or {}).get("forge_reviews") for g in cp.gates):
        return []
    st = rt.changes.read(cp.plan)
    views = views_for_votes(rt, cp, st, ChangeForges(cp, factory, env))
    return [dict(c) for c in count_reviews(rt, catalog, cp, views)]


async def _capped_body(request: Request) -> bytes | None:
    """The body, read as it streams in; None as soon as it passes :data:`MAX_BODY`
    (nothing past the cap is buffered: a chunked body declares no length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> JSONResponse:
    return JSONResponse({"error": f"delivery too large (at most {MAX_BODY} bytes)"},
                        status_code=413)


def _unauthorized(why: str) -> JSONResponse:
    return JSONResponse({"error": why}, status_code=401)
