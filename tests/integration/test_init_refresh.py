"""`coord init --check --apply` over real clones of bare remotes (issue #61): a type set
by hand is kept (hand-edited, not drift), tags follow what a checkout holds, and a
version that becomes known (a Maven ``${property}`` defined at last) is taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from tests.integration.change_repos import commit, git, remote_with
from tests.integration.init_cli import coord, coord_json

pytestmark = pytest.mark.timeout(180)

# uvicorn's requirements.txt (an application's: no package metadata beside it) names
# httpx, read as runtime; the user knows it is the test client and sets it to dev.
FILES: dict[str, dict[str, str]] = {
    "httpx": {"pyproject.toml": '[project]\nname = "httpx"\n'},
    "uvicorn": {"requirements.txt": "# Testing\npytest==8.3\nhttpx==0.28.1\n"},
    "core": {"pom.xml": ("<project><groupId>org.acme</groupId><artifactId>core</artifactId>"
                         "<version>2.1</version></project>\n")},
    "app": {"pom.xml": ("<project>\n  <groupId>org.acme</groupId>\n  <artifactId>app</artifactId>\n"
                        "  <dependencies>\n    <dependency>\n      <groupId>org.acme</groupId>\n"
                        "      <artifactId>core</artifactId>\n      <version>${core.version}"
                        "</version>\n    </dependency>\n  </dependencies>\n</project>\n")},
}


@pytest.fixture
def refreshed(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name, files in FILES.items():
        git(src, "clone", "-q", str(remote_with(tmp_path, name, files)), name)
    coord(src, "init", str(src))
    return src


def dep_of(src: Path, consumer: str, provider: str):  # type: ignore[no-untyped-def]
    cat = CatalogStore(src / "ecosystem.yaml", cache_dir=None).load()
    return next(d for d in cat.coordination.dependencies
                if (d.consumer, d.provider) == (consumer, provider))


def test_a_type_set_by_hand_is_kept_by_apply(refreshed: Path) -> None:
    dep = dep_of(refreshed, "uvicorn", "httpx")
    assert dep.type.value == "runtime" and dep.source.line == 3  # type: ignore[union-attr]
    coord(refreshed, "dep", "update", dep.id, "--type", "dev")
    text = (refreshed / "ecosystem.yaml").read_text()
    assert "source: {file: requirements.txt, line: 3, type: runtime}" in text, text
    drift = coord_json(refreshed, "init", "--check")
    assert drift["drift"] is False and drift["dependencies_changed"] == []
    assert drift["dependencies_hand_edited"] == [{
        "id": dep.id, "consumer": "uvicorn", "provider": "httpx", "type": "dev",
        "manifest_type": "runtime"}]
    human = coord(refreshed, "init", "--check")
    assert (f"dependency {dep.id} uvicorn -> httpx: type dev kept, hand-edited (the "
            "manifest says runtime)") in human.stdout
    applied = coord_json(refreshed, "init", "--check", "--apply")
    assert applied["applied"] is None
    assert dep_of(refreshed, "uvicorn", "httpx").type.value == "dev"
    # the line moves: refreshed, the user's type and the mark kept
    commit(refreshed / "uvicorn", "requirements.txt", "# Testing\n\npytest==8.3\nhttpx==0.28.1\n")
    moved = coord(refreshed, "init", "--check", "--apply")
    assert f"1 dependency moved (source line refreshed: {dep.id})" in moved.stdout, moved.stdout
    now = dep_of(refreshed, "uvicorn", "httpx")
    assert now.type.value == "dev" and now.source.line == 4  # type: ignore[union-attr]
    assert now.source.type.value == "runtime"  # type: ignore[union-attr]
    # lost upstream, a hand-edited dependency stays unless --prune
    commit(refreshed / "uvicorn", "requirements.txt", "pytest==8.3\n")
    lost = coord_json(refreshed, "init", "--check", expect=1)
    assert [(d["id"], d["hand_edited"]) for d in lost["dependencies_lost"]] == [(dep.id, True)]
    # given the manifest's type back, the type follows the manifest again
    commit(refreshed / "uvicorn", "requirements.txt", "# Testing\n\npytest==8.3\nhttpx==0.28.1\n")
    coord(refreshed, "dep", "update", dep.id, "--type", "runtime")
    assert "source: {file: requirements.txt, line: 4}\n" in (refreshed / "ecosystem.yaml").read_text()
    assert coord_json(refreshed, "init", "--check")["dependencies_hand_edited"] == []


def test_tags_follow_the_checkout(refreshed: Path) -> None:
    # httpx gains a Dockerfile and a package.json; uvicorn, tagged docker by hand (no
    # Dockerfile), keeps it unless --prune; a word of the user's own is never touched
    coord(refreshed, "repo", "update", "uvicorn", "--tag", "python", "--tag", "docker", "--tag", "asgi")
    commit(refreshed / "httpx", "Dockerfile", "FROM python:3.12\n")
    commit(refreshed / "httpx", "package.json", '{"name": "httpx-docs"}\n')
    drift = coord_json(refreshed, "init", "--check", expect=1)
    assert drift["tags_changed"] == [
        {"repo": "httpx", "added": ["docker", "node"], "stale": []},
        {"repo": "uvicorn", "added": [], "stale": ["docker"]}]
    human = coord(refreshed, "init", "--check", expect=1)
    assert "~ repo httpx: tags +docker, +node" in human.stdout
    assert "repo uvicorn: tags docker kept (no file at its top calls for it now; --apply " \
        "--prune removes it)" in " ".join(human.stdout.split())
    applied = coord(refreshed, "init", "--check", "--apply")
    assert "tags refreshed on 1 repo (httpx)" in applied.stdout, applied.stdout
    cat = CatalogStore(refreshed / "ecosystem.yaml", cache_dir=None).load()
    assert cat.repo("httpx").tags == ["python", "docker", "node"]  # type: ignore[union-attr]
    assert cat.repo("uvicorn").tags == ["python", "docker", "asgi"]  # type: ignore[union-attr]
    assert coord_json(refreshed, "init", "--check")["drift"] is False  # a stale tag: no drift
    coord(refreshed, "init", "--check", "--apply", "--prune")
    cat = CatalogStore(refreshed / "ecosystem.yaml", cache_dir=None).load()
    assert cat.repo("uvicorn").tags == ["python", "asgi"]  # type: ignore[union-attr]


def test_a_version_that_becomes_known_is_taken(refreshed: Path) -> None:
    """app's ${core.version} is defined nowhere (its parent's, unread): stored as no
    version. Once defined, --check reports the version and --apply writes it."""
    dep = dep_of(refreshed, "app", "core")
    assert dep.version_constraint is None
    pom = (refreshed / "app" / "pom.xml").read_text()
    commit(refreshed / "app", "pom.xml", pom.replace(
        "  <dependencies>", "  <properties><core.version>2.1</core.version></properties>\n"
        "  <dependencies>"))
    drift = coord_json(refreshed, "init", "--check", expect=1)
    assert drift["dependencies_changed"] == [{
        "id": dep.id, "consumer": "app", "provider": "core",
        "changes": {"version_constraint": [None, "2.1"],
                    "source": [{"file": "pom.xml", "line": 7}, {"file": "pom.xml", "line": 8}]}}]
    coord(refreshed, "init", "--check", "--apply")
    now = dep_of(refreshed, "app", "core")
    assert now.version_constraint == "2.1" and now.source.line == 8  # type: ignore[union-attr]
    assert coord_json(refreshed, "init", "--check")["drift"] is False
