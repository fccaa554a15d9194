"""coord's allow-list for git (coordination.gitsafe): every key git documents that names
a program or sends a fetch or push elsewhere is neutralised or refused; a repository's
own config and the user's global config run nothing; every git process coord starts
goes through it. Real git, marker files for "never runs"."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination import gitsafe as gs

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

#: Words a key's name (lower-cased) ends with when it names a program, a hook, a signing step, or
#: where a fetch or a push goes.
DANGER = ("program", "command", "cmd", "helper", "driver", "textconv", "editor", "pager",
          "hook", "proxy", "url", "uri", "insteadof", "askpass", "gpgsign", "signingkey",
          "process", "clean", "smudge", "uploadpack", "receivepack", "vcs", "include",
          "external", "fsmonitor", "tool", "path", "exec", "signature", "mirror", "worktree")
#: Sections every key of which is one of those (``pager.<cmd>``, ``alias.<name>``...).
DANGER_SECTIONS = ("alias.", "pager.", "http.", "credential.", "gpg.", "url.", "filter.",
                   "includeif.", "include.", "guitool.", "mergetool.", "difftool.",
                   "sendemail.", "browser.", "man.")
#: Keys with one of those words that coord allows, and why each is harmless.
HARMLESS = {
    "remote.x.url": "the remote itself: coord fetches from and pushes to the remote the "
                    "catalog names; what would send it elsewhere (pushurl, insteadOf) is refused",
    "submodule.x.url": "coord never recurses into submodules (--no-recurse-submodules)",
    "core.fsmonitorhookversion": "a version number; core.fsmonitor itself is off on every call",
    "advice.ignoredhook": "a message switch",
    "commit.cleanup": "how a message is cleaned: no program",
    "clean.requireforce": "an option of git clean",
    "color.pager": "whether output sent to a pager is coloured; no pager runs (captured)",
    "notes.rewrite.x": "whether notes follow a rewrite by git command x: a boolean",
    "notes.rewriteref": "a ref name",
    "notes.rewritemode": "a mode name",
    "credential.username": "a user name",
    "credential.usehttppath": "a boolean",
    "credential.x.username": "a user name",
    "credential.x.usehttppath": "a boolean",
    "gpg.format": "which signing format; coord's calls sign nothing (commit/tag/push "
                  "gpgSign off)",
    "gpg.mintrustlevel": "a trust level",
    "branch.x.pushremote": "a remote's name: coord names the remote of every push itself",
    "remote.pushdefault": "a remote's name: coord names the remote of every push itself",
    "log.excludedecoration": "a ref pattern",
    "core.excludesfile": "a file of patterns, read",
    "diff.orderfile": "a file of paths, read",
    "commit.template": "a message template, read; coord's commits give their message",
    "worktree.guessremote": "a boolean",
    "core.worktree": "",  # (refused: a sentinel the test below checks is NOT allowed)
    "fetch.recursesubmodules": "coord's fetches say --no-recurse-submodules",
    "push.recursesubmodules": "coord's pushes say --recurse-submodules=no",
    "status.submodulesummary": "a count",
    "advice.updatesparsepath": "a message switch",
    "advice.waitingforeditor": "a message switch",
    "color.branch.worktree": "a colour",
    "column.clean": "a layout of git clean's output",
    "core.quotepath": "how paths are quoted in output",
    "diff.x.cachetextconv": "a boolean; the textconv program itself is neutralised",
    "format.signature": "text for format-patch",
    "fsck.gitmodulespath": "a fsck message's severity",
    "fsck.gitmodulesurl": "a fsck message's severity",
    "receive.fsck.gitmodulespath": "a fsck message's severity",
    "receive.fsck.gitmodulesurl": "a fsck message's severity",
    "help.htmlpath": "where git help -w finds pages; coord never asks for help",
    "rebase.reschedulefailedexec": "a boolean",
    "ssh.variant": "which ssh flavour's options to use; the program is ssh (core.sshCommand "
                   "neutralised)",
}


def documented_keys() -> list[str]:
    """Every variable ``git help --config`` lists, its placeholders filled with ``x``."""
    out = subprocess.run(["git", "help", "--config"], capture_output=True, text=True,
                         check=True).stdout
    keys = []
    for line in out.splitlines():
        line = line.strip()
        if not re.fullmatch(r"[A-Za-z0-9.<>*_-]+", line) or "." not in line:
            continue
        keys.append(re.sub(r"<[^>]+>", "x", line).replace("*", "y").lower())
    return keys


def dangerous(key: str) -> bool:
    name = key.rsplit(".", 1)[-1]
    return key.startswith(DANGER_SECTIONS) or any(name.endswith(w) for w in DANGER) \
        or any(w in key for w in ("fsmonitor", "hook", "gpg", "insteadof", "ssh"))


def test_every_documented_program_or_url_key_is_neutralised_or_refused() -> None:
    keys = documented_keys()
    assert len(keys) > 500, "git help --config lists git's variables"
    for must in ("core.fsmonitor", "gpg.ssh.defaultkeycommand", "remote.x.pushurl",
                 "url.x.insteadof", "url.x.pushinsteadof", "core.sshcommand",
                 "credential.helper", "filter.x.clean", "diff.x.textconv", "merge.x.driver",
                 "core.hookspath", "includeif.x.path", "include.path", "core.editor",
                 "sequence.editor", "core.pager", "protocol.x.allow",
                 "uploadpack.packobjectshook", "commit.gpgsign", "tag.gpgsign"):
        assert must in keys, must
    allowed_danger = sorted(k for k in keys if dangerous(k) and gs.classify(k) == "allow"
                            and not HARMLESS.get(k))
    # protocol.<name>.allow: allowed, but ext and fd are forced off on every call
    allowed_danger = [k for k in allowed_danger if k not in ("protocol.x.allow",)]
    assert allowed_danger == [], ("keys that name a program or send a push elsewhere are on "
                                  f"coord's allow-list: {allowed_danger}")
    assert ("protocol.ext.allow", "never") in gs.SAFE and ("protocol.fd.allow", "never") in gs.SAFE
    # the exceptions are really allowed keys git documents (the list cannot rot)
    for k, why in HARMLESS.items():
        if why:
            assert gs.classify(k) == "allow", k
    assert gs.classify("core.worktree") == "refuse"
    # a key git does not document and no list names: refused
    assert gs.classify("madeup.key") == "refuse"
    assert gs.classify("alias.x") == "refuse"


def test_how_each_command_bearing_key_is_handled() -> None:
    for key in ("core.fsmonitor", "core.sshCommand", "credential.helper",
                "credential.https://x.helper", "filter.Lfs.process", "diff.x.textconv",
                "diff.x.command", "merge.x.driver", "gpg.program", "gpg.ssh.program",
                "gpg.ssh.defaultKeyCommand", "commit.gpgSign", "tag.gpgSign", "core.editor",
                "sequence.editor", "core.pager", "core.hooksPath", "remote.o.uploadpack"):
        assert gs.classify(key) == "neutral", key
    for key in ("remote.origin.pushurl", "url./x/.insteadOf", "url.y.pushInsteadOf",
                "http.proxy", "remote.o.proxy"):
        assert gs.classify(key) == "network", key
    for key in ("include.path", "includeIf.gitdir:/x/.path", "core.gitProxy",
                "core.alternateRefsCommand", "remote.o.vcs", "init.templateDir"):
        assert gs.classify(key) == "refuse", key


def test_the_lists_are_read_as_fnmatch_patterns() -> None:
    """Each pattern of NEUTRAL, NETWORK and ALLOW is a glob whose ``*`` matches any
    text, dots and nothing included (``branch.*.merge`` covers ``branch.a/b.c.merge``):
    every key made from them is classified as the lists read with fnmatch say."""
    from fnmatch import fnmatchcase

    neutral = [p for p, _v in gs.NEUTRAL]

    def expected(key: str) -> str:
        low = key.lower()
        for kind, patterns in (("neutral", neutral), ("network", gs.NETWORK),
                               ("allow", gs.ALLOW)):
            if any(fnmatchcase(low, p) for p in patterns):
                return kind
        return "refuse"

    fills = ("x", "", "a.b", "*", "Main", ".", "x.y.z.w", "?")
    keys = {p.replace("*", f) for p in [*neutral, *gs.NETWORK, *gs.ALLOW] for f in fills}
    keys |= {k + tail for k in list(keys) for tail in (".x", "x", "")}
    keys |= {"x." + k for k in list(keys)[:500]}
    kinds = {k: gs.classify(k) for k in sorted(keys)}
    assert {k: v for k, v in kinds.items() if v != expected(k)} == {}
    assert set(kinds.values()) == {"neutral", "network", "allow", "refuse"}


@settings(max_examples=1000, deadline=None)  # (3000 took a minute under load)
@given(st.text("ab.*", max_size=8), st.text("ab.", max_size=10))
def test_the_glob_is_fnmatch_for_any_pattern_of_stars(pattern: str, name: str) -> None:
    """The allow-list's matcher (no regular expression per pattern) says what fnmatch
    says, for any pattern whose wildcards are ``*`` and any name: a key it lets through
    that fnmatch would not is a key the lists never allowed."""
    from fnmatch import fnmatchcase

    assert gs._glob(name, pattern) == fnmatchcase(name, pattern), (name, pattern)


def test_parse_keys_says_when_it_is_not_sure() -> None:
    text = ('[core]\n\tbare = false # c\n; x\n[remote "Or\\"ig"]\n\turl = x\n'
            '[filter "lfs"]\n  required\n')
    assert gs.parse_keys(text) == ["core.bare", 'remote.Or"ig.url', "filter.lfs.required"]
    for unsure in ("[core] editor = x\n", "[a.b]\nk = v\n", "[core]\n\tx = a\\\n  b\n",
                   "k = v\n", "[core\n"):
        assert gs.parse_keys(unsure) is None, unsure


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def evil_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    r = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(r)], check=True)
    (r / ".gitattributes").write_text("* filter=evil diff=evil\n")
    (r / "f").write_text("a\n")
    git(r, "add", "-A")
    git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "seed")
    return r


def marker_program(tmp_path: Path, name: str) -> tuple[str, Path]:
    marker = tmp_path / f"MARKER-{name}"
    script = tmp_path / f"{name}.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n")
    script.chmod(0o755)
    return str(script), marker


def test_the_repos_programs_never_run_on_a_read(evil_repo: Path, tmp_path: Path) -> None:
    marks = {}
    for key in ("core.fsmonitor", "filter.evil.clean", "filter.evil.process",
                "diff.evil.textconv", "diff.evil.command", "core.pager"):
        program, marks[key] = marker_program(tmp_path, key)
        git(evil_repo, "config", key, program)
    (evil_repo / "f").write_text("b\n")
    assert gs.run(["diff", "--quiet"], repo=evil_repo).returncode == 1
    assert gs.run(["status", "--porcelain"], repo=evil_repo, capture_output=True,
                  text=True).stdout.strip() == "M f"
    gs.run(["diff", "HEAD", "--stat"], repo=evil_repo, capture_output=True)
    gs.run(["add", "-A"], repo=evil_repo)
    assert {k: m.exists() for k, m in marks.items()} == dict.fromkeys(marks, False)
    # the same calls as git runs them: the programs run (the test can tell)
    subprocess.run(["git", "-C", str(evil_repo), "status", "--porcelain"], capture_output=True)
    assert marks["core.fsmonitor"].exists() or marks["filter.evil.process"].exists()


def test_a_push_rewriting_key_refuses_the_push_and_names_it(evil_repo: Path, tmp_path: Path) -> None:
    remote, elsewhere = tmp_path / "remote.git", tmp_path / "elsewhere.git"
    for bare in (remote, elsewhere):
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    git(evil_repo, "remote", "add", "origin", str(remote))
    for key, value in (("remote.origin.pushurl", str(elsewhere)),
                       (f"url.{elsewhere}.pushInsteadOf", str(remote)),
                       (f"url.{elsewhere}.insteadOf", str(remote))):
        git(evil_repo, "config", key, value)
        with pytest.raises(gs.GitRefused) as got:
            gs.run(["push", "-q", "origin", "main"], repo=evil_repo, capture_output=True)
        said = str(got.value).lower()
        assert f"sets {key.lower()} (" in said, said
        assert f"config --unset-all {key.lower()}" in said
        # a local read never looks at it
        assert gs.run(["rev-parse", "HEAD"], repo=evil_repo, capture_output=True).returncode == 0
        git(evil_repo, "config", "--unset-all", key)
    assert gs.run(["push", "-q", "origin", "main"], repo=evil_repo, capture_output=True,
                  ).returncode == 0
    assert git(remote, "rev-parse", "main") == git(evil_repo, "rev-parse", "HEAD")
    assert subprocess.run(["git", "-C", str(elsewhere), "rev-parse", "--verify", "-q", "main"],
                          capture_output=True).returncode != 0


def test_a_key_off_the_list_refuses_every_call(evil_repo: Path) -> None:
    git(evil_repo, "config", "core.worktree", "/elsewhere")
    with pytest.raises(gs.GitRefused, match=r"sets core.worktree .*not on coord's allow-list"):
        gs.run(["rev-parse", "HEAD"], repo=evil_repo)
    # git config itself runs nothing: it lists and removes the key
    out = gs.run(["config", "--get", "core.worktree"], repo=evil_repo, capture_output=True,
                 text=True)
    assert out.stdout.strip() == "/elsewhere"
    git(evil_repo, "config", "--unset", "core.worktree")
    assert gs.run(["rev-parse", "HEAD"], repo=evil_repo).returncode == 0


def test_the_users_global_config_is_reduced_to_its_allowed_keys(
        evil_repo: Path, tmp_path: Path) -> None:
    program, marker = marker_program(tmp_path, "fsm")
    home = tmp_path / "home"
    (home / ".gitconfig").write_text(
        f"[user]\n\tname = Gee Lobal\n\temail = g@l\n[core]\n\tfsmonitor = {program}\n"
        f"[credential]\n\thelper = !{program}\n[url \"{tmp_path}/x\"]\n\tinsteadOf = y\n")
    got = gs.run(["config", "--list", "--show-scope"], repo=evil_repo, capture_output=True,
                 text=True).stdout
    assert "user.name=Gee Lobal" in got and "user.email=g@l" in got
    assert "credential.helper" not in got and "insteadof" not in got
    (evil_repo / "f").write_text("c\n")
    assert gs.run(["diff", "--quiet"], repo=evil_repo).returncode == 1
    assert not marker.exists()
    ident = gs.run(["var", "GIT_COMMITTER_IDENT"], repo=evil_repo, capture_output=True, text=True)
    assert ident.stdout.startswith("Gee Lobal <g@l>")


def test_the_repositorys_own_identity_wins_as_git_resolves_it(
        evil_repo: Path, tmp_path: Path) -> None:
    """Local config over global, and the global config's conditional includes evaluated
    in the checkout (#59): as git itself resolves them, the allow-list still applied."""
    program, marker = marker_program(tmp_path, "cred")
    home = tmp_path / "home"
    (home / ".gitconfig-work").write_text(
        f"[user]\n\temail = w@work\n[credential]\n\thelper = !{program}\n")
    (home / ".gitconfig").write_text(
        f"[user]\n\tname = Gee Lobal\n\temail = g@l\n"
        f'[includeIf "gitdir:{tmp_path}/work/"]\n\tpath = {home}/.gitconfig-work\n')
    git(evil_repo, "config", "user.email", "local@repo")
    for args, kw in ((["config", "user.email"], {"cwd": evil_repo}),
                     (["config", "--get", "user.email"], {"repo": evil_repo})):
        got = gs.run(args, capture_output=True, text=True, **kw)  # type: ignore[arg-type]
        assert got.stdout.strip() == "local@repo", (args, got)
    ident = gs.run(["var", "GIT_AUTHOR_IDENT"], repo=evil_repo, capture_output=True, text=True)
    assert ident.stdout.startswith("Gee Lobal <local@repo>")
    work = tmp_path / "work" / "r"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    assert gs.run(["config", "user.email"], cwd=work, capture_output=True,
                  text=True).stdout.strip() == "w@work"
    ident = gs.run(["var", "GIT_AUTHOR_IDENT"], repo=work, capture_output=True, text=True)
    assert ident.stdout.startswith("Gee Lobal <w@work>")
    listed = gs.run(["config", "--list"], repo=work, capture_output=True, text=True).stdout
    assert "credential.helper" not in listed  # the included file's program: dropped
    assert gs.run(["config", "user.email"], cwd=tmp_path, capture_output=True,
                  text=True).stdout.strip() == "g@l"  # elsewhere: the global address
    assert not marker.exists()


def test_hooks_are_off_unless_trusted(evil_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "HOOKED"
    hook = evil_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    gs.run(["checkout", "-q", "-b", "other"], repo=evil_repo, capture_output=True)
    assert not marker.exists()
    gs.run(["checkout", "-q", "main"], repo=evil_repo, trusted=True, hooks=True, capture_output=True)
    assert marker.exists()


def test_no_git_process_nor_its_hook_holds_coords_secrets(
        evil_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#78: a trusted repo's hook is the repo's code, and a git process is dumpable (a todo
    of the worker's user could read its /proc/<pid>/environ): neither holds the signing
    key, a COORD_* secret or a Redis password. A forge token stays (a push may need it)."""
    seen = tmp_path / "env-of-the-hook"
    hook = evil_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\nenv > {seen}\n")
    hook.chmod(0o755)
    monkeypatch.setenv("COORD_SIGNING_KEY", "the-signing-key-itself")
    monkeypatch.setenv("COORD_SIGNING_KEY_FILE", "/etc/coord/key")
    monkeypatch.setenv("COORD_AUDIT_KEY", "the-audit-key")
    monkeypatch.setenv("COORD_REDIS_URL", "redis://w:redis-pw-here@db:6379/0")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_push_token")
    gs.run(["checkout", "-q", "-b", "other"], repo=evil_repo, trusted=True, hooks=True,
           capture_output=True)
    env = seen.read_text()
    for secret in ("the-signing-key-itself", "/etc/coord/key", "the-audit-key", "redis-pw-here"):
        assert secret not in env, env
    assert "COORD_REDIS_URL=redis://db:6379/0" in env and "GITHUB_TOKEN=ghp_push_token" in env


def test_every_git_process_coord_starts_goes_through_gitsafe() -> None:
    """No ``subprocess`` call in coordination/ or workers/ names ``git`` itself: only
    coordination/gitsafe.py does."""
    bad = []
    for path in [*ROOT.joinpath("coordination").rglob("*.py"),
                 *ROOT.joinpath("workers").rglob("*.py")]:
        if path.name == "gitsafe.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name not in ("run", "Popen", "check_output", "check_call", "call"):
                continue
            if not node.args or not isinstance(node.args[0], (ast.List, ast.Tuple)):
                continue
            first = node.args[0].elts[0] if node.args[0].elts else None
            if isinstance(first, ast.Constant) and first.value == "git":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bad == [], f"git started without coordination.gitsafe.run: {bad}"


def test_a_clone_ended_early_takes_its_ssh_with_it(tmp_path: Path) -> None:
    """``kill_tree``: a clone ended early (Ctrl-C, SIGTERM, its timeout) is killed with
    the ssh git started, which git itself leaves running. The clone is interrupted once
    its ssh runs (a timeout raced git's start on a busy machine: killed before it forked
    its ssh, git left one starting that nobody could find)."""
    pidfile = tmp_path / "ssh.pid"
    ssh = tmp_path / "slow-ssh"
    ssh.write_text(f"#!/bin/sh\necho $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}\n"
                   "exec sleep 60\n")
    ssh.chmod(0o755)

    class Interrupted(BaseException):
        """What the interrupt raises in the clone's call, as Ctrl-C's KeyboardInterrupt."""

    def interrupt(*_: object) -> None:
        raise Interrupted

    def once_ssh_runs() -> None:
        deadline = time.monotonic() + 40
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGUSR1)

    before = signal.signal(signal.SIGUSR1, interrupt)
    watcher = threading.Thread(target=once_ssh_runs, daemon=True)
    try:
        watcher.start()
        with pytest.raises(Interrupted):
            gs.run(["clone", "--quiet", "--", "ssh://git.invalid/org/slow.git",
                    str(tmp_path / "c")], cwd=tmp_path, env={"GIT_SSH_COMMAND": str(ssh)},
                   capture_output=True, timeout=90, kill_tree=True)
    finally:
        watcher.join(timeout=45)
        signal.signal(signal.SIGUSR1, before)
    assert pidfile.exists(), "git had not started its ssh within 40 s"
    pid = int(pidfile.read_text())

    def state() -> str:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    # SIGKILLed, it may still be on its way out (R) for a moment on a busy machine: ended
    # within 5 s, not still sleeping out its 60.
    deadline = time.monotonic() + 5
    while state() not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.02)
    last = state()
    if last not in ("gone", "Z"):
        os.kill(pid, 9)
    assert last in ("gone", "Z"), f"the clone's ssh (pid {pid}) still runs ({last})"


def test_a_tree_whose_root_starts_its_child_again_is_killed_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git starts its ssh again when the first one dies (the first is its probe of the
    ssh's kind): killed child first, then git, with coord put off the CPU between the
    two kills (a busy machine: the CI run that saw it), git had started a second ssh,
    left running, nobody's. Here a shell that starts its `sleep` again whenever it dies,
    and each SIGKILL followed by 0.3 s off the CPU: every process of the tree is stopped
    before any is killed, so nothing is started again."""
    pids = tmp_path / "pids"
    root = subprocess.Popen(
        ["/bin/sh", "-c", f"while :; do sleep 60 & echo $! >> {pids}; wait; done"])
    started: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while not pids.exists() or not pids.read_text().strip():
            assert time.monotonic() < deadline, "the shell started no sleep in 20 s"
            time.sleep(0.01)
        kill = os.kill

        def put_off(pid: int, sig: int) -> None:
            kill(pid, sig)
            if sig == signal.SIGKILL:
                time.sleep(0.3)

        monkeypatch.setattr(os, "kill", put_off)
        gs._kill_tree(root.pid)
        monkeypatch.undo()
        assert root.wait(timeout=10) == -signal.SIGKILL
        started = [int(p) for p in pids.read_text().split()]

        def running(pid: int) -> bool:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
            except FileNotFoundError:
                return False

        deadline = time.monotonic() + 5  # (SIGKILLed, a moment on its way out at most)
        while any(map(running, started)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(started) == 1 and not running(started[0]), (
            f"sleeps started {started}, still running: {[p for p in started if running(p)]}")
    finally:
        for pid in [root.pid, *started]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        root.wait(timeout=10)
