"""workers.cache_key on real git checkouts: the key sees content, not how it got there."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from workers.cache_key import NoKey, changed, checkout_state, compute

pytestmark = pytest.mark.timeout(30)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    d = tmp_path / "r"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a\n")
    (d / "sub" / "run.sh").write_text("echo hi\n")
    past = time.time_ns() - 5 * 10**9  # older than the index will be: never racily clean
    for f in (d / "a.txt", d / "sub" / "run.sh"):
        os.utime(f, ns=(past, past))
    git(d, "init", "-q")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    return d


def key(cwd: Path) -> str:
    return compute(cwd=str(cwd), command="make", env={}, env_names=[], inputs=[], probes=[],
                   upstream={}, salt="s", run_probe=lambda p: "").key()


def parts(cwd: Path) -> dict[str, object]:
    return compute(cwd=str(cwd), command="make", env={}, env_names=[], inputs=[], probes=[],
                   upstream={}, salt="s", run_probe=lambda p: "").to_json()


def test_staged_or_not_the_same_content_is_the_same_key(worktree: Path) -> None:
    clean = key(worktree)
    (worktree / "a.txt").write_text("b\n")
    unstaged = key(worktree)
    git(worktree, "add", "a.txt")
    assert key(worktree) == unstaged != clean
    (worktree / "a.txt").write_text("a\n")  # the worktree back as HEAD has it, the index not
    assert key(worktree) == clean  # what the command sees is HEAD's content
    git(worktree, "reset", "-q", "a.txt")
    assert key(worktree) == clean


def test_an_exec_bit_is_content(worktree: Path) -> None:
    clean = key(worktree)
    (worktree / "sub" / "run.sh").chmod(0o755)
    assert key(worktree) != clean


def test_a_commit_moves_the_tree_and_why_names_its_files(worktree: Path) -> None:
    old = parts(worktree)
    (worktree / "sub" / "run.sh").write_text("echo bye\n")
    git(worktree, "commit", "-qam", "bye")
    new = parts(worktree)
    diff = changed(old, new, str(worktree))
    assert diff["paths"] == ["sub/run.sh"] and diff["tree"] == [old["tree"], new["tree"]]


def test_committing_a_change_keeps_the_files_the_same_for_why(worktree: Path) -> None:
    (worktree / "a.txt").write_text("b\n")
    dirty = parts(worktree)
    git(worktree, "commit", "-qam", "b")
    committed = parts(worktree)
    diff = changed(dirty, committed, str(worktree))
    assert "tree" in diff and "paths" not in diff  # a new key, but no file differs


def test_a_key_from_a_subdirectory_covers_the_whole_repository(worktree: Path) -> None:
    before = key(worktree / "sub")
    (worktree / "a.txt").write_text("changed\n")  # outside the subdirectory
    assert key(worktree / "sub") != before


def test_not_a_git_checkout_has_no_key(tmp_path: Path) -> None:
    with pytest.raises(NoKey, match="not a git checkout"):
        key(tmp_path)


def test_before_the_first_commit_every_file_is_dirty(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "x").write_text("x")
    git(tmp_path, "add", "x")
    top, tree, dirty = checkout_state(str(tmp_path))
    assert tree is None and list(dirty) == ["x"]


def test_a_clean_checkout_is_read_from_the_index_without_git(
        worktree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import cache_key, git_index

    first = key(worktree)  # git status once: the commit's tree is remembered
    calls: list[tuple[str, ...]] = []
    real = cache_key._git

    def counting(cwd: str, *args: str, stdin: bytes | None = None) -> bytes:
        calls.append(args)
        return real(cwd, *args, stdin=stdin)

    monkeypatch.setattr(cache_key, "_git", counting)
    assert key(worktree) == first and calls == []  # no process
    (worktree / "a.txt").write_text("b\n")  # changed: git decides
    assert key(worktree) != first and [c[0] for c in calls] == ["status"]
    git(worktree, "add", "a.txt")  # staged: the index's tree is not HEAD's any more
    assert git_index.clean(str(worktree), cache_key._TREES[(str(worktree), git_index.head_commit(
        str(worktree / ".git")) or "")]) is None


def test_a_racily_clean_file_is_left_to_git(worktree: Path) -> None:
    from workers import cache_key, git_index

    key(worktree)
    tree = cache_key._TREES[(str(worktree), git_index.head_commit(str(worktree / ".git")) or "")]
    assert git_index.clean(str(worktree), tree) is True
    # the index written the same instant a file was: the file's stat data proves nothing
    file_mtime = (worktree / "a.txt").stat().st_mtime_ns
    os.utime(worktree / ".git" / "index", ns=(file_mtime, file_mtime))
    assert git_index.clean(str(worktree), tree) is None


# -- symlinks (#39 item 13): a link's target path, and what it points at when an input ----

def key_with(cwd: Path, inputs: list[str]) -> tuple[str, dict[str, object]]:
    p = compute(cwd=str(cwd), command="make", env={}, env_names=[], inputs=inputs, probes=[],
                upstream={}, salt="s", run_probe=lambda p: "")
    return p.key(), p.to_json()


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """A checkout with a tracked link ``conf -> ../shared/a.conf`` (outside the repo,
    as a deployment's config link is), both targets the same length."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.conf").write_text("mode=a\n")
    (shared / "b.conf").write_text("mode=b\n")
    d = tmp_path / "l"
    d.mkdir()
    (d / "x.txt").write_text("x\n")
    os.symlink("../shared/a.conf", d / "conf")
    git(d, "init", "-q")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    return d


def retarget(link: Path, target: str) -> None:
    link.unlink()
    os.symlink(target, link)


def test_a_retargeted_tracked_link_is_a_change(linked: Path) -> None:
    """git's view: the link's blob is its target path, so `git status` sees a retarget
    (0.3 saw it too); kept as a guard on the index fast path, which must not call the
    retargeted link clean."""
    before, old = key_with(linked, [])
    assert key_with(linked, [])[0] == before  # (the second asks the index, no git status)
    retarget(linked / "conf", "../shared/b.conf")
    after, new = key_with(linked, [])
    assert after != before
    # (what it leads to, outside the checkout, changed too: #49 item 7)
    assert changed(old, new, str(linked)) == {"paths": ["conf"], "inputs": ["conf"]}
    retarget(linked / "conf", "../shared/a.conf")
    assert key_with(linked, [])[0] == before  # the same target path: the same key


def test_an_input_link_counts_what_it_points_at(linked: Path, tmp_path: Path) -> None:
    """Named by ``inputs:`` or not (it leads outside the checkout: #49 item 7), the
    content the link points at counts, not only its target path (git's view)."""
    plain, _ = key_with(linked, [])
    named, old = key_with(linked, ["conf"])
    (tmp_path / "shared" / "a.conf").write_text("mode=A\n")  # the target edited in place
    assert key_with(linked, [])[0] != plain
    after, new = key_with(linked, ["conf"])
    assert after != named
    assert changed(old, new, str(linked)) == {"inputs": ["conf"]}
    assert str(new["inputs"]["conf"]).startswith("120000:")  # type: ignore[index]


def test_an_input_link_through_a_retargeted_link_is_a_change(tmp_path: Path) -> None:
    """The retarget 0.3 missed: the tracked link ``conf -> ../current/app.conf`` stays
    as git has it while ``current`` (outside the checkout, a deployment's release link)
    is retargeted to another release. Named by ``inputs:``, what the link now leads to
    is a change; 0.3 hashed only untracked files there and reused the old success."""
    for n in ("1", "2"):
        (tmp_path / "releases" / n).mkdir(parents=True)
        (tmp_path / "releases" / n / "app.conf").write_text(f"release={n}\n")
    current = tmp_path / "current"
    os.symlink("releases/1", current)
    d = tmp_path / "l"
    d.mkdir()
    (d / "x.txt").write_text("x\n")
    os.symlink("../current/app.conf", d / "conf")
    git(d, "init", "-q")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    before, old = key_with(d, ["conf"])
    assert key_with(d, ["conf"])[0] == before
    retarget(current, "releases/2")
    after, new = key_with(d, ["conf"])
    assert after != before
    assert changed(old, new, str(d)) == {"inputs": ["conf"]}
    retarget(current, "releases/1")
    assert key_with(d, ["conf"])[0] == before


def test_an_untracked_input_link_counts_what_it_points_at(worktree: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("one\n")
    os.symlink(str(tmp_path / "secret.txt"), worktree / "token.local")
    before, _ = key_with(worktree, ["*.local"])
    (tmp_path / "secret.txt").write_text("two\n")
    assert key_with(worktree, ["*.local"])[0] != before
    (tmp_path / "secret.txt").unlink()  # dangling: still a key, another one
    dangling, parts = key_with(worktree, ["*.local"])
    assert str(parts["inputs"]["token.local"]).endswith(":dangling")  # type: ignore[index]


def test_an_input_link_to_a_directory_has_no_key(worktree: Path, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    os.symlink(str(tmp_path / "dir"), worktree / "deps.local")
    with pytest.raises(NoKey, match="deps.local, a symlink to a directory"):
        key_with(worktree, ["*.local"])


def test_a_checkout_path_that_is_a_retargeted_link_keys_the_new_checkout(tmp_path: Path) -> None:
    """A worker's checkout path may be a link (``current -> releases/1``): retargeted to
    another checkout, the key is that checkout's, not the one the path led to before."""
    releases = []
    for n in ("1", "2"):
        d = tmp_path / "releases" / n
        d.mkdir(parents=True)
        (d / "app.txt").write_text(f"release {n}\n")
        git(d, "init", "-q")
        git(d, "add", "-A")
        git(d, "commit", "-qm", n)
        releases.append(d)
    current = tmp_path / "current"
    os.symlink(releases[0], current)
    first = key(current)
    retarget(current, str(releases[1]))
    assert key(current) != first
    assert parts(current)["tree"] == parts(releases[1])["tree"] != parts(releases[0])["tree"]
    retarget(current, str(releases[0]))
    assert key(current) == first


# -- tracked symlinks leading outside the checkout (#49 item 7) -----------------------------

def test_a_tracked_link_outside_the_checkout_puts_its_content_in_the_key(
        linked: Path, tmp_path: Path) -> None:
    before, old = key_with(linked, [])
    assert list(old["inputs"]) == ["conf"]  # type: ignore[call-overload]
    (tmp_path / "shared" / "a.conf").write_text("mode=A\n")  # outside, edited in place
    after, new = key_with(linked, [])
    assert after != before
    assert changed(old, new, str(linked)) == {"inputs": ["conf"]}
    (tmp_path / "shared" / "a.conf").unlink()
    gone, _ = key_with(linked, [])
    assert gone not in (before, after)


def test_a_link_inside_the_checkout_or_untracked_is_not_an_input(worktree: Path) -> None:
    os.symlink("a.txt", worktree / "inside")
    os.symlink("/etc/hostname", worktree / "untracked-out")
    git(worktree, "add", "inside")
    git(worktree, "commit", "-qm", "link")
    assert parts(worktree)["inputs"] == {}


@pytest.mark.parametrize("how", ["directory", "unreadable"])
def test_a_tracked_link_to_what_cannot_be_hashed_has_no_key(
        worktree: Path, tmp_path: Path, how: str) -> None:
    out = tmp_path / "out"
    if how == "directory":
        out.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        out.write_text("secret\n")
        out.chmod(0)
    os.symlink(str(out), worktree / "deps")
    git(worktree, "add", "deps")
    git(worktree, "commit", "-qm", "link")
    with pytest.raises(NoKey, match="deps is a tracked symlink .*outside the checkout.*"
                                    "runs uncached"):
        key(worktree)
