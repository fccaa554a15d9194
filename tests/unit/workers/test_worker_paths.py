"""`coord worker --path`: DIR for a worker of one repo, REPO=DIR for any worker."""

from __future__ import annotations

import pytest

from coordination.errors import UsageError
from workers.worker import checkout_overrides


def test_one_repo_takes_a_plain_dir_or_its_own_name() -> None:
    assert checkout_overrides(["api"], "/src/api") == {"api": "/src/api"}
    assert checkout_overrides(["api"], ["api=/src/api"]) == {"api": "/src/api"}
    assert checkout_overrides(["api"], ["/src/a=b"]) == {"api": "/src/a=b"}  # '=' in a DIR
    assert checkout_overrides(["api"], None) == {}


def test_several_repos_take_repo_equals_dir_each() -> None:
    got = checkout_overrides(["api", "web", "jobs"], ["api=/s/api", "web=~/web"])
    assert got == {"api": "/s/api", "web": "~/web"}  # jobs: the catalog's path


@pytest.mark.parametrize("values,message", [
    (["/s/api"], "a plain DIR applies to a worker of one repo"),
    (["nope=/s"], "'nope' is not a repo this worker serves"),
    (["api="], "no directory after '='"),
    (["api=/a", "api=/b"], "--path given twice for repo api"),
])
def test_ambiguous_paths_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message) as exc:
        checkout_overrides(["api", "web"], values)
    assert exc.value.hint


def test_a_worker_of_many_repos_has_a_short_name() -> None:
    """Its name is in every checkpoint and event of its todos: three repos, then how
    many more (a worker of 500 repos named them all: 5 KB a checkpoint)."""
    import os

    from workers.worker import worker_hostname

    assert worker_hostname("api").startswith(f"api-{os.getpid()}@")
    assert worker_hostname(["api", "web"]).startswith("api+web-")
    many = worker_hostname([f"svc-{i:03d}" for i in range(500)])
    assert many.startswith(f"svc-000+svc-001+svc-002+497more-{os.getpid()}@")
    assert len(many) < 80
