"""`coord init`'s first edit of the catalog it created, written directly (``fresh``):
the same bytes, result, audit entry, validation and warm cache as the round trip."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.file import cache, fresh
from coordination.catalog.audit.log import log_path
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.file.store import CatalogStore
from coordination.cli.schema import HEADER
from coordination.errors import CatalogError, UsageError

pytestmark = pytest.mark.timeout(60)

# Strings that are plain, quoted, or read as something else by YAML 1.1 or 1.2.
ODD = ["main", "1.0", "0010", "on", "yes", "y", "true", "null", "~", "2024-01-01",
       "release/2.x", "feat_x", "a:b", "a: b", "it's", "with space", ".hidden", "-x",
       "#x", "x#y", "%p", "@at", "*star", "[b]", "{c}", "a,b", "0x1F", "1_000", "1e5",
       ".inf", "é-utf8", "trailing ", "<<", "=", "!bang", "&amp", "|pipe", ">=1",
       "^1", "~=2.0", "==1.2; python_version < '3.8'", ">= 1, < 2", "v1.0.0", "*",
       'say "hi"', "git@github.com:acme/x.git", "https://git.example.com/acme/x.git",
       "a" * 39, "b" * 45, "tab\there"]
# Those the loader takes as a default branch, and as a remote.
BRANCHES = ["main", "1.0", "0010", "on", "yes", "y", "true", "null", "2024-01-01",
            "release/2.x", "feat_x", "0x1F", "1_000", "1e5", "a" * 39]
REMOTES = [s for s in ODD if s not in {"a: b", "with space", "-x", "trailing ", ">= 1, < 2",
                                       "==1.2; python_version < '3.8'", 'say "hi"',
                                       "tab\there"}]


def fleet(n: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` repos with paths, tags, default branches and remotes, and dependencies
    with types, constraints and sources: plain strings mostly, some of ODD."""
    rnd = random.Random(seed)

    def pick(plain: str, odd: list[str] = ODD) -> str:
        return rnd.choice(odd) if rnd.random() < 0.3 else plain

    names = [f"svc-{i:04d}" if i % 7 else f"{i}x.lib_{i}" for i in range(n)]
    repos: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        repo: dict[str, Any] = {"name": name, "path": pick(f"team-{i % 5}/{name}")}
        if i % 4:
            repo["tags"] = sorted({pick("python"), pick("node"), "docker"}
                                  if i % 3 else {pick("go")})
        if i % 5:
            repo["default_branch"] = pick("main", BRANCHES)
        if i % 6 == 1:
            repo["remote"] = pick("upstream", REMOTES)
        if i % 4 == 1:
            repo["url"] = pick(f"https://git.example.com/acme/{name}.git", REMOTES)
        repos.append(repo)
    deps: list[dict[str, Any]] = []
    for i in range(1, n):
        for j in {i - 1, i // 2}:
            dep: dict[str, Any] = {"consumer": names[i], "provider": names[j],
                                   "type": rnd.choice(["runtime", "build", "dev", "test"])}
            if i % 3:
                dep["version_constraint"] = pick(">=1")
            dep["source"] = {"file": pick("pyproject.toml"), "line": i % 40 + 1}
            deps.append(dep)
    return repos, deps


def new_catalog(path: Path, head: str = HEADER) -> Path:
    path.mkdir(parents=True)
    file = path / "ecosystem.yaml"
    file.write_text(head + "version: 1\n", encoding="utf-8")
    return file


def round_trip_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        raise fresh.Unsupported("the round trip, for comparison")

    monkeypatch.setattr(fresh, "fleet_text", refuse)


def applied(file: Path, repos: list[dict[str, Any]], deps: list[dict[str, Any]]
            ) -> tuple[bytes, Any, dict[str, Any], str | None]:
    m = CoordinationManager(file)
    done = m.fleet.apply({"repos": repos, "dependencies": deps})
    entries = [json.loads(line) for line in log_path(file).read_text().splitlines()]
    assert len(entries) == 1
    return file.read_bytes(), done, entries[0], m.store.last_edit


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("head", [HEADER, "", "# a\n#\n#b  \n"])
def test_the_direct_text_is_the_round_trip_s_byte_for_byte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, head: str) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repos, deps = fleet(60, seed)
    fast, fast_done, fast_entry, how = applied(new_catalog(tmp_path / "a", head), repos, deps)
    assert how == "direct"
    round_trip_only(monkeypatch)
    slow, slow_done, slow_entry, how = applied(new_catalog(tmp_path / "b", head), repos, deps)
    assert how is not None and how != "direct"
    assert fast == slow
    assert fast_done == slow_done
    assert fast_done["dependencies_added"][:2] == ["DEP-001", "DEP-002"]
    for key in ("op", "ids", "changes", "catalog"):
        assert fast_entry[key] == slow_entry[key], key
    assert fast_entry["op"] == "apply_fleet"
    # the next read of the written catalog is warm, as after the round trip
    assert (cache.cache_file(CatalogStore(tmp_path / "a" / "ecosystem.yaml").cache_dir,
                             cache.digest(fast), cache.SET_FIELDS) or Path("/")).is_file()


def test_each_odd_string_in_each_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every string in every place, the bytes compared before the loader (which
    refuses many of them as a branch, and ``[?q]``, which ruamel writes, as a list)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(CatalogStore, "_checked", lambda self, new: new)
    monkeypatch.setattr(audit, "record", lambda *args: None)
    odd = [*ODD, "?q", "? q", "a?", "- x", "x-", "x.", "x/", "_", "0", "-", "."]
    repos = [{"name": f"r{i}", "path": s, "tags": [s, "x"], "default_branch": s, "remote": s}
             for i, s in enumerate(odd)]
    deps = [{"consumer": f"r{i}", "provider": f"r{i + 1}", "type": "test",
             "version_constraint": s, "source": {"file": s, "line": i}}
            for i, s in enumerate(odd[:-1])]
    fast, slow = new_catalog(tmp_path / "a"), new_catalog(tmp_path / "b")
    m = CoordinationManager(fast)
    m.fleet.apply({"repos": repos, "dependencies": deps})
    assert m.store.last_edit == "direct"
    round_trip_only(monkeypatch)
    CoordinationManager(slow).fleet.apply({"repos": repos, "dependencies": deps})
    assert fast.read_text() == slow.read_text()


def test_ids_continue_above_the_audit_log_s(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog created again where one was (its audit log kept): no id comes back."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repos, deps = fleet(5, 0)
    file = new_catalog(tmp_path / "a")
    CoordinationManager(file).fleet.apply({"repos": repos, "dependencies": deps})
    file.write_text(HEADER + "version: 1\n")
    m = CoordinationManager(file)
    done = m.fleet.apply({"repos": repos, "dependencies": deps[:2]})
    assert m.store.last_edit == "direct"
    assert done["dependencies_added"] == [f"DEP-{len(deps) + 1:03d}", f"DEP-{len(deps) + 2:03d}"]


def test_a_catalog_the_loader_refuses_is_not_written(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    file = new_catalog(tmp_path / "a")
    m = CoordinationManager(file)
    with pytest.raises(CatalogError, match="nope"):
        m.fleet.apply({"repos": [{"name": "web", "path": "web"}],
                       "dependencies": [{"consumer": "web", "provider": "nope",
                                         "type": "runtime"}]})
    assert m.store.last_edit == "direct"
    assert file.read_text() == HEADER + "version: 1\n"
    assert not log_path(file).exists()
    with pytest.raises(UsageError, match="exists already"):
        m.fleet.apply({"repos": [{"name": "web", "path": "web"}, {"name": "web", "path": "w"}]})
    assert file.read_text() == HEADER + "version: 1\n"


def test_an_existing_catalog_keeps_the_round_trip(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    file = new_catalog(tmp_path / "a", "# mine\n")
    file.write_text(file.read_text() + "\n# the repos, after a blank line\n")
    m = CoordinationManager(file)
    m.fleet.apply({"repos": [{"name": "web", "path": "web"}]})
    assert m.store.last_edit != "direct"
    file = new_catalog(tmp_path / "b")
    m = CoordinationManager(file)
    m.fleet.apply({"repos": [{"name": "web", "path": "web"}]})
    assert m.store.last_edit == "direct"
    m.fleet.apply({"repos": [{"name": "api", "path": "api"}]})  # now it holds repos
    assert m.store.last_edit != "direct"


ALPHABET = "ab01_.:/@+=^~%?&<>-,[]{}#*!|'\" `\tx"


def test_a_string_written_without_asking_ruamel_is_written_as_ruamel_writes_it() -> None:
    """Issue #61: URLs and version ranges are written without ruamel (a third of writing
    a new fleet's catalog was asking it); each one so written, in block and in flow
    context, is byte for byte ruamel's, over every string of 1-2 characters of an
    alphabet of the characters that decide and a sample of longer ones."""
    import itertools

    rnd = random.Random(61)
    strings = {"".join(t) for n in (1, 2) for t in itertools.product(ALPHABET, repeat=n)}
    strings |= {"".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(3, 12)))
                for _ in range(2000)}
    strings |= set(ODD) | {"https://git.example.com/acme/x.git", "file:///srv/x.git",
                           ">=2, <3", "[1.0,2.0)", "^1.2.3", "~1.2", "==1.0", "<2",
                           "@scope/pkg", "git@github.com:acme/x.git", "12:30", "1.0"}
    mine = {s: fresh._written(s) for s in strings}
    sure = {s: w for s, w in mine.items() if w is not None}
    theirs = fresh._ruamel_renders({"block": set(sure), "flow": set(sure)})
    wrong = [(s, w, theirs[(c, s)]) for s, w in sure.items() for c in ("block", "flow")
             if theirs[(c, s)] != w]
    assert not wrong, wrong[:20]
    assert len(sure) > 1000  # most of them are sure
