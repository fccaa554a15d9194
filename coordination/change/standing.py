"""Where a change stands against its remotes: each repo's base on its remote now, and a
landing or revert of the change already made (one wording for ``change land
--dry-run`` and ``change status``, applied by the landing rule).

``land --dry-run`` asks every remote (``git ls-remote``); ``change status`` must say
the same without a network round trip per repo (it is read for hundreds of repos, and
the web view reads it on every page): a remote that is a repository on this machine (a
path, a ``file://`` URL, or a remote whose ``url`` is one, as the checkout's git config
says it plainly) is read from the remote's own files, no process; any other is asked
only when the caller says so (``coord change status --ask-remotes``), else reported
*not checked*, never assumed unchanged. A remote whose URL the checkout's own git
config rewrites (``url.<base>.insteadOf``: a file a todo can write) is neither read
nor asked where the rule sends it: *not checked*, naming the rule and how to remove it
(:func:`coordination.change.git.rewrite_refusal`).
"""

from __future__ import annotations

import functools
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coordination.change import git as g
from coordination.change.model import ChangePlan, Target
from coordination.runtime.changes import ChangeState, RepoRecord
from coordination.status import ChangeState as CS
from coordination.status import StepState


@dataclass(frozen=True)
class Base:
    """A repo's base branch on its remote, as read now."""

    sha: str | None  # None: no such branch (checked), or not checked
    checked: bool
    how: str  # "files" | "ls-remote" | why it was not checked

    def document(self) -> dict[str, object]:
        return {"sha": self.sha, "checked": self.checked, "how": self.how}


_SCP = re.compile(r"^[^/:]+:")  # user@host:path (git's scp-like syntax)
#: A remote's name as the catalog may give it (else a path or a URL).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _local_path(url: str, checkout: Path) -> Path | None:
    """The directory a remote URL names when it is on this machine; None: a network
    remote (or a transport git would hand to a helper)."""
    if url.startswith("file://"):
        return Path(url[len("file://"):])
    if "://" in url or "::" in url or _SCP.match(url):
        return None
    p = Path(url).expanduser()
    return p if p.is_absolute() else checkout / p


@functools.lru_cache(maxsize=1)
def _others_plain() -> bool:
    """Do the user's and the system's git configs leave remote URLs as written (no
    ``insteadOf`` rewriting, no includes, no config from the environment)? Read once
    per process."""
    if any(k.startswith("GIT_CONFIG") for k in os.environ):
        return False
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    for f in (home / ".gitconfig", xdg / "git" / "config", Path("/etc/gitconfig")):
        try:
            text = f.read_text().lower()
        except OSError:
            continue
        if "insteadof" in text or "[include" in text:
            return False
    return True


_SECTION = re.compile(r'^\s*\[\s*remote\s+"([^"\\]*)"\s*\]\s*$', re.IGNORECASE)
_URL = re.compile(r"^\s*url\s*=\s*(.*?)\s*$", re.IGNORECASE)


#: :func:`_url_from_files`: the checkout's config plainly names no such remote.
NO_REMOTE = ""


def _url_from_files(checkout: Path, remote: str) -> str | None:
    """``remote.NAME.url`` as the checkout's own config says it, when it says it
    plainly (one url, no quoting, escapes or comments on its line, no includes or URL
    rewriting anywhere; :data:`NO_REMOTE`: no such remote); None: ask git."""
    dirs = g.git_dirs(checkout)
    if dirs is None or not _others_plain():
        return None
    try:
        text = g.config_text(dirs[1] / "config")
    except (OSError, UnicodeDecodeError):
        return None
    low = text.lower()
    if "insteadof" in low or "[include" in low:
        return None
    urls: list[str] = []
    inside = seen = False
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            m = _SECTION.match(line)
            inside = bool(m and m.group(1) == remote)
            seen = seen or inside or f'"{remote.lower()}"' in line.lower()
            continue
        if inside:
            u = _URL.match(line)
            if u:
                urls.append(u.group(1))
    if not seen:
        return NO_REMOTE
    if len(urls) != 1 or any(c in urls[0] for c in '"\\;#'):
        return None
    return urls[0]


def _remote_git_dir(path: Path) -> Path | None:
    """The git directory of the repository at ``path`` (bare, or a clone's ``.git``)
    whose refs are files (not a reftable); None: ask git."""
    for d in (path / ".git", path, path.with_name(path.name + ".git")):
        if (d / "HEAD").is_file() and (d / "refs").is_dir() and (d / "objects").is_dir():
            return None if (d / "reftable").exists() else d
    return None


def read_base(t: Target, *, ask: bool) -> Base:
    """``t``'s base branch on its remote now: from the remote's files when it is a
    repository on this machine, else asked (``git ls-remote``) only with ``ask``."""
    checkout = Path(t.checkout)
    ref = f"refs/heads/{t.base}"
    wrong = checkout.is_dir() and g.remote_refusal(t.repo, t.checkout, t.remote, t.url,
                                                   t.checkout)
    if wrong:  # its remote's files or git would answer for another repository
        return Base(None, False, f"not checked: {wrong}")
    url: str | None = t.remote if not _NAME.match(t.remote) else _url_from_files(checkout,
                                                                                 t.remote)
    if url == NO_REMOTE and not (checkout / t.remote).exists():
        return Base(None, False, f"not checked: {t.checkout} has no remote {t.remote}")
    if url is None or url == NO_REMOTE:
        rewritten = g.rewrite_refusal(t.repo, t.checkout, t.remote)
        if rewritten:  # the repo's own config would have coord read elsewhere
            return Base(None, False, f"not checked: {rewritten}")
        try:  # git's own reading of the remote's URL: a local process
            url = g.git(checkout, "ls-remote", "--get-url", "--end-of-options", t.remote)
        except g.GitError:
            url = None
    where = _local_path(url, checkout) if url else None
    if where is None and ask and not t.land_hooks:
        untrusted = g.untrusted_git(t.repo, t.checkout, t.checkout)
        if untrusted:  # asking runs git there: not
            return Base(None, False, f"not asked: {untrusted}")
    if where is not None:
        gitdir = _remote_git_dir(where)
        if gitdir is not None:
            try:
                sha = g.read_ref(gitdir, ref)
                loose = (gitdir / ref).exists()
            except (OSError, UnicodeDecodeError):
                sha, loose = None, True
            if sha is not None or not loose:  # (neither loose nor packed: it is gone)
                return Base(sha, True, "files")
        elif not where.exists():
            return Base(None, False, f"not checked: {t.remote} ({where}) does not exist")
        ask = True  # on this machine: asking git costs no network
    if not ask:
        return Base(None, False, f"not asked: {t.remote} is a network remote ({url or '?'}); "
                    "coord change status --ask-remotes asks it, as land --dry-run does")
    try:
        return Base(g.remote_sha(t.checkout, t.remote, t.base, hooks=t.land_hooks), True,
                    "ls-remote")
    except g.GitError as exc:
        return Base(None, False, f"not checked: {exc}")


def read_bases(cp: ChangePlan, st: ChangeState, *, ask: bool = False) -> dict[str, Base]:
    """:func:`read_base` of every repo of the change that has a candidate (asked ones
    several at once)."""
    repos = [r for r in cp.targets if r in st.repos]
    if not ask:  # files (a remote on this machine): threads would only wait for each other
        return {r: read_base(cp.targets[r], ask=False) for r in repos}
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(repos)))) as pool:
        read = list(pool.map(lambda r: read_base(cp.targets[r], ask=True), repos))
    return dict(zip(repos, read))


def base_problem(repo: str, t: Target, rec: RepoRecord, candidate: str,
                 now: str | None) -> tuple[str | None, bool]:
    """What the remote's base ``now`` means for landing ``candidate`` (made on
    ``rec.base_sha``): ``(why it cannot land as it is, or None; the base moved but the
    candidate contains it)``, in the words ``land --dry-run`` says it."""
    if now is None:
        return f"{repo}: its base {t.base} is gone from {t.remote}", False
    if now == candidate:
        if candidate == rec.base_sha:
            return None, False  # no commit on the branch: nothing to land (prepare says so)
        return f"{repo}: already landed: {t.remote}/{t.base} is its candidate {now[:12]}", False
    if now == rec.base_sha:
        return None, False
    wt = rec.worktree
    if g.has(wt, now) and g.is_ancestor(wt, now, candidate):
        return None, True
    return (f"{repo}: {t.remote}/{t.base} moved ({rec.base_sha[:12]} -> {now[:12]}): "
            "landing would merge it into the branch and verify again"), False


def _landed_set(st: ChangeState) -> dict[str, str] | None:
    """The candidates the change's last landing landed (its manifest's), None: unread."""
    try:
        m = json.loads(st.manifest or "")
        return {str(e["repo"]): str(e["candidate"]) for e in m["repos"]}
    except (ValueError, KeyError, TypeError):
        return None


def ended(cp: ChangePlan, st: ChangeState, now: dict[str, str | None]) -> str | None:
    """Why the change cannot land because it landed already, or was reverted, on the
    candidates it has now (its last landing's manifest's); None: it did not, or its
    candidates moved since (more commits on the branch after the landing; the revert
    merged into the branch: those are the base check's and the verify todos' to say).
    A landing whose undo reverted nothing (the first push refused) is no reason: the
    base check says whether the remote moved."""
    if st.state not in (CS.landed, CS.reverted):
        return None
    landed = _landed_set(st)
    same = landed is None or all(now.get(r) == sha for r, sha in landed.items())
    if not same:
        return None
    if st.state == CS.landed:
        shas = ", ".join(f"{r} {(s.landed or '')[:12]}" for r, s in st.steps.items()
                         if s.state == StepState.landed)
        return (f"{cp.plan} is landed" + (f" ({shas})" if shas else "")
                + f": nothing to land; coord change revert {cp.plan} takes it out")
    out = [r for r, s in st.steps.items() if s.state == StepState.reverted]
    if not out:
        return None
    return (f"{cp.plan} was reverted" + (f" ({st.reason})" if st.reason else "")
            + f"; its revert is on {', '.join(sorted(out))}: landing it again (coord change "
            f"land {cp.plan}) first merges the revert into the branch and takes it back out "
            "there, which makes the candidates new and unverified: verify them, then land")
