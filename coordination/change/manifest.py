"""A landing's manifest: what prepare recorded (signed) and commit lands, per repo in
landing order (:mod:`coordination.change.landing`; ``land: pr`` reads it too:
:mod:`coordination.change.pulls.pull_landing`)."""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = ["Manifest", "ManifestRepo", "ManifestWave"]


class ManifestRepo(TypedDict):
    repo: str
    order: int
    remote: str
    base: str
    base_sha: str
    candidate: str
    worktree: str
    land_command: str | None
    #: ``land: pr``: its pull request's number (what is merged)
    pr: NotRequired[int]
    #: ``land: pr``: its base requires a merge queue (as its forge said it at prepare),
    #: of this kind: ``merge_queue`` (GitHub), ``merge_train`` (GitLab): the pull
    #: request is enqueued, not merged (the landing asks the forge again)
    merge_queue: NotRequired[str]


class ManifestWave(TypedDict):
    name: str
    repos: list[str]  # landing order
    soak: float  # seconds waited after it landed, before the next wave starts


class Manifest(TypedDict):
    plan: str
    branch: str
    land: str
    created: int
    repos: list[ManifestRepo]
    #: ``land: per-wave``: the waves, in landing order (their repos, in order, are ``repos``)
    waves: NotRequired[list[ManifestWave]]
    #: repos of the change with no commit on its branch (candidate = base): nothing to land
    unchanged: NotRequired[list[str]]
    #: ``land: pr``: how the forge merges each pull request
    merge_method: NotRequired[str]
