"""The git commands coord runs for changes: one subprocess each, no state kept here.

Every call names its repository directory (``git -C``), never relies on the
process's cwd, and turns a failure into :class:`GitError` carrying git's own
message. Identity and dates of coord's own commits (reverts) are fixed by the
caller so that the same revert made twice has the same SHA.

Safety: every call runs with the ``ext::`` and ``fd::`` transports off (a remote
spelled ``ext::sh -c CMD`` would run CMD), and names that come from the catalog
(remotes, branches) follow ``--end-of-options`` so a ``--upload-pack=CMD`` is a
name git does not find, never an option it obeys (the catalog refuses both at
load too: :mod:`coordination.catalog.models`). Pushes and merges made by a
landing run with hooks off (``hooks=False``: ``core.hooksPath=/dev/null``, where
no hook can be written) unless the repo says ``land_hooks: true``: a hook a todo
wrote into a worktree must not run with the lander's credentials.

A repository's own git config (``.git/config``, ``config.worktree``) is as
writable by a todo as its hooks, and some of its keys make git run a program
(``remote.origin.uploadpack``, ``core.sshCommand``, ``credential.helper``, filter and
merge drivers, ``gpg.program``...). So every call runs with ``core.fsmonitor``
off, fetches, ``ls-remote`` and pushes made without trust (``hooks=False``) name
``git-upload-pack``/``git-receive-pack`` themselves and leave submodules alone,
and a landing refuses a repo whose own config holds any key of
:data:`COMMAND_KEYS` or any key coord's allow-list refuses (:mod:`coordination.gitsafe`;
:func:`untrusted_commands`, naming it) unless the repo says ``land_hooks: true`` (it
trusts its own hooks and config). Every call goes through :func:`coordination.gitsafe.run`
(the allow-list: the repository's keys not on it neutralised or refused, the user's
global and system config reduced to their allowed keys, hooks off unless trusted).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from coordination import gitsafe
from coordination.errors import OperationFailed

#: Seconds any one git command may take (a push to a slow remote included).
GIT_TIMEOUT = 120.0

#: Configuration every git call of coord's runs with: no ``ext::``/``fd::`` transport,
#: no file-system monitor (``core.fsmonitor`` names a program; coord needs none).
SAFE = ("-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never",
        "-c", "core.fsmonitor=false")

#: Keys of a repository's own git config that make one of a landing's git commands
#: (fetch, ls-remote, push, merge, revert, commit, reset) run a program, as git
#: spells them lower-cased (``*``: any subsection). ``core.fsmonitor`` is not here:
#: every call turns it off (:data:`SAFE`).
COMMAND_KEYS = (
    "core.sshcommand", "core.askpass", "core.gitproxy", "core.alternaterefscommand",
    "credential.helper", "credential.*.helper",
    "remote.*.uploadpack", "remote.*.receivepack", "remote.*.vcs",
    "filter.*.clean", "filter.*.smudge", "filter.*.process",
    "merge.*.driver", "gpg.program", "gpg.*.program",
    "include.path", "includeif.*.path",
)
#: Words one of them has (lower-cased): a config file without any is read no further.
_COMMAND_WORDS = ("sshcommand", "askpass", "gitproxy", "alternaterefscommand", "helper",
                  "uploadpack", "receivepack", "vcs", "clean", "smudge", "process",
                  "driver", "program", "include")

#: What turns hooks off for one call: a hooks directory nothing can be written into.
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")

#: Who coord's own commits are by when git has no identity configured (the lander's,
#: ``git var GIT_AUTHOR_IDENT``, otherwise: :func:`identity`).
IDENTITY = {"GIT_AUTHOR_NAME": "coord", "GIT_AUTHOR_EMAIL": "coord@localhost",
            "GIT_COMMITTER_NAME": "coord", "GIT_COMMITTER_EMAIL": "coord@localhost"}


class GitError(OperationFailed):
    """A git command failed; ``stderr`` is git's own message."""

    def __init__(self, args: Sequence[str], code: int, stderr: str) -> None:
        text = stderr.strip().splitlines()
        super().__init__(f"git {' '.join(args)} failed ({code}): "
                         + (text[-1] if text else "no message"))
        self.args_ = list(args)
        self.code = code
        self.stderr = stderr


def run(repo: str | Path, *args: str, env: Mapping[str, str] | None = None,
        input: str | None = None, hooks: bool = False) -> subprocess.CompletedProcess[str]:
    """``git -C repo ARGS`` through :func:`coordination.gitsafe.run`, finished (text).
    ``hooks``: the repo is trusted (``land_hooks: true``): its own hooks and config
    apply. A refused config is a :class:`GitError` naming the key (nothing ran)."""
    try:
        return gitsafe.run(args, repo=repo, env=env, trusted=hooks, hooks=hooks,
                           capture_output=True, text=True, timeout=GIT_TIMEOUT, input=input)
    except gitsafe.GitRefused as exc:
        raise GitError(args, 1, exc.message) from None


def git(repo: str | Path, *args: str, env: Mapping[str, str] | None = None,
        check: bool = True, input: str | None = None, hooks: bool = False) -> str:
    """``git -C repo ARGS``: its stdout, stripped. ``check``: a failure raises (a
    refused config always does). ``hooks``: trusted (see :func:`run`)."""
    proc = run(repo, *args, env=env, input=input, hooks=hooks)
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr)
    return proc.stdout.strip()


def ok(repo: str | Path, *args: str, env: Mapping[str, str] | None = None) -> bool:
    """Did ``git -C repo ARGS`` exit 0?"""
    try:
        git(repo, *args, env=env)
    except GitError:
        return False
    return True


def head(repo: str | Path) -> str:
    return git(repo, "rev-parse", "HEAD")


_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def read_head(worktree: str | Path) -> str:
    """The SHA of ``worktree``'s HEAD, read from git's files (no process: ``coord change
    status`` reads it for every repo of a change, hundreds of them); ``git rev-parse
    HEAD`` (:func:`head`) whenever the files say anything but the plain cases (a
    loose or packed branch, a detached HEAD; a worktree's ``.git`` file and its
    ``commondir``)."""
    try:
        found = _head_from_files(Path(worktree))
    except (OSError, UnicodeDecodeError, ValueError):
        found = None
    return found if found is not None else head(worktree)


git_dirs = gitsafe.git_dirs  # (the checkout's git dirs, read from its files)


def read_ref(common: Path, ref: str) -> str | None:
    """The SHA ``ref`` (``refs/heads/NAME``) names in the repository whose common git
    dir is ``common``, loose or packed, from its files; None when they do not say it
    plainly (no such ref, a symbolic one, another ref storage: ask git)."""
    loose = common / ref
    if loose.is_file():
        sha = loose.read_text().strip()
        return sha if _SHA.fullmatch(sha) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _SHA.fullmatch(sha):
                return sha
    return None


def _head_from_files(wt: Path) -> str | None:
    dirs = git_dirs(wt)
    if dirs is None:
        return None
    gitdir, common = dirs
    value = (gitdir / "HEAD").read_text().strip()
    if _SHA.fullmatch(value):
        return value  # detached
    if not value.startswith("ref: refs/heads/"):
        return None
    return read_ref(common, value[len("ref: "):])


def tree(repo: str | Path, rev: str) -> str | None:
    """The tree SHA of ``rev`` (None if this repo does not have ``rev``)."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{tree}}")
    except GitError:
        return None


#: What a fetch and an ``ls-remote`` made without trust run on the remote's side.
UPLOAD_PACK = "--upload-pack=git-upload-pack"


def remote_sha(repo: str | Path, remote: str, branch: str, *,
               hooks: bool = False) -> str | None:
    """``branch``'s SHA on ``remote`` now, asked of the remote (None: no such branch).
    Without ``hooks`` (trust in the repo's own config), git's own upload-pack."""
    out = git(repo, "ls-remote", *(() if hooks else (UPLOAD_PACK,)), "--heads",
              "--end-of-options", remote, f"refs/heads/{branch}", hooks=hooks)
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def fetch(repo: str | Path, remote: str, branch: str, *, hooks: bool = False) -> str:
    """Fetch ``branch`` of ``remote`` into its remote-tracking ref; its SHA. Without
    ``hooks`` (trust in the repo's own config): git's own upload-pack, no submodule."""
    git(repo, "fetch", "--quiet", "--no-tags",
        *(() if hooks else (UPLOAD_PACK, "--no-recurse-submodules")), "--end-of-options",
        remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}", hooks=hooks)
    return git(repo, "rev-parse", "--verify", "--end-of-options",
               f"refs/remotes/{remote}/{branch}")


def fetch_commit(repo: str | Path, remote: str, sha: str, branch: str) -> str | None:
    """The commit ``sha`` (whole or abbreviated) in ``repo``, fetched from ``remote`` when
    the repo does not have it yet: by its name (a whole SHA; forges serve any commit
    they hold), else with ``branch`` (its remote-tracking ref); its whole SHA, or None
    when neither brought it. Without trust in the repo's own config (git's own
    upload-pack, no submodule), as :func:`fetch`."""
    if not has(repo, sha):
        if _SHA.fullmatch(sha.lower()):
            run(repo, "fetch", "--quiet", "--no-tags", UPLOAD_PACK, "--no-recurse-submodules",
                "--end-of-options", remote, sha)
        if not has(repo, sha):
            try:
                fetch(repo, remote, branch)
            except GitError:
                return None  # (no such branch there: the SHA is what is said missing)
    if not has(repo, sha):
        return None
    return git(repo, "rev-parse", "--verify", "--end-of-options", f"{sha}^{{commit}}")


def has(repo: str | Path, sha: str) -> bool:
    return ok(repo, "cat-file", "-e", f"{sha}^{{commit}}")


def is_ancestor(repo: str | Path, a: str, b: str) -> bool:
    return ok(repo, "merge-base", "--is-ancestor", a, b)


def push(repo: str | Path, remote: str, sha: str, branch: str, expect: str, *,
         hooks: bool = False) -> str | None:
    """Push ``sha`` to ``branch`` of ``remote`` only if the remote's branch is still
    ``expect`` (``--force-with-lease``); None when pushed, else git's refusal. No
    hook runs, and git's own receive-pack, unless ``hooks``."""
    return _leased_push(repo, remote, f"{sha}:refs/heads/{branch}", branch, expect, hooks)


def delete_branch(repo: str | Path, remote: str, branch: str, expect: str, *,
                  hooks: bool = False) -> str | None:
    """Delete ``branch`` on ``remote`` only if it is still ``expect`` there
    (``--force-with-lease``): None when deleted, else git's refusal. As :func:`push`:
    no hook runs, and git's own receive-pack, unless ``hooks``."""
    return _leased_push(repo, remote, f":refs/heads/{branch}", branch, expect, hooks)


def _leased_push(repo: str | Path, remote: str, refspec: str, branch: str, expect: str,
                 hooks: bool) -> str | None:
    """``git push REMOTE REFSPEC`` with a lease on ``branch`` at ``expect``: None when
    done, else git's refusal."""
    try:
        git(repo, "push", "--quiet", "--porcelain", "--no-verify" if not hooks else "--verify",
            *(() if hooks else ("--receive-pack=git-receive-pack",
                                "--recurse-submodules=no")),
            f"--force-with-lease=refs/heads/{branch}:{expect}", "--end-of-options", remote,
            refspec, hooks=hooks)
    except GitError as exc:
        return exc.stderr.strip() or str(exc)
    return None


def identity(repo: str | Path) -> tuple[dict[str, str], str | None]:
    """The lander's identity as git has it in ``repo`` (``git var GIT_AUTHOR_IDENT`` /
    ``GIT_COMMITTER_IDENT``: config, ``GIT_AUTHOR_*`` env) as the ``GIT_*_NAME``/``EMAIL``
    env of a commit, and None; or coord's :data:`IDENTITY` and why (git has none)."""
    out: dict[str, str] = {}
    for who in ("AUTHOR", "COMMITTER"):
        try:
            ident = git(repo, "-c", "user.useConfigOnly=true", "var", f"GIT_{who}_IDENT")
        except GitError as exc:
            said = (exc.stderr.strip().splitlines() or [str(exc)])[-1]
            return dict(IDENTITY), (f"git has no identity in {repo} ({said}): commits are by "
                                    "coord <coord@localhost>; set git config user.name and "
                                    "user.email")
        name, _, rest = ident.partition(" <")
        email = rest.partition(">")[0]
        if not name or not email:
            return dict(IDENTITY), (f"git's identity in {repo} ({ident!r}) has no name or "
                                    "email: commits are by coord <coord@localhost>")
        out[f"GIT_{who}_NAME"], out[f"GIT_{who}_EMAIL"] = name, email
    return out, None


def trailer(message: str, plan: str) -> str:
    """``message`` ending with the ``Coord-Change: PLAN`` trailer (in its own last
    paragraph, where ``git interpret-trailers`` finds it)."""
    return message.rstrip("\n") + f"\n\nCoord-Change: {plan}\n"


#: Config files' texts by (path, inode, mtime, size): ``change status`` reads a
#: checkout's config for each check of each repo.
_TEXTS: dict[tuple[str, int, int, int], str] = {}


def config_text(path: Path) -> str:
    """A config file's text ("" when there is none)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ""
    key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    got = _TEXTS.get(key)
    if got is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            got = f.read()
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        _TEXTS[key] = got
    return got


def _plainly_clean(repo: Path) -> bool:
    """Does ``repo``'s own config (its repository's ``config``; the ``config.worktree``
    files only when ``extensions.worktreeConfig`` makes git read them) hold no word of
    a :data:`COMMAND_KEYS` key? (False: ask git, which follows includes.)"""
    try:
        dirs = git_dirs(repo)
        if dirs is None:
            return False
        gitdir, common = dirs
        text = config_text(common / "config").lower()
        if "worktreeconfig" in text:
            text += (config_text(gitdir / "config.worktree")
                     + config_text(common / "config.worktree")).lower()
    except (OSError, UnicodeDecodeError):
        return False
    return not any(w in text for w in _COMMAND_WORDS)


def untrusted_commands(*repos: str | Path) -> list[str]:
    """The entries of these repositories' own git config (scopes ``local`` and
    ``worktree``: files a todo can write; includes followed) whose key is one of
    :data:`COMMAND_KEYS`, as ``KEY=VALUE (FILE)``, or one coord's allow-list refuses or
    that redirects a push (:func:`coordination.gitsafe.classify`), as ``KEY (FILE)``;
    [] when there is none. Their files
    are read first: one without any word of such a key needs no git process (a
    change's status reads this for every repo)."""
    out: list[str] = []
    for repo in repos:
        try:
            own = gitsafe.local_keys(repo)
        except gitsafe.GitRefused as exc:
            raise GitError(["config", "--list"], 1, exc.message) from None
        for key, origin in own:
            if gitsafe.classify(key) in ("refuse", "network") and not any(
                    fnmatch.fnmatchcase(key.lower(), k) for k in COMMAND_KEYS):
                said = f"{key} ({origin})"
                if said not in out:
                    out.append(said)
        if _plainly_clean(Path(repo)):
            continue
        raw = git(repo, "config", "--list", "--show-scope", "--show-origin", "-z")
        parts = raw.split("\0")
        for scope, origin, entry in zip(parts[0::3], parts[1::3], parts[2::3]):
            key, _, value = entry.partition("\n")
            if scope not in ("local", "worktree"):
                continue
            if any(fnmatch.fnmatchcase(key.lower(), k) for k in COMMAND_KEYS):
                said = f"{key}={value} ({origin.removeprefix('file:')})"
                if said not in out:
                    out.append(said)
    return out


def command_refusal(repo: str, checkout: str | Path, found: list[str]) -> str:
    """Why coord runs no git in ``repo`` to land or revert it: its own git config makes
    git run a program (``found``: :func:`untrusted_commands`)."""
    key = re.split(r"[=\s]", found[0], maxsplit=1)[0]
    more = f" (and {len(found) - 1} more: {'; '.join(found[1:])})" if len(found) > 1 else ""
    return (f"{repo}: its own git config sets {found[0]}{more}, which makes git run a "
            "program when coord fetches, merges or pushes it (a todo may have written it "
            f"there): remove it (git -C {checkout} config --unset-all {key}), or move it to "
            f"your global git config; or, if the repo's own hooks and git config are to be "
            f"trusted, set land_hooks: true on repo {repo}")


def _public_url(url: str) -> str | None:
    """``url`` as a catalog writes it (:func:`coordination.fleet.drift.public_url`)."""
    # lazy: fleet.drift loads the catalog's models and every manifest reader (pydantic,
    # packaging); every worker imports this module to run any todo, few land a change
    from coordination.fleet.drift import public_url

    return public_url(url)


def remote_refusal(repo: str, checkout: str | Path, remote: str, url: str | None,
                   *dirs: str | Path) -> str | None:
    """Why coord must not fetch ``repo`` from, nor push it to, ``remote`` as ``dirs``
    (its checkout, its worktree) configure it: the catalog says the repo is at ``url``
    (``url:``) and ``remote.REMOTE.url`` there names another URL, or more than one (git
    pushes to each), or none while ``remote`` is not ``url`` itself (git would read
    ``.git/remotes/REMOTE`` or take the name as a path). A todo shares the checkout's
    ``.git/config`` and may have rewritten it. URLs compare as the catalog writes them
    (no password: :func:`coordination.fleet.drift.public_url`). None: no ``url:`` (not
    checked), or the remote is the catalog's URL."""
    if url is None:
        return None
    for d in dirs:
        proc = run(d, "config", "--null", "--get-all", f"remote.{remote}.url")
        if proc.returncode not in (0, 1):
            return (f"{repo}: the URL of its remote {remote} cannot be read in {d} "
                    f"({proc.stderr.strip() or 'exit ' + str(proc.returncode)}): coord "
                    f"fetches and pushes it only at {url}, where the catalog says it is")
        got = [v for v in proc.stdout.split("\0") if v]
        if len(got) == 1 and url in (got[0], _public_url(got[0])):
            continue
        if not got and remote == url:
            continue
        if len(got) > 1:
            said = "several URLs (" + ", ".join(got) + "), and git pushes to each"
            fix = f"git -C {checkout} config --replace-all remote.{remote}.url {url}"
        elif got:
            said, fix = got[0], f"git -C {checkout} remote set-url {remote} {url}"
        else:
            said = "no URL in its git config"
            fix = f"git -C {checkout} remote add {remote} {url}"
        moved = got[0] if len(got) == 1 else "URL"
        return (f"{repo}: its remote {remote} points at {said} in {d}, not at {url}, "
                f"where the catalog says the repo is (url:): coord fetches it from and "
                f"lands it on no other URL (a todo may have rewritten the remote); put it "
                f"back ({fix}), or, if the repo has moved, say so in the catalog (coord "
                f"repo update {repo} --url {moved})")
    return None


#: The keys of a repository's own config that rewrite a remote's URL where git reads it
#: (``git ls-remote --get-url``, a fetch): ``url.<base>.insteadOf``.
REWRITE_KEY = "url.*.insteadof"


def rewrite_refusal(repo: str, checkout: str | Path, remote: str) -> str | None:
    """Why coord must not read or fetch ``remote`` where ``checkout``'s own git config
    sends it: a ``url.<base>.insteadOf`` there (a file a todo can write) rewrites the
    URL the remote names (``remote.REMOTE.url``, else ``remote`` itself as a path or
    URL) into another, outside the repository. None: no such rule in its own config (no
    process: the files are read first), or one that leaves this remote's URL as it is.
    A rewrite given in coord's own environment (``GIT_CONFIG_COUNT``) is the operator's,
    and is not the repository's to answer for."""
    try:
        rules = [(k, f) for k, f in gitsafe.local_keys(checkout)
                 if fnmatch.fnmatchcase(k.lower(), REWRITE_KEY)]
    except gitsafe.GitRefused as exc:
        return f"{repo}: its own git config cannot be read ({exc.message})"
    if not rules:
        return None
    named = run(checkout, "config", "--null", "--get-all", f"remote.{remote}.url")
    written = next((v for v in named.stdout.split("\0") if v), remote) \
        if named.returncode == 0 else remote
    try:
        read = git(checkout, "ls-remote", "--get-url", "--end-of-options", remote)
    except GitError as exc:
        return f"{repo}: the URL of its remote {remote} cannot be read in {checkout} ({exc})"
    if read == written:
        return None
    key, origin = rules[0]
    more = f" (and {len(rules) - 1} more such rules)" if len(rules) > 1 else ""
    return (f"{repo}: its own git config rewrites the URL of its remote {remote}, {written}, "
            f"into {read} ({key} in {origin}{more}): coord reads and fetches a remote only "
            f"at the URL it names, never where a repository's config sends it (a todo may "
            f"have written the rule); remove it (git -C {checkout} config --unset-all "
            f"{key}), or point the remote at the URL you mean (git -C {checkout} remote "
            f"set-url {remote} URL)")


#: The keys of a repository's own config that send a fetch or a push to another URL than
#: ``remote.<name>.url`` names (lower-cased; ``*``: any subsection).
REDIRECT_KEYS = ("url.*.insteadof", "url.*.pushinsteadof", "remote.*.pushurl")


def redirect_refusal(repo: str, checkout: str | Path, remote: str, url: str | None,
                     *dirs: str | Path) -> str | None:
    """Why coord must not fetch ``repo`` from, nor push it to, ``remote`` as ``dirs``
    configure it when it runs git there with their own config (``land_hooks: true``): a
    rule of theirs (:data:`REDIRECT_KEYS`: ``insteadOf``, ``pushInsteadOf``, a
    ``pushurl``) sends the fetch or the push to another URL than the catalog's ``url:``.
    :func:`remote_refusal` checks ``remote.REMOTE.url`` itself; an untrusted call never
    obeys these keys (:mod:`coordination.gitsafe` refuses them on the network). The
    URLs are read with the operator's global config left out, so only the repository's
    own rules are answered for. None: no ``url:``, no such rule, or rules that leave
    this remote at ``url``."""
    if url is None:
        return None
    for d in dirs:
        try:
            rules = [(k, f) for k, f in gitsafe.local_keys(d)
                     if any(fnmatch.fnmatchcase(k.lower(), p) for p in REDIRECT_KEYS)]
        except gitsafe.GitRefused as exc:
            return f"{repo}: its own git config cannot be read in {d} ({exc.message})"
        if not rules:
            continue
        key, origin = rules[0]
        more = f" (and {len(rules) - 1} more such rules)" if len(rules) > 1 else ""
        try:
            fetch, push = (_local(d, *args) for args in (
                ("ls-remote", "--get-url", "--end-of-options", remote),
                ("remote", "get-url", "--push", "--all", "--end-of-options", remote)))
        except GitError as exc:
            return f"{repo}: where its remote {remote} goes cannot be read in {d} ({exc})"
        if fetch.returncode != 0 or push.returncode != 0:
            # no remote of that name (a URL given as the remote): where a push goes is
            # not something git says, so with such rules present nothing is sent
            said = "cannot be told"
        else:
            urls = dict.fromkeys([fetch.stdout.strip(), *push.stdout.split()])
            away = [u for u in urls if url not in (u, _public_url(u))]
            if not away:
                continue
            said = "is sent to " + ", ".join(away)
        return (f"{repo}: its own git config ({key} in {origin}{more}) redirects its "
                f"remote {remote}: where it fetches and pushes {said}, not {url}, where "
                f"the catalog says the repo is (url:); coord lands a repo only on that "
                f"URL, its own hooks and config trusted (land_hooks: true) or not: remove "
                f"the rule (git -C {checkout} config --unset-all {key})")
    return None


def _local(repo: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git -C repo ARGS`` that reads config and talks to no remote (``remote get-url``
    is one), the repository's network keys read as they are."""
    try:
        return gitsafe.run(args, repo=repo, network=False, capture_output=True, text=True,
                           timeout=GIT_TIMEOUT)
    except gitsafe.GitRefused as exc:
        raise GitError(args, 1, exc.message) from None


def untrusted_git(repo: str, checkout: str | Path, *dirs: str | Path,
                  remote: str | None = None, url: str | None = None,
                  trusted: bool = False) -> str | None:
    """Why coord must run no git in ``dirs`` (``repo``'s checkout and worktree) to land
    or revert it: ``remote`` there is not the catalog's ``url`` (:func:`remote_refusal`,
    checked even when ``trusted``; and when ``trusted``, whose own config then applies,
    :func:`redirect_refusal`), or their own config makes git run a program
    (:func:`command_refusal`, unless ``trusted``: ``land_hooks``; their config
    unreadable: so), or None."""
    if remote is not None:
        wrong = remote_refusal(repo, checkout, remote, url, *dirs) or (
            redirect_refusal(repo, checkout, remote, url, *dirs) if trusted else None)
        if wrong:
            return wrong
    if trusted:
        return None
    try:
        found = untrusted_commands(*dirs)
    except GitError as exc:
        return (f"{repo}: its own git config cannot be read ({exc}): coord runs no git "
                "there to land or revert it")
    return command_refusal(repo, checkout, found) if found else None
