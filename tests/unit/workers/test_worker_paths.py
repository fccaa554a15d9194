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


def test_repos_takes_a_selector_against_the_catalog(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`coord worker --repos SELECTOR`: one syntax for every command that takes repos;
    with --repo, both (a worker for 100 repos needs no 100 --repo flags)."""
    from click.testing import CliRunner

    import workers.worker
    from coordination.cli.main import cli

    served: list[list[str]] = []

    def serve(file, repos, **kw):  # type: ignore[no-untyped-def]
        served.append(list(repos))
        return 0

    monkeypatch.setattr(workers.worker, "run_worker", serve)
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text("version: 1\nrepos:\n" + "".join(
        f"  - {{name: svc-{i:03d}, tags: [{'python' if i % 2 else 'go'}]}}\n" for i in range(6))
        + "  - {name: legacy, tags: [python]}\n")
    run = CliRunner().invoke
    r = run(cli, ["--file", str(eco), "worker", "--repos", "tag:python,!legacy"])
    assert r.exit_code == 0, r.output
    assert served[-1] == ["svc-001", "svc-003", "svc-005"]
    r = run(cli, ["--file", str(eco), "worker", "--repo", "legacy", "--repos", "svc-00[01]"])
    assert r.exit_code == 0, r.output
    assert served[-1] == ["legacy", "svc-000", "svc-001"]
    # A selector that matches nothing: the selectors' error, closest names (exit 2).
    r = run(cli, ["--file", str(eco), "worker", "--repos", "tag:pyton"])
    assert isinstance(r.exception, UsageError) and "did you mean tag:python" in str(r.exception)
    # No catalog to select from: said, with what to do.
    r = run(cli, ["--file", str(tmp_path / "none.yaml"), "worker", "--repos", "tag:python"])
    assert isinstance(r.exception, UsageError)
    assert "selects from the catalog, and there is none" in str(r.exception)
    assert "--repo NAME" in str(r.exception)
    r = run(cli, ["--file", str(eco), "worker"])
    assert isinstance(r.exception, UsageError)
    assert "needs the repos it serves" in str(r.exception)
    assert len(served) == 2


def test_todo_user_is_refused_where_it_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """`coord worker --todo-user NAME` (#78): only root runs todos as another user, and
    only as one that exists and is not root: a usage error saying how, else."""
    import os

    from workers.worker import todo_user_named

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UsageError, match="only a worker running as root"):
        todo_user_named("nobody")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(UsageError, match="no user 'no-such-user-here'"):
        todo_user_named("no-such-user-here")
    with pytest.raises(UsageError, match="is root"):
        todo_user_named("root")
    user = todo_user_named("nobody")
    assert user.name == "nobody" and user.uid != 0 and user.gid in user.groups
