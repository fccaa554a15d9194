"""`coord run --save-as`: the saved todos' titles tell them apart (repo first, the
command on one line, shortened with an ellipsis, never the repo cut)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coordination.catalog.runs.runplan import TASK_CHARS, run_title, save_run_plan
from coordination.catalog.file.store import CatalogStore

pytestmark = pytest.mark.timeout(30)


def test_a_title_is_the_repo_and_the_command_on_one_line() -> None:
    assert run_title("api", "make test") == "api: make test"
    assert run_title("api", "make\n  test\tall") == "api: make test all"


def test_a_long_command_is_shortened_never_the_repo() -> None:
    long = "pytest " + "-k something " * 40
    got = run_title("a-long-repo-name", long)
    assert len(got) == TASK_CHARS and got.startswith("a-long-repo-name: pytest -k")
    assert got.endswith("…")


def test_six_saved_todos_have_six_distinct_titles(tmp_path: Path) -> None:
    eco = tmp_path / "ecosystem.yaml"
    names = ["api", "web", "db", "jobs", "cli", "docs"]
    eco.write_text(yaml.safe_dump({"version": 1, "repos": [{"name": n} for n in names]}))
    cmd = "npm ci && npm run build && npm test -- --coverage --reporter dot " * 6
    save_run_plan(CatalogStore(eco), "Nightly", cmd, names, {}, selector="*")
    tasks = [t["task"] for t in yaml.safe_load(eco.read_text())["coordination"]["todos"]]
    assert len(set(tasks)) == 6 and all(len(t) <= TASK_CHARS for t in tasks)
    assert [t.split(":", 1)[0] for t in tasks] == names
