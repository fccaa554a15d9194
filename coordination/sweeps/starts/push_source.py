"""Where a pushed repo is fetched from and where its commit status goes, as the catalog
says (:class:`Source`): what a push's spec is checked against by the process that
fetches (``workers/pushes.py``) or posts (:mod:`coordination.sweeps.notices.commit_status`).

**Where the commit is fetched from and where its status goes** are never the spec's to
say. Without a signing key (a supported deployment) anyone who can write to Redis can
rewrite a stored spec: its forge's ``api`` and ``token_env`` would send the token (of
any variable the poster holds) to a host of the writer's, its ``url``/``remote`` would
have a worker fetch, and run todos on, a repository of the writer's. So the process
that posts or fetches reads the repo's ``forge:``, ``remote:`` and ``url:`` from its
own catalog file (:func:`own_source`: ``Runtime.own_catalog``, the file it was started
with, never a path from Redis), and the spec's copies are only checked against them
(:func:`differences`). When they differ, nothing is posted and nothing is fetched, and
the difference is said, naming the fields: refused rather than carried out with the
catalog's values, because a spec that says another forge or remote than the catalog
is a spec someone changed (or a catalog edited since the start): nothing else it says
(the commit, the sweep's result) is worth vouching for on the forge, nor running
todos on. A process with no catalog of its own, a repo no longer in it, or a repo with
no ``forge:`` there, posts and fetches nothing either (said).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.sweeps.spec import PushSpec

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

#: The fields a worker checks before it fetches the pushed commit (where from).
FETCH_FIELDS = ("remote", "url")


@dataclass(frozen=True)
class Source:
    """Where a pushed repo is fetched from (``remote``, ``url``) and its forge (its
    ``ForgeSpec``'s fields, every default filled in: names, never a token; None: no
    ``forge:``), as a catalog says."""

    remote: str
    url: str | None
    forge: dict[str, str | None] | None


def source_of(catalog: Catalog, name: str) -> Source | None:
    """Repo ``name``'s :class:`Source` in ``catalog`` (None: no such repo). A ``forge:``
    that fails its check raises :class:`~coordination.forge.ForgeConfigError`."""
    repo = next((r for r in catalog.repos if r.name == name), None)
    if repo is None:
        return None
    forge: dict[str, str | None] | None = None
    if repo.forge is not None:
        from coordination.forge import spec_of  # lazy: a push's start or post only

        forge = {k: (str(v) if v is not None else None)
                 for k, v in asdict(spec_of(repo.forge, repo=name)).items()}
    return Source(repo.remote or "origin", repo.url, forge)


def own_source(catalog: Path | None, name: str) -> Source | str:
    """Repo ``name``'s :class:`Source` as this process's own catalog file ``catalog``
    says it now; a string: why there is none (no catalog at hand, one that cannot be
    read, no such repo in it). Never a value read from Redis."""
    if catalog is None:
        return "this process was given no catalog of its own"
    # lazy: the catalog's store, for a push's post or fetch only (cached by its digest)
    from coordination.catalog.file.store import CatalogStore

    try:
        src = source_of(CatalogStore(catalog).load(), name)
    except Exception as exc:  # noqa: BLE001 - any catalog that cannot be read: refused
        return f"its catalog {catalog} cannot be read ({type(exc).__name__}: {exc})"
    if src is None:
        return f"repo {name!r} is not in its catalog {catalog}"
    return src


def differences(push: PushSpec, src: Source, fields: Iterable[str]) -> list[str]:
    """Each of ``fields`` (``remote``, ``url``, ``forge``: each of the forge's fields)
    where ``push`` says otherwise than ``src``, named with both values (``url (spec
    'x', catalog 'y')``, ``forge.api (...)``); empty: they agree."""
    out: list[str] = []

    def differ(name: str, spec: object, catalog: object) -> None:
        if spec != catalog:
            out.append(f"{name} (spec {_short(spec)}, catalog {_short(catalog)})")

    for f in fields:
        if f == "forge":
            theirs, ours = push.get("forge") or {}, src.forge or {}
            if not isinstance(theirs, dict):
                differ("forge", theirs, ours)
                continue
            for k in sorted(set(theirs) | set(ours)):
                differ(f"forge.{k}", theirs.get(k), ours.get(k))
        else:
            differ(f, push.get(f), getattr(src, f))
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
