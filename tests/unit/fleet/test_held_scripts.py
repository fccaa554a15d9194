"""A build script coord cannot read whole holds (`coord init --check --apply`, run in
process on copies of real repositories' manifests, ``tests/unit/fixtures/fleets``): a
stray ``(`` in an sbt script, a stray ``listOf(`` in a Gradle Kotlin script, a file cut
short. Read past, such a script would be one statement swallowing the rest: its
repo's projects gone, every dependency on them "lost", and --apply would delete them,
after which the consumers would run before their provider. Instead the script is
named with the line to blame, every dependency it gave (as consumer or as provider)
is held, and --apply exits 1 changing nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.file.store import CatalogStore
from coordination.cli.main import main

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"
SBT = ["play-json", "jackson-module-scala", "jackson-core", "jackson-databind",
       "jackson-annotations", "jackson-bom"]
GRADLE = ["retrofit", "okhttp", "jackson-databind"]
DOTNET = ["serilog", "newtonsoft-json"]
CONVENTIONS = "build-logic/src/main/kotlin/okhttp.base-conventions.gradle.kts"


def _insert(line: int, text: str) -> Callable[[Path], None]:
    """Put ``text`` at the end of line ``line`` (1-based)."""
    def edit(p: Path) -> None:
        lines = p.read_text().split("\n")
        lines[line - 1] += text
        p.write_text("\n".join(lines))
    return edit


def _cut(after_line: int) -> Callable[[Path], None]:
    """Keep the first ``after_line`` lines: a file cut short (a truncated copy)."""
    def edit(p: Path) -> None:
        p.write_text("\n".join(p.read_text().split("\n")[:after_line]) + "\n")
    return edit


#: form: (fleet, repo, file, how it breaks, the line named, the edges held)
BROKEN: dict[str, tuple[list[str], str, str, Callable[[Path], None], int,
                        set[tuple[str, str]]]] = {
    # `libraryDependencies ++= jacksonDependencies ++ Seq((`: the provider of play-json's
    # jackson-module-scala and the consumer of jackson-core, -annotations, -databind
    "sbt stray (": (SBT, "jackson-module-scala", "build.sbt", _insert(137, "("), 137,
                    {("play-json", "jackson-module-scala"),
                     ("jackson-module-scala", "jackson-core"),
                     ("jackson-module-scala", "jackson-databind"),
                     ("jackson-module-scala", "jackson-annotations")}),
    # cut in the else branch's Seq (opened at line 131, never closed)
    "sbt truncated": (SBT, "jackson-module-scala", "build.sbt", _cut(133), 131,
                      {("play-json", "jackson-module-scala"),
                       ("jackson-module-scala", "jackson-core"),
                       ("jackson-module-scala", "jackson-databind"),
                       ("jackson-module-scala", "jackson-annotations")}),
    # play-json's own build.sbt, as a consumer: `val jacksonDatabind = Seq((`
    "sbt stray ( in a consumer": (SBT, "play-json", "build.sbt", _insert(25, "("), 25,
                                  {("play-json", "jackson-module-scala"),
                                   ("play-json", "jackson-core"),
                                   ("play-json", "jackson-databind")}),
    # the convention plugin setting okhttp's group: `val excluded = listOf(` above it
    "Gradle Kotlin stray listOf(": (GRADLE, "okhttp", CONVENTIONS,
                                    _insert(8, "val excluded = listOf("), 8,
                                    {("retrofit", "okhttp")}),
    "Gradle Kotlin truncated": (GRADLE, "okhttp", CONVENTIONS, _cut(19), 17,
                                {("retrofit", "okhttp")}),
    # retrofit's own Groovy script, as a consumer: `dependencies {` never closed
    "Gradle Groovy truncated": (GRADLE, "retrofit", "retrofit/build.gradle", _cut(36), 34,
                                {("retrofit", "okhttp")}),
    # a project file under Src/ cut short: XML's own error, at its line
    ".NET project under Src/ truncated": (
        DOTNET, "newtonsoft-json", "Src/Newtonsoft.Json/Newtonsoft.Json.csproj", _cut(20),
        21, {("serilog", "newtonsoft-json")}),
}


def build_fleet(root: Path, repos: list[str]) -> Path:
    fleet = root / "fleet"
    for name in repos:
        shutil.copytree(FIXTURES / name, fleet / name, ignore=shutil.ignore_patterns("NOTE"))
        subprocess.run(["git", "init", "-q", "-b", "main", str(fleet / name)], check=True)
    return fleet


def coord(fleet: Path, capsys: pytest.CaptureFixture[str], *args: str,
          expect: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(fleet)
    try:
        main(["-f", str(fleet / "ecosystem.yaml"), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert code == expect, f"coord {' '.join(args)}: exit {code}\n{out}\n{err}"
    return out, err


def deps(fleet: Path) -> dict[tuple[str, str], Any]:
    cat = CatalogStore(fleet / "ecosystem.yaml", cache_dir=None).load()
    return {(d.consumer, d.provider): d for d in cat.coordination.dependencies}


@pytest.mark.parametrize("form", sorted(BROKEN))
def test_a_script_not_read_whole_holds_every_edge_and_apply_deletes_nothing(
        form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    repos, repo, rel, breaks, line, held = BROKEN[form]
    monkeypatch.delenv("COORD_ECOSYSTEM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fleet = build_fleet(tmp_path, repos)
    coord(fleet, capsys, "init", str(fleet))
    before = deps(fleet)
    assert held <= set(before), sorted(before)
    catalog = (fleet / "ecosystem.yaml").read_text()

    breaks(fleet / repo / rel)
    drift = json.loads(coord(fleet, capsys, "init", "--check", "--json", expect=1)[0])
    assert drift["dependencies_lost"] == [] and drift["dependencies_changed"] == [], drift
    [u] = [u for u in drift["manifests_unreadable"] if (u["repo"], u["file"]) == (repo, rel)]
    assert (u["repo"], u["line"]) == (repo, line), u
    held_ids = {x for v in drift["manifests_unreadable"] for x in v["held"]}
    assert {before[e].id for e in held} <= held_ids, (held_ids, u)

    out, err = coord(fleet, capsys, "init", "--check", "--apply", expect=1)
    assert f"{repo}/{rel}:{line} cannot be read" in out + err, out + err
    assert f"{repo}: {rel}" in err and "fix the manifest" in err, err
    assert "Traceback" not in out + err
    # Nothing deleted, nothing changed: the consumers still run after their provider.
    assert (fleet / "ecosystem.yaml").read_text() == catalog
    assert set(deps(fleet)) == set(before)


def test_the_repo_reads_again_once_fixed_and_nothing_drifted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Held, not forgotten: once the stray bracket is gone, --check finds no drift."""
    monkeypatch.delenv("COORD_ECOSYSTEM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fleet = build_fleet(tmp_path, SBT)
    coord(fleet, capsys, "init", str(fleet))
    script = fleet / "jackson-module-scala" / "build.sbt"
    good = script.read_text()
    _insert(137, "(")(script)
    coord(fleet, capsys, "init", "--check", "--apply", expect=1)
    script.write_text(good)
    drift = json.loads(coord(fleet, capsys, "init", "--check", "--json")[0])
    assert drift["drift"] is False, drift
