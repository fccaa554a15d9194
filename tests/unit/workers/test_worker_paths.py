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
