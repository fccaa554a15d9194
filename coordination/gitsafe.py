"""How coord runs git: every git process coord starts goes through :func:`run`.

A repository's own git config (``.git/config``, ``config.worktree``, what they include)
is as writable by a todo as its working tree, and the user's global and system config
by anything running as the user; many keys make git run a program
(``core.fsmonitor``, ``gpg.ssh.defaultKeyCommand``, ``credential.helper``, filter,
diff and merge drivers, hooks...) or send a push elsewhere (``remote.*.pushurl``,
``url.*.insteadOf``). So coord trusts none of it by default, with an **allow-list**:

- the repository's own keys (scopes ``local`` and ``worktree``) are read first
  (from the files when they say it plainly, else ``git config --list --show-scope``,
  which runs nothing) and each is :func:`classify`-ed: ``allow`` (on :data:`ALLOW`:
  names no program, sends nothing elsewhere) is left alone; ``neutral`` is set to a
  safe value for the call (:data:`NEUTRAL`, as command-scope config, which wins over
  the repository's); ``network`` (:data:`NETWORK`: rewrites where a fetch or push
  goes) refuses a call that talks to a remote and is left alone otherwise (a local
  command never reads it); ``refuse`` (every other key) refuses the call, naming the
  key and how to remove it (:class:`GitRefused`);
- the user's global and system config are not read by the call at all
  (``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_CONFIG_NOSYSTEM=1``): their allowed keys
  (identity, ``safe.directory``...) are handed back as command-scope config, the rest
  (credential helpers, ``insteadOf``, ssh commands...) is dropped. A key the
  repository's own config sets is not handed back (command scope would outrank it: a
  per-repository ``user.email`` is who git says you are there), and a global config
  with conditional includes (``includeIf "gitdir:..."``) is read in the checkout, so
  the identity is the one git itself resolves there. Config the operator
  gives coord's own environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_PARAMETERS``,
  ``GIT_SSH_COMMAND``) is theirs and kept;
- every call runs with :data:`ALWAYS` (no ``ext::``/``fd::`` transport, no
  file-system monitor, no signing) and, unless ``trusted``, hooks off
  (``core.hooksPath=/dev/null``, where no hook can be written).

``trusted`` (a repo whose catalog entry says ``land_hooks: true``: it trusts its own
hooks and config) runs git with only :data:`ALWAYS`, as before.

No git process is given coord's own secrets (:func:`_without_coord_secrets`: the
signing keys and the file of one, every ``COORD_*`` variable whose name says it is a
secret, a ``COORD_*_URL``'s password): git never needs them, a hook is the repo's code,
and a git process is dumpable (an exec), so a todo of the worker's user that came upon
one while it ran could read its ``/proc/<pid>/environ``. (Forge tokens stay: a push may
need one.)
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import functools
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from coordination import processes
from coordination.errors import OperationFailed

#: Seconds one git command may take unless the caller says otherwise.
GIT_TIMEOUT = 120.0

#: Config every call runs with, a trusted repository's too: no ``ext::``/``fd::``
#: transport (a remote spelled ``ext::sh -c CMD`` would run CMD), no file-system monitor.
SAFE: tuple[tuple[str, str], ...] = (
    ("protocol.ext.allow", "never"), ("protocol.fd.allow", "never"),
    ("core.fsmonitor", "false"),
)
#: Config every call runs with unless trusted, whatever any file says: :data:`SAFE`,
#: and no signing (a signing program is a program).
ALWAYS: tuple[tuple[str, str], ...] = SAFE + (
    ("commit.gpgSign", "false"), ("tag.gpgSign", "false"), ("tag.forceSignAnnotated", "false"),
    ("push.gpgSign", "false"), ("merge.verifySignatures", "false"),
    ("log.showSignature", "false"),
)
#: What turns hooks off: a hooks directory nothing can be written into.
NO_HOOKS = ("core.hooksPath", "/dev/null")

#: Keys (lower-cased, ``*``: any subsection) that name no program and send nothing
#: elsewhere: left as the repository or the user set them.
ALLOW: tuple[str, ...] = (
    "add.*", "advice.*", "am.*", "apply.*", "author.*", "blame.*",
    "branch.autosetupmerge", "branch.autosetuprebase", "branch.sort",
    "branch.*.description", "branch.*.merge", "branch.*.mergeoptions", "branch.*.pushremote",
    "branch.*.rebase", "branch.*.remote", "branch.*.vscode-merge-base",
    "checkout.*", "clean.*", "clone.*", "color.*", "column.*",
    "commit.cleanup", "commit.status", "commit.template", "commit.verbose",
    "commitgraph.*", "committer.*",
    "core.abbrev", "core.alternaterefsprefixes", "core.attributesfile", "core.autocrlf",
    "core.bare", "core.bigfilethreshold", "core.checkroundtripencoding", "core.checkstat",
    "core.commentchar", "core.commitgraph", "core.compression", "core.createobject",
    "core.deltabasecachelimit", "core.eol", "core.excludesfile", "core.filemode",
    "core.filesreflocktimeout", "core.fsmonitorhookversion", "core.fsync", "core.fsyncmethod",
    "core.fsyncobjectfiles", "core.hidedotfiles", "core.ignorecase", "core.ignorestat",
    "core.logallrefupdates", "core.longpaths", "core.loosecompression", "core.multipackindex",
    "core.notesref", "core.packedgitlimit", "core.packedgitwindowsize",
    "core.packedrefstimeout", "core.precomposeunicode", "core.prefersymlinkrefs",
    "core.preloadindex", "core.protecthfs", "core.protectntfs", "core.quotepath",
    "core.repositoryformatversion", "core.restrictinheritedhandles", "core.safecrlf",
    "core.sharedrepository", "core.sparsecheckout", "core.sparsecheckoutcone",
    "core.splitindex", "core.symlinks", "core.trustctime", "core.untrackedcache",
    "core.usereplacerefs", "core.warnambiguousrefs", "core.whitespace",
    "credential.username", "credential.usehttppath", "credential.*.username",
    "credential.*.usehttppath",
    "diff.algorithm", "diff.autorefreshindex", "diff.colormoved", "diff.colormovedws",
    "diff.context", "diff.dirstat", "diff.ignoresubmodules", "diff.indentheuristic",
    "diff.interhunkcontext", "diff.mnemonicprefix", "diff.noprefix", "diff.orderfile",
    "diff.relative", "diff.renamelimit", "diff.renames", "diff.statgraphwidth",
    "diff.submodule", "diff.suppressblankempty", "diff.wserrorhighlight",
    "diff.*.binary", "diff.*.cachetextconv", "diff.*.wordregex", "diff.*.xfuncname",
    "extensions.*", "feature.*",
    "fetch.fsck.*", "fetch.fsckobjects", "fetch.negotiationalgorithm", "fetch.output",
    "fetch.parallel", "fetch.prune", "fetch.prunetags", "fetch.recursesubmodules",
    "fetch.showforcedupdates", "fetch.unpacklimit", "fetch.writecommitgraph",
    "filter.*.required", "format.*", "fsck.*", "gc.*",
    "gpg.format", "gpg.mintrustlevel", "gui.*", "help.*", "i18n.*", "index.*",
    "init.defaultbranch", "lfs.*", "log.*", "mailmap.*", "maintenance.*",
    "merge.autostash", "merge.branchdesc", "merge.conflictstyle", "merge.defaulttoupstream",
    "merge.directoryrenames", "merge.ff", "merge.log", "merge.renamelimit", "merge.renames",
    "merge.renormalize", "merge.stat", "merge.suppressdest", "merge.verbosity",
    "merge.*.name", "merge.*.recursive",
    "notes.*", "pack.*", "protocol.allow", "protocol.*.allow", "pull.*",
    "push.autosetupremote", "push.default", "push.negotiate", "push.pushoption",
    "push.recursesubmodules", "push.usebitmaps", "push.useforceifincludes",
    "rebase.*", "receive.*",
    "remote.pushdefault", "remote.*.fetch", "remote.*.partialclonefilter", "remote.*.promisor",
    "remote.*.prune", "remote.*.prunetags", "remote.*.push", "remote.*.skipdefaultupdate",
    "remote.*.skipfetchall", "remote.*.tagopt", "remote.*.url",
    "repack.*", "rerere.*", "revert.*", "safe.*", "showbranch.*", "sparse.*", "splitindex.*",
    "ssh.variant", "stash.*", "status.*",
    "submodule.active", "submodule.fetchjobs", "submodule.propagatebranches",
    "submodule.recurse", "submodule.*.active", "submodule.*.branch",
    "submodule.*.fetchrecursesubmodules", "submodule.*.ignore", "submodule.*.url",
    "tag.sort", "tar.umask", "trace2.*", "transfer.fsckobjects", "transfer.hiderefs",
    "transfer.unpacklimit", "transfer.advertisesid", "uploadarchive.allowunreachable",
    "uploadpack.allowanysha1inwant", "uploadpack.allowfilter",
    "uploadpack.allowreachablesha1inwant", "uploadpack.allowrefinwant",
    "uploadpack.allowtipsha1inwant", "uploadpack.hiderefs", "uploadpack.keepalive",
    "user.*", "versionsort.*", "worktree.*",
)

#: Keys set, for the call, to a value under which git runs nothing: (pattern, value).
#: Where git has no "off" value (a driver, a program), the empty string: git then
#: fails the one command that would have run it, and runs nothing.
NEUTRAL: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"), ("core.hookspath", "/dev/null"),
    ("core.editor", ":"), ("sequence.editor", ":"), ("core.pager", "cat"), ("pager.*", "false"),
    ("core.sshcommand", "ssh"), ("core.askpass", ""),
    ("credential.helper", ""), ("credential.*.helper", ""),
    ("commit.gpgsign", "false"), ("tag.gpgsign", "false"), ("tag.forcesignannotated", "false"),
    ("push.gpgsign", "false"), ("merge.verifysignatures", "false"),
    ("log.showsignature", "false"), ("push.followtags", "false"),
    ("gpg.program", ""), ("gpg.*.program", ""), ("gpg.ssh.defaultkeycommand", ""),
    ("gpg.ssh.allowedsignersfile", ""), ("gpg.ssh.revocationfile", ""),
    ("user.signingkey", ""),
    ("filter.*.clean", ""), ("filter.*.smudge", ""), ("filter.*.process", ""),
    ("diff.external", ""), ("diff.*.command", ""), ("diff.*.textconv", ""),
    ("merge.*.driver", ""),
    ("remote.*.uploadpack", "git-upload-pack"), ("remote.*.receivepack", "git-receive-pack"),
    ("remote.*.mirror", "false"), ("submodule.*.update", "none"),
    ("uploadpack.packobjectshook", ""),
)

#: Keys that change where a fetch or a push goes: a call that talks to a remote is
#: refused while the repository sets one (a local command never reads them).
NETWORK: tuple[str, ...] = (
    "remote.*.pushurl", "url.*.insteadof", "url.*.pushinsteadof",
    "remote.*.proxy", "remote.*.proxyauthmethod", "http.*",
)

#: git subcommands that talk to a remote (``network``).
NETWORK_COMMANDS = frozenset({"fetch", "push", "ls-remote", "clone", "pull", "remote",
                              "submodule", "archive"})

#: Why a key no list names is refused (the word the refusal uses).
_WHY = {
    "neutral": "names a program or a signing step, set aside for coord's call",
    "network": "changes where a fetch or a push goes",
    "refuse": "is not on coord's allow-list of git config (coordination/gitsafe.py: "
              "ALLOW); it may make git run a program or read another file",
}

_ENV_KEYS = ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "HOME",
             "XDG_CONFIG_HOME", "GIT_DIR", "GIT_COMMON_DIR", "GIT_CONFIG_COUNT",
             "GIT_CONFIG_PARAMETERS")


class GitRefused(OperationFailed, subprocess.SubprocessError):
    """coord runs no git in a repository whose own config sets a key it does not allow."""

    def __init__(self, message: str, *, key: str, origin: str) -> None:
        super().__init__(message)
        self.key = key
        self.origin = origin


def _matches(key: str, patterns: Sequence[str]) -> bool:
    low = key.lower()
    return any(_glob(low, p) for p in patterns)


@functools.lru_cache(maxsize=1024)
def _pieces(pattern: str) -> tuple[str, ...] | None:
    """The text between a pattern's ``*``s; None when it has another wildcard."""
    return None if "?" in pattern or "[" in pattern else tuple(pattern.split("*"))


def _glob(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase(name, pattern)``, without compiling a regular expression
    for a pattern whose only wildcard is ``*`` (every one of the lists here): the first
    call's 250 compiles cost the command that runs git ~20 ms."""
    pieces = _pieces(pattern)
    if pieces is None:
        return fnmatch.fnmatchcase(name, pattern)
    if len(pieces) == 1:
        return name == pattern
    first, *middle, last = pieces
    if (len(name) < len(first) + len(last) or not name.startswith(first)
            or not name.endswith(last)):
        return False
    at, end = len(first), len(name) - len(last)
    for piece in middle:  # each as early as it can be: what follows has the most room
        found = name.find(piece, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def classify(key: str) -> str:
    """What coord does with the repository config key ``key``: ``allow``, ``neutral``,
    ``network`` or ``refuse`` (see the module's doc)."""
    if neutral_value(key) is not None:
        return "neutral"
    if _matches(key, NETWORK):
        return "network"
    if _matches(key, ALLOW):
        return "allow"
    return "refuse"


def neutral_value(key: str) -> str | None:
    low = key.lower()
    for pattern, value in NEUTRAL:
        if _glob(low, pattern):
            return value
    return None


# -- reading config -------------------------------------------------------------------------
_SECTION = re.compile(r'\s*\[([A-Za-z0-9-]+)(?:\s+"((?:[^"\\\n]|\\.)*)")?\]\s*(?:[#;].*)?$')
_NAME = re.compile(r"\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=.*)?$")


def parse_keys(text: str) -> list[str] | None:
    """The keys a git config file's text sets (section and name lower-cased, the
    subsection as written), or None when the text is not plain enough to be sure
    (a continued line, a key on a section's line, the old ``[a.b]`` spelling): ask git."""
    out: list[str] = []
    section: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.endswith("\\"):
            return None
        if stripped.startswith("["):
            m = _SECTION.fullmatch(line)
            if m is None:
                return None
            sub = m.group(2)
            if sub is not None:
                sub = re.sub(r"\\(.)", r"\1", sub)
            section = m.group(1).lower() + ("" if sub is None else "." + sub)
            continue
        m = _NAME.match(line)
        if m is None or section is None:
            return None
        out.append(f"{section}.{m.group(1).lower()}")
    return out


def git_dirs(wt: Path) -> tuple[Path, Path] | None:
    """``(git dir, common dir)`` of the worktree or clone ``wt``, from its files (a
    ``.git`` directory, or a ``.git`` file naming a linked worktree's git dir and its
    ``commondir``); None when they do not say it plainly."""
    dotgit = wt / ".git"
    if dotgit.is_file():
        text = dotgit.read_text()
        if not text.startswith("gitdir: "):
            return None
        gitdir = Path(text[len("gitdir: "):].strip())
        gitdir = gitdir if gitdir.is_absolute() else wt / gitdir
    elif dotgit.is_dir():
        gitdir = dotgit
    else:
        return None
    common = gitdir
    if (gitdir / "commondir").is_file():
        common = gitdir / (gitdir / "commondir").read_text().strip()
    return gitdir, common


def _find_git_dirs(where: Path) -> tuple[Path, Path] | None:
    """:func:`git_dirs` of the checkout holding ``where`` (it or a directory above it);
    None when its files do not say it plainly (ask git)."""
    here = where
    for _ in range(64):
        dotgit = here / ".git"
        if dotgit.is_dir() or dotgit.is_file():
            return git_dirs(here)
        if here.parent == here:
            return None
        here = here.parent
    return None


#: (file, scope) -> (stat signature, its keys or None).
_FILES: dict[str, tuple[tuple[int, int, int], list[str] | None]] = {}


def _file_keys(path: Path) -> list[str] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    sig = (st.st_ino, st.st_mtime_ns, st.st_size)
    got = _FILES.get(str(path))
    if got is not None and got[0] == sig:
        return got[1]
    with open(path, encoding="utf-8", errors="replace") as f:
        keys = parse_keys(f.read())
    if len(_FILES) > 4096:
        _FILES.clear()
    _FILES[str(path)] = (sig, keys)
    return keys


#: A ``COORD_*`` variable ending so is a secret (as coordination.trust.secrets says).
_SECRET_ENDS = ("_KEY", "_KEY_PREVIOUS", "_KEY_FILE", "_TOKEN", "_SECRET", "_PASSWORD", "_AUTH")


def _without_coord_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without coord's own secrets (see the module docstring)."""
    out: dict[str, str] = {}
    for k, v in env.items():
        if k.startswith("COORD_"):
            if k.endswith(_SECRET_ENDS) and k != "COORD_RUN_TOKEN":
                continue
            if k.endswith("_URL") and "@" in v and "://" in v:
                head, _, rest = v.partition("://")
                v = f"{head}://{rest.rpartition('@')[2]}"
        out[k] = v
    return out


def _controlled_env(base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_PAGER="cat", GIT_EDITOR=":", GIT_SEQUENCE_EDITOR=":")
    return env


def _list(where: str | Path | None, env: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """``git config --list --show-scope --show-origin`` as (scope, origin, key, value)."""
    _check_allowed()
    cmd = ["git", *(("-C", str(where)) if where is not None else ()), "config", "--null",
           "--list", "--show-scope", "--show-origin"]
    proc = subprocess.run(cmd, capture_output=True, env=_without_coord_secrets(env),
                          timeout=GIT_TIMEOUT,
                          stdin=subprocess.DEVNULL, cwd=None if where is not None else "/")
    if proc.returncode not in (0, 1):  # 1: no config at all
        text = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitRefused(f"{where}: its git config cannot be read "
                         f"({text[-1] if text else 'exit ' + str(proc.returncode)}): coord "
                         "runs no git there", key="", origin=str(where))
    parts = proc.stdout.decode(errors="surrogateescape").split("\0")
    out = []
    for scope, origin, entry in zip(parts[0::3], parts[1::3], parts[2::3]):
        key, _, value = entry.partition("\n")
        out.append((scope, origin.removeprefix("file:"), key, value))
    return out


def local_keys(where: str | Path, env: Mapping[str, str] | None = None
               ) -> list[tuple[str, str]]:
    """The keys of ``where``'s own git config (scopes ``local`` and ``worktree``,
    includes followed) as (key, file): from the files when they say it plainly,
    else asked of git (which runs nothing to list them)."""
    try:
        dirs = None if env and "GIT_DIR" in env or "GIT_DIR" in os.environ \
            else _find_git_dirs(Path(where))
        if dirs is not None:
            gitdir, common = dirs
            out: list[tuple[str, str]] = []
            for f in dict.fromkeys((common / "config", gitdir / "config.worktree",
                                    common / "config.worktree")):
                keys = _file_keys(f)
                if keys is None:
                    break
                out.extend((k, str(f)) for k in keys)
            else:
                return out
    except (OSError, UnicodeDecodeError):
        pass
    listed = _list(where, _controlled_env(env or os.environ))
    return [(k, origin) for scope, origin, k, _v in listed if scope in ("local", "worktree")]


#: signature of the user's config files and env -> their allowed (key, value) entries, and
#: whether they hold a conditional include (``includeIf``: then asked per checkout).
_GLOBALS: dict[tuple[object, ...], tuple[list[tuple[str, str]], bool]] = {}
#: (signature, real path of a checkout) -> the allowed entries as git reads them there.
_GLOBALS_AT: dict[tuple[tuple[object, ...], str], list[tuple[str, str]]] = {}


def _global_signature(env: Mapping[str, str]) -> tuple[object, ...]:
    home = env.get("HOME", "")
    xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"),
             "/etc/gitconfig", env.get("GIT_CONFIG_GLOBAL", ""), env.get("GIT_CONFIG_SYSTEM", "")]
    sig: list[object] = [env.get(k) for k in _ENV_KEYS]
    for f in files:
        try:
            st = os.stat(f) if f else None
        except OSError:
            st = None
        sig.append(None if st is None else (f, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(sig)


def _allowed_user_entries(listed: list[tuple[str, str, str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for scope, _o, k, v in listed
            if scope in ("system", "global") and classify(k) == "allow"]


def user_entries(env: Mapping[str, str] | None = None, where: str | Path | None = None
                 ) -> list[tuple[str, str]]:
    """The allowed entries of the user's global and system git config, in git's order
    (what a call gets back as command-scope config; the rest is dropped). ``where``: the
    checkout the call runs in, for a user config with conditional includes (``includeIf
    "gitdir:~/work/"``: a work address for the work checkouts), which git resolves
    there, as it would itself; without any, one listing serves every checkout."""
    env = env or os.environ
    sig = _global_signature(env)
    bare = {k: v for k, v in env.items() if k not in ("GIT_DIR", "GIT_COMMON_DIR")}
    got = _GLOBALS.get(sig)
    if got is None:
        listed = _list(None, bare)
        got = (_allowed_user_entries(listed),
               any(k.lower().startswith("includeif.") for _s, _o, k, _v in listed))
        if len(_GLOBALS) > 64:
            _GLOBALS.clear()
        _GLOBALS[sig] = got
    entries, conditional = got
    if not conditional or where is None:
        return entries
    at = (sig, os.path.realpath(where))
    if at not in _GLOBALS_AT:
        try:  # (listing config runs nothing; a checkout git cannot read: as from "/")
            _GLOBALS_AT[at] = _allowed_user_entries(_list(where, bare))
        except GitRefused:
            return entries
        if len(_GLOBALS_AT) > 4096:
            _GLOBALS_AT.clear()
    return _GLOBALS_AT[at]


def refusal(where: str | Path, key: str, origin: str, kind: str) -> str:
    """The sentence a refused call says: the key, its file, why, and how to remove it."""
    return (f"{where}: its own git config sets {key} ({origin}), which {_WHY[kind]}: coord "
            f"runs no git there while it is set; remove it (git -C {where} config --unset-all "
            f"{key}), or give coord what it needs in its own environment (GIT_SSH_COMMAND, "
            "GIT_CONFIG_COUNT/KEY/VALUE)")


def plan(where: str | Path | None, *, network: bool, env: Mapping[str, str] | None = None,
         check: bool = True) -> list[tuple[str, str]]:
    """The command-scope config a call in ``where`` runs with (after the user's
    allowed entries, the neutralised keys): raises :class:`GitRefused` for a key of
    ``where``'s own config that is refused (``network``: and one of :data:`NETWORK`).

    A key ``where``'s own config sets is not handed back from the user's config: as
    command-scope config it would outrank the repository's (git reads the local file
    over the global one: a per-repository ``user.email`` is the identity there).
    ``check=False`` (``git config``, which runs nothing): only that, nothing refused
    or neutralised."""
    entries = list(user_entries(env, where))
    local: list[tuple[str, str]] = []
    if where is not None:
        try:
            local = local_keys(where, env)
        except GitRefused:
            if check:
                raise
    own = {k.lower() for k, _f in local}
    entries = [(k, v) for k, v in entries if k.lower() not in own or _multi(k)]
    if not check:
        return entries
    for key, origin in local:
        kind = classify(key)
        if kind == "refuse" or (kind == "network" and network):
            raise GitRefused(refusal(where or "", key, origin, kind), key=key, origin=origin)
        if kind == "neutral":
            entries.append((key, neutral_value(key) or ""))
            if _glob(key.lower(), "filter.*.*"):
                entries.append((key.rsplit(".", 1)[0] + ".required", "false"))
    return entries


def _multi(key: str) -> bool:
    """Keys git reads every value of (the user's and the repository's add up)."""
    return _matches(key, ("safe.directory", "remote.*.fetch", "remote.*.push", "*.hiderefs"))


#: Why no git may run in this context (a request of the web view by nobody signed in).
_FORBIDDEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("coord_no_git",
                                                                       default=None)


@contextlib.contextmanager
def forbidden(why: str) -> Iterator[None]:
    """No git process starts inside: :func:`run` raises :class:`GitRefused` saying
    ``why`` (the web view serves a stranger's request so: it runs nothing in a repo)."""
    token = _FORBIDDEN.set(why)
    try:
        yield
    finally:
        _FORBIDDEN.reset(token)


def refusing() -> str | None:
    """Why no git process may start here (inside :func:`forbidden`); None: git may run.
    A reader that can do without git asks, and leaves out what only git could tell."""
    return _FORBIDDEN.get()


def _check_allowed() -> None:
    why = _FORBIDDEN.get()
    if why:
        raise GitRefused(f"coord runs no git here: {why}", key="", origin="")


def _subcommand(args: Sequence[str]) -> str:
    """The git subcommand ``args`` run (after ``-c KEY=VALUE`` and the like)."""
    it = iter(args)
    for a in it:
        if a in ("-c", "-C", "--git-dir", "--work-tree", "--namespace"):
            next(it, None)
        elif not a.startswith("-"):
            return a
    return ""


def run(args: Sequence[str], *, repo: str | Path | None = None, cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None, trusted: bool = False, hooks: bool = False,
        network: bool | None = None, timeout: float = GIT_TIMEOUT, kill_tree: bool = False,
        **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``git [-C repo] ARGS`` (in ``cwd``) under coord's allow-list; the finished
    process (``subprocess.run``'s ``kwargs``: ``capture_output``, ``text``, ``input``...).
    ``trusted``: the repository's own config and hooks are trusted (``land_hooks``);
    ``hooks``: hooks may run (only with ``trusted``). ``network``: the call talks to a
    remote (default: by its subcommand). ``kill_tree``: ended early (timeout, Ctrl-C,
    SIGTERM), git's own children are killed with it (:func:`_run_tree`). Raises
    :class:`GitRefused` (nothing run)."""
    _check_allowed()
    base = _without_coord_secrets(os.environ)
    if env:
        base.update(env)
    sub = _subcommand(args)
    talks = network if network is not None else (
        sub in NETWORK_COMMANDS and not (sub == "ls-remote" and "--get-url" in args))
    where = repo if repo is not None else (cwd if cwd is not None else os.getcwd())
    fixed: list[str] = []
    for k, v in SAFE if trusted else ALWAYS:
        fixed += ["-c", f"{k}={v}"]
    if trusted:
        full = base
        if not hooks:
            fixed += ["-c", "=".join(NO_HOOKS)]
    else:
        # `git config` reads and writes config files and runs nothing: never refused
        # (it is how a refused key is listed and removed), and reads the repository's
        # own keys over the user's, as git would
        local = None if sub == "clone" else where
        extra = plan(local, network=talks, env=base, check=sub != "config")
        extra.append(NO_HOOKS)
        full = _controlled_env(base)
        n = int(full.get("GIT_CONFIG_COUNT", "0") or 0)
        for i, (k, v) in enumerate(extra, start=n):
            full[f"GIT_CONFIG_KEY_{i}"], full[f"GIT_CONFIG_VALUE_{i}"] = k, v
        full["GIT_CONFIG_COUNT"] = str(n + len(extra))
    cmd = ["git", *fixed, *(("-C", str(repo)) if repo is not None else ()), *args]
    if "input" not in kwargs and "stdin" not in kwargs:
        kwargs["stdin"] = subprocess.DEVNULL
    if kill_tree:
        return _run_tree(cmd, env=full, timeout=timeout, cwd=cwd, **kwargs)
    return subprocess.run(cmd, env=full, timeout=timeout, cwd=cwd, **kwargs)


def _run_tree(cmd: list[str], *, timeout: float, capture_output: bool = False,
              input: Any = None, check: bool = False, **kwargs: Any
              ) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run``, but a call ended early (its timeout, Ctrl-C, SIGTERM) kills
    git's children with it: ``git clone`` over ssh leaves its ssh running when only git
    is killed (git does not stop it), a process nobody waits for. They are found before
    git dies (then they are init's), through ``/proc`` (elsewhere git alone is killed):
    :func:`_kill_tree`."""
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with subprocess.Popen(cmd, **kwargs) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except BaseException:
            _kill_tree(proc.pid)
            proc.wait()
            raise
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it (Linux's ``/proc``; elsewhere ``pid``
    alone). Each is stopped as it is found, a parent before its children, and none is
    killed before all are: git starts its ssh again when the first one dies (the first
    is its probe of the ssh's kind), and killed children first, on a busy machine, git
    had started the second before its own SIGKILL came, an ssh left running, nobody's."""
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        _stop(p)
        found.append(p)
        todo += _children(p)
    for p in found:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)


def _stop(pid: int, wait: float = 0.1) -> None:
    """SIGSTOP ``pid``, and wait until it has stopped (``wait`` s at most): a process
    still on its way to stopping could start one more child after its children are read."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        return
    end = time.monotonic() + wait
    while time.monotonic() < end:
        now = processes.state(pid)
        if now is None or now in ("T", "t", "Z", "X"):  # stopped, or gone (or no /proc)
            return
        time.sleep(0.001)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started and not yet reaped, from ``/proc`` ([] elsewhere)."""
    kids: list[int] = []
    with contextlib.suppress(OSError, ValueError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(k) for k in fh.read().split()]
    return kids
