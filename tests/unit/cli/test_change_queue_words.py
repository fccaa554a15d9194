"""`coord change status` says a pull request goes through its base's merge queue (GitLab:
merge train) while it is open, and says nothing of the queue once it is merged or closed."""

from __future__ import annotations

from typing import Any

import pytest

from coordination.cli import change

pytestmark = pytest.mark.timeout(30)


def _status(state: str, queue: dict[str, Any]) -> dict[str, Any]:
    return {"repos": {"api": {"repo": "api", "state": "published", "pr": {
        "number": 7, "url": "https://forge/acme/api/pull/7", "state": state, "draft": False,
        "reviews": {"approved_by": [], "required": None}, "checks": {"state": "success"},
        "mergeable": state == "open", "merge_queue": queue}}}}


@pytest.mark.parametrize(("state", "queue", "said"), [
    ("open", {"kind": "merge_queue", "state": None, "position": None},
     "through the merge queue (not queued yet)"),
    ("open", {"kind": "merge_train", "state": "QUEUED", "position": 2},
     "through the merge train (queued, position 2)"),
    ("merged", {"kind": "merge_queue", "state": None, "position": None}, None),
    ("closed", {"kind": "merge_train", "state": None, "position": None}, None),
])
def test_the_queue_is_said_of_an_open_pull_request_only(
        state: str, queue: dict[str, Any], said: str | None,
        capsys: pytest.CaptureFixture[str]) -> None:
    change._say_pulls(_status(state, queue))
    out = capsys.readouterr().out
    assert out.startswith(f"pull request api: #7 https://forge/acme/api/pull/7: {state}"), out
    if said is None:
        assert "through the" not in out, out
    else:
        assert said in out, out
