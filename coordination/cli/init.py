"""`coord init`: write a catalog from the git checkouts of a fleet; `--check`: drift.

Where the catalog goes: ``-f``/``$COORD_ECOSYSTEM`` when given; else, with one DIR,
``DIR/ecosystem.yaml`` (beside the checkouts); else ``./ecosystem.yaml``. A new
catalog starts with the ``# yaml-language-server: $schema=.coord/schema.json`` line
and the schema is written there; an existing one is added to. Every write is one
audited edit (`coord audit`).

The DIRs scanned are remembered beside the catalog (``.coord/fleet.json``, see
:mod:`coordination.fleet.roots`): without DIRs, ``coord init`` and ``--check`` scan
those again, with the depth they were scanned with.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coordination.catalog.file.beside import Beside
from coordination.fleet import clones
from coordination.fleet.discovery import Discovery, is_checkout, is_url, read_list
from coordination.fleet.drift import compare
from coordination.fleet.roots import remember, remembered, roots_file, trusted
from coordination.catalog.rules.git_rules import git_remote
from coordination.cli.context import Context
from coordination.cli.render import json_and_context, plural, print_json
from coordination.cli.render import say as _say_line
from coordination.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    from coordination.catalog.edits.fleet_edits import FleetEdits
    from coordination.fleet.drift import Fleet
    from coordination.catalog.models import Catalog
    from coordination.catalog.edits.fleet_edits import FleetApplied, FleetEdit

CATALOG_NAME = "ecosystem.yaml"
CLONE_TIMEOUT = clones.CLONE_TIMEOUT


def escape(text: str) -> str:
    """``text`` with rich's markup escaped, for a line of the report printed as text."""
    # lazy: `init --json` and `init --check --json` (CI, scripts) print no markup, and
    # rich is a tenth of their start-up
    from rich.markup import escape as markup_escape

    return markup_escape(text)


def say(text: str) -> None:
    """One line of init's report. A directory may be named with a newline or a tab in
    it (a repo's path, a manifest's name): shown escaped (``\\n``), never as a second
    line that would pass for a line of the report."""
    _say_line(text.replace("\n", "\\n").replace("\t", "\\t"))


def _catalog_file(obj: Context, dirs: tuple[Path, ...]) -> Path:
    root = click.get_current_context().find_root()
    explicit = root.params.get("file") is not None or bool(os.environ.get("COORD_ECOSYSTEM"))
    if not explicit and len(dirs) == 1:
        return dirs[0] / CATALOG_NAME
    return obj.file


def _from_file(file: Path, into: Path, dry_run: bool
               ) -> tuple[list[Path], list[dict[str, str]], clones.Cloned]:
    """The checkouts ``file`` lists (paths, and clone URLs cloned under ``into``), what
    happened to each URL, and the paths cloned now (removed again if init fails after).
    Every entry is checked, and every clone's place, before anything is cloned."""
    try:
        entries = read_list(file)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--from {file}: cannot read it: {exc}") from None
    paths: list[Path] = []
    urls: list[str] = []
    for entry in entries:
        if is_url(entry):
            try:
                git_remote(entry)
            except ValueError as exc:
                raise UsageError(f"--from: cannot clone {entry!r}: {exc}") from None
            urls.append(entry)
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else file.resolve().parent / path
        if not is_checkout(path):
            raise UsageError(f"--from {file}: {entry} is not a git checkout (no {path}/.git)",
                             hint="list checkouts' directories or clone URLs, one a line")
        paths.append(path)
    targets = clones.plan(urls, into)
    cloned = clones.Cloned([], []) if dry_run else clones.clone(targets, into, CLONE_TIMEOUT)
    done = []
    for t in targets:
        what = "present" if t.present else "would clone" if dry_run else "cloned"
        done.append({"url": t.url, "path": str(t.path), "result": what})
        if what != "would clone":
            paths.append(t.path)
    return paths, done, cloned


def _read_catalog(file: Path) -> Catalog | None:
    """The catalog as written, None when there is none: a view of the validated cache
    when it is warm (no pydantic, no models: `init --check` in CI), templates
    (``for_each:``) and all, else loaded."""
    if not file.exists():
        return None
    # lazy: the cache's reader, once the checkouts are being read
    from coordination.catalog.reads.cached import fleet_catalog

    return fleet_catalog(file)


def _ready_to_write() -> None:
    """Import what writing the catalog takes (the models, the store, the edit), while
    the checkouts are read in other processes: the import is then no extra time on a
    machine with a core to spare."""
    # lazy: a `--check` with nothing to write never loads them
    from coordination.catalog.edits import fleet_edits  # noqa: F401
    from coordination.catalog.file import fresh, store  # noqa: F401  # lazy: as the import above


def _likely_to_write(catalog: Catalog | None, found: list[Path], held: list[Path]) -> bool:
    """Will this `coord init` (no --check) write? Surely to a new catalog, and most
    likely when a checkout found (by the walk, or named by --from) is none of the
    catalog's repos (``held``: where their checkouts are). A run over a fleet the
    catalog already holds most often finds nothing new: it imports the writer (some
    0.3 s of CPU) only if it has something to write after all (a dependency a manifest
    added), once the checkouts are read."""
    if catalog is None:
        return True
    known = {os.path.normpath(p) for p in held}
    return any(os.path.normpath(p) not in known for p in found)


@click.command()
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--from", "from_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A file listing checkouts' paths or clone URLs, one a line.")
@click.option("--into", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where --from's URLs are cloned (default: the catalog's directory).")
@click.option("--depth", type=click.IntRange(0, 20), default=3, show_default=True,
              help="How many directories below each DIR to look for checkouts (without "
              "DIRs: the depth the remembered ones were scanned with).")
@click.option("--check", is_flag=True,
              help="Compare the catalog with the checkouts now; exit 1 when they drifted.")
@click.option("--apply", "apply_", is_flag=True,
              help="With --check: take the changes into the catalog (one audited edit).")
@click.option("--prune", is_flag=True,
              help="With --check --apply: also remove repos whose checkout is gone.")
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
@json_and_context
def init(obj: Context, dirs: tuple[Path, ...], from_file: Path | None, into: Path | None,
         depth: int, check: bool, apply_: bool, prune: bool, dry_run: bool,
         as_json: bool) -> None:
    """Write a catalog from the git checkouts under DIRs, with the dependencies their
    manifests name; or, with --check, say how the catalog drifted from them. Without
    DIRs: the directories (and depth) earlier `coord init DIR...` runs scanned, kept in
    .coord/fleet.json beside the catalog; else the catalog's directory.

    \b
    Examples:
      coord init ~/src                       # writes ~/src/ecosystem.yaml
      coord init --from repos.txt --into ~/src
      coord init --check --json              # exit 1 when the fleet moved
      coord init --check --apply --prune
    """
    if (apply_ or prune) and not check:
        raise UsageError("--apply and --prune go with --check",
                         hint="coord init --check --apply [--prune]")
    if prune and not apply_:
        raise UsageError("--prune removes repos only with --apply",
                         hint="coord init --check --apply --prune")
    file = _catalog_file(obj, dirs)
    base_dir = file.resolve().parent
    if check and not file.exists():
        raise UsageError(f"{file}: no catalog to check", hint="write one with `coord init DIR`")
    extra: list[Path] = []
    cloned: list[dict[str, str]] = []
    made = clones.Cloned([], [])
    if from_file is not None:
        extra, cloned, made = _from_file(from_file, (into or base_dir).resolve(), dry_run)
    try:
        _init_fleet(obj, file, dirs, from_file, extra, cloned, depth,
                    (check, apply_, prune, dry_run, as_json))
    except BaseException:
        # Nothing partial: what this run cloned goes when it writes no catalog.
        clones.remove(made)
        raise


def _init_fleet(obj: Context, file: Path, dirs: tuple[Path, ...], from_file: Path | None,
                extra: list[Path], cloned: list[dict[str, str]], depth: int,
                flags: tuple[bool, bool, bool, bool, bool]) -> None:
    """Everything `coord init` does after `--from`'s clones: scan, compare, write or
    report. The checkouts are read in other processes from the walk on, while this one
    reads the catalog and imports what it writes with."""
    check, apply_, prune, dry_run, as_json = flags
    base_dir = file.resolve().parent
    roots, notes = _roots(dirs, from_file, base_dir, file)
    if not dirs and click.get_current_context().get_parameter_source("depth") \
            == click.core.ParameterSource.DEFAULT:
        kept = remembered(base_dir)[1]  # the depth the remembered roots were scanned with
        depth = depth if kept is None else kept
    found = Discovery.start(roots, depth)
    try:
        catalog = _read_catalog(file)
        if check and catalog is None:  # gone since it was looked for
            raise UsageError(f"{file}: no catalog to check",
                             hint="write one with `coord init DIR`")
        present: list[str] = []
        named = list(extra)  # --from's checkouts
        held: list[Path] = []
        if catalog is not None:  # the catalog's repos are read wherever they are
            for r in catalog.repos:
                # base_dir is resolved (the catalog file's, resolved): not again a repo
                if is_checkout(p := r.checkout(base_dir, resolved=True)):  # a linked worktree too
                    extra.append(p)
                    held.append(p)
                    present.append(r.name)  # never "gone" while its checkout is there
        if not check and not dry_run and _likely_to_write(catalog, [*found.tops, *named], held):
            _ready_to_write()
        checkouts = found.checkouts(extra)
    finally:
        found.close()
    fleet = compare(catalog, base_dir, checkouts, present)
    fleet.notes[:0] = notes
    if not check and fleet.repos == 0 and not any(c["result"] == "would clone" for c in cloned):
        raise OperationFailed(_nothing_found(roots, depth, from_file, notes),
                              hint="name the directory that holds the checkouts, a larger "
                              "--depth, or --from FILE listing them")
    if check:
        assert catalog is not None  # --check without one is refused above
        _check(obj, file, catalog, fleet, apply_ and not dry_run, prune, as_json, roots)
        return
    applied: FleetApplied | None = None
    created = catalog is None
    if not dry_run and (created or fleet.added or fleet.deps_added):
        applied = _write(file, created, {"repos": fleet.added, "dependencies": fleet.deps_added})
    if dirs and not dry_run:  # for --check (and init) without DIRs, later
        remember(base_dir, dirs, depth, file)
    doc = {"catalog": str(file), "created": created and not dry_run, "dry_run": dry_run,
           "roots": [str(r) for r in roots], "cloned": cloned, **fleet.to_dict(),
           "applied": applied}
    if as_json:
        print_json(doc)
        return
    _say_init(file, fleet, created, dry_run, applied, cloned)


def _roots(dirs: tuple[Path, ...], from_file: Path | None, base_dir: Path, file: Path
           ) -> tuple[list[Path], list[str]]:
    """The directories to scan, and notes on remembered ones that are gone or that the
    file may not aim at (:func:`coordination.fleet.roots.trusted`): DIRs when given;
    else those an earlier `coord init DIR...` remembered; else the catalog's directory
    (none with --from alone)."""
    if dirs:
        return list(dirs), []
    if from_file is not None:
        return [], []
    if not remembered(base_dir)[0]:
        return [base_dir], []
    kept, _, notes = trusted(base_dir, file)
    there = [r for r in kept if r.is_dir()]
    notes += [f"scan root {r} (remembered in {roots_file(base_dir)}) is not a directory "
              "any more: not scanned" for r in kept if r not in there]
    return there, notes


def _nothing_found(roots: list[Path], depth: int, from_file: Path | None,
                   notes: list[str]) -> str:
    """Why `coord init` writes nothing: where it looked, and how deep."""
    where = []
    if roots:
        where.append(f"under {', '.join(str(r) for r in roots)} (depth {depth})")
    if from_file is not None:
        where.append(f"listed in {from_file}")
    gone = f" ({'; '.join(notes)})" if notes else ""
    return (f"no git checkouts found {' or '.join(where) or 'anywhere'}{gone}: no catalog "
            "written")


def _manager(file: Path) -> FleetEdits:
    """The manager's fleet part alone: `coord init` makes no other edit, and the manager's
    other parts cost a small fleet's init a tenth of its time to import."""
    # lazy: the editor (ruamel, the audit log) only for a run that writes; `init --check`
    # with no drift never loads it
    from coordination.catalog.edits.fleet_edits import FleetEdits
    from coordination.catalog.file.store import CatalogStore  # lazy: as above

    return FleetEdits(CatalogStore(file))


def _write(file: Path, created: bool, edit: FleetEdit) -> FleetApplied:
    """Apply ``edit`` to the catalog, writing a new one first when ``created``: a new
    catalog the edit then refuses is removed again (with the schema written beside
    it), so a refusal leaves nothing behind, as its message says."""
    if not created:
        return _manager(file).apply(edit)
    # lazy: the schema is generated from the models, for a new catalog only
    from coordination.cli.schema import HEADER, write_schema

    made = [d for d in (file.parent, file.parent / ".coord") if not d.exists()]
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(file, "x", encoding="utf-8") as f:
            f.write(HEADER + "version: 1\n")
    except FileExistsError:
        raise UsageError(f"{file} appeared while coord init ran; nothing was added",
                         hint="run coord init again to add to it") from None
    schema = Beside.of(file).schema
    had_schema = schema.exists()
    try:
        write_schema(file.resolve().parent)
        return _manager(file).apply(edit)
    except BaseException:
        file.unlink(missing_ok=True)
        if not had_schema:
            schema.remove()
        for d in reversed(made):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _new_tags(catalog: Catalog, fleet: Fleet, prune: bool) -> dict[str, list[str]]:
    """Repo -> its tags once refreshed: the catalog's (in their order), those its files
    call for now added, and (``prune``) coord's own whose files are gone removed."""
    out: dict[str, list[str]] = {}
    for t in fleet.tags:
        if not t["added"] and not (prune and t["stale"]):
            continue
        repo = catalog.repo(t["repo"])
        old = list(repo.tags) if repo is not None else []
        out[t["repo"]] = [x for x in old if not (prune and x in t["stale"])] + t["added"]
    return out


def _check(obj: Context, file: Path, catalog: Catalog, fleet: Fleet, apply_: bool,
           prune: bool, as_json: bool, roots: list[Path]) -> None:
    applied: FleetApplied | None = None
    edit: FleetEdit = {
        "repos": fleet.added, "dependencies": fleet.deps_added,
        # A hand-edited one (notes, a validation) only with --prune.
        "remove_dependencies": [d["id"] for d in fleet.deps_lost
                                if prune or not d["hand_edited"]],
        # indirect: false is no key at all (the catalog's default).
        "update_dependencies": {
            c["id"]: {k: (None if k == "indirect" and not v[1] else v[1])
                      for k, v in c["changes"].items()} for c in fleet.deps_changed},
        # A line that moved alone is no drift, but --apply refreshes it quietly.
        "move_dependencies": {id_: dict(src) for id_, src in fleet.deps_moved.items()},
        "default_branches": {b["repo"]: b["now"] for b in fleet.branches},
        "urls": {u["repo"]: u["now"] for u in fleet.urls},
        "tags": _new_tags(catalog, fleet, prune),
        "prune": fleet.gone if prune else [],
    }
    if apply_ and any(edit.values()):
        applied = _manager(file).apply(edit)
    left = _left(fleet, applied, prune) if apply_ else []
    if as_json:
        print_json({"catalog": str(file), "roots": [str(r) for r in roots], **fleet.to_dict(),
                    "applied": applied, **({"left": left} if apply_ else {})})
    else:
        _say_drift(file, fleet, applied, apply_, prune)
    if fleet.drifted and not apply_:
        n = len(fleet.unreadable)
        unread = f"{n} manifest{'s' if n != 1 else ''} cannot be read"
        if not _takeable(fleet):
            raise OperationFailed(f"{file}: {unread}, so the catalog cannot be checked "
                                  "against what they say",
                                  hint="fix each (named above, with its line), then run "
                                  "coord init --check again")
        raise OperationFailed(f"{file}: the catalog drifted from the checkouts"
                              + (f"; and {unread}" if n else ""),
                              hint="coord init --check --apply takes the changes "
                              "(--prune also removes repos whose checkout is gone)"
                              + ("; the manifests that cannot be read are yours to fix"
                                 if n else ""))
    if left:
        shown = "; ".join(f"{x['what']} ({x['how']})" for x in left[:10])
        more = f"; and {len(left) - 10} more" if len(left) > 10 else ""
        raise OperationFailed(
            f"{file}: {'applied, but ' if applied else ''}drift is left that --apply "
            f"does not take: {shown}{more}",
            hint="do what each says, then run coord init --check again")


def _takeable(fleet: Fleet) -> bool:
    """Is there drift --apply (with --prune) could take?"""
    return bool(fleet.added or fleet.gone or fleet.branches or fleet.urls or fleet.deps_added
                or fleet.deps_lost or fleet.deps_changed or any(t["added"] for t in fleet.tags))


def _left(fleet: Fleet, applied: FleetApplied | None, prune: bool) -> list[dict[str, str]]:
    """The drift --apply did not take, each with how to take it: repos whose checkout
    is gone (without --prune, or still named), hand-edited dependencies lost upstream
    (without --prune), unreadable manifests."""
    out: list[dict[str, str]] = []
    kept: dict[str, list[tuple[str, str]]] = {}
    for ref in applied["kept"] if applied else []:
        kept.setdefault(ref["repo"], []).append((ref["kind"], ref["id"]))
    for name in fleet.gone:
        if not prune:
            out.append({"kind": "repo_gone", "id": name,
                        "what": f"repo {name}: its checkout is gone",
                        "how": "--prune removes it"})
        elif name in kept:
            users = ", ".join(f"{kind} {id_}" for kind, id_ in kept[name])
            ids = " and ".join(id_ for _, id_ in kept[name])
            out.append({"kind": "repo_named", "id": name,
                        "what": f"repo {name}: its checkout is gone, but {users} names it",
                        "how": f"edit {ids} so that it names another repo, or `coord repo "
                        f"remove {name} --force`"})
    for d in fleet.deps_lost:
        if d["hand_edited"] and not prune:
            out.append({"kind": "dependency_hand_edited", "id": d["id"],
                        "what": f"dependency {d['id']} {d['consumer']} -> {d['provider']}: "
                        "lost upstream, kept: hand-edited",
                        "how": "--prune removes it; or delete its source: to keep it as "
                        "hand-written"})
    for u in fleet.unreadable:
        where = f"{u['file']}:{u['line']}" if u["line"] else u["file"]
        out.append({"kind": "manifest_unreadable", "id": f"{u['repo']}/{u['file']}",
                    "what": f"{u['repo']}: {where} cannot be read: {u['message']}",
                    "how": "fix the manifest"})
    return out


def _dep_line(d: object) -> str:
    assert isinstance(d, dict)
    src = d.get("source") or {}
    where = f" ({src.get('file')}:{src.get('line')})" if src else ""
    indirect = ", indirect" if d.get("indirect") else ""
    return f"{d['consumer']} -> {d['provider']} [{d.get('type', 'runtime')}{indirect}]{where}"


def _say_init(file: Path, fleet: Fleet, created: bool, dry_run: bool,
              applied: FleetApplied | None, clones: list[dict[str, str]]) -> None:
    for c in clones:
        say(escape(f"{c['result']}: {c['url']} -> {c['path']}"))
    verb = "would add" if dry_run else "added"
    say(escape(f"{plural(fleet.repos, 'checkout')} found; {verb} "
               f"{plural(len(fleet.added), 'repo')} and "
               f"{plural(len(fleet.deps_added), 'dependency').replace('dependencys', 'dependencies')}"
               f" {'to' if not created else 'in a new'} {file}"))
    for r in fleet.added:
        tags = f" [{', '.join(r.get('tags', []))}]" if r.get("tags") else ""
        forge = r.get("forge")
        said = (f"; forge {forge['kind']} {forge['project']}, from its remote's URL"
                if forge else "")
        say(escape(f"  repo {r['name']}: {r['path']}{tags} "
                   f"(default branch {r.get('default_branch', '?')}{said})"))
    ids = applied["dependencies_added"] if applied else []
    for i, d in enumerate(fleet.deps_added):
        say(escape(f"  {ids[i] + ' ' if i < len(ids) else ''}{_dep_line(d)}"))
    for u in fleet.unreadable:
        where = f"{u['file']}:{u['line']}" if u["line"] else u["file"]
        say(escape(f"  unreadable: {u['repo']}/{where}: {u['message']} (nothing inferred "
                   "from it; fix it, then coord init --check)"))
    for note in fleet.notes:
        say(escape(f"  note: {note}"))


def _say_drift(file: Path, fleet: Fleet, applied: FleetApplied | None, apply_: bool,
               prune: bool) -> None:
    if not fleet.drifted:
        say(escape(f"{file}: no drift ({plural(fleet.repos, 'checkout')} match the catalog)"))
    for r in fleet.added:
        say(escape(f"+ repo {r['name']} ({r['path']})"))
    pruned = applied["repos_pruned"] if applied else []
    named = {k["repo"] for k in applied["kept"]} if applied else set()
    for name in fleet.gone:
        kept = ("" if not apply_ else " (removed)" if name in pruned
                else " (kept: --prune removes it)" if not prune
                else " (kept: still named, see below)" if name in named else "")
        say(escape(f"- repo {name}: no git checkout where the catalog says{kept}"))
    for b in fleet.branches:
        why = (f" ({b['read_from']})" if b["read_from"] != "HEAD" else
               f" (the current branch: no remote HEAD, and no local branch "
               f"{b['catalog'] or 'main'})")
        say(escape(f"~ repo {b['repo']}: default branch {b['catalog'] or 'main (unset)'} -> "
                   f"{b['now']}{why}"))
    for moved in fleet.urls:
        say(escape(f"~ repo {moved['repo']}: clone URL {moved['catalog']} -> {moved['now']}"))
    for t in fleet.tags:
        tags = [f"+{x}" for x in t["added"]]
        tags += [f"-{x}" if prune and apply_ else f"{x} kept (no file at its top calls for "
                 "it now; --apply --prune removes it)" for x in t["stale"]]
        taken = t["added"] or (prune and apply_ and t["stale"])
        say(escape(f"{'~' if taken else ' '} repo {t['repo']}: tags {', '.join(tags)}"))
    for d in fleet.deps_added:
        say(escape(f"+ dependency {_dep_line(d)}"))
    for c in fleet.deps_changed:
        said = ", ".join(f"{k} {_shown(old)} -> {_shown(new)}"
                         for k, (old, new) in c["changes"].items())
        say(escape(f"~ dependency {c['id']} {c['consumer']} -> {c['provider']}: {said}"))
    for lost in fleet.deps_lost:
        src = lost["source"]
        where = f" (was {src['file']}:{src['line']})" if src else ""
        kept = (" (lost upstream, kept: hand-edited; --prune removes it)"
                if lost["hand_edited"] and not prune else " (removed)" if applied else "")
        say(escape(f"- dependency {lost['id']} {lost['consumer']} -> {lost['provider']}: "
                   f"no manifest names it now{where}{kept}"))
    for u in fleet.unreadable:
        where = f"{u['file']}:{u['line']}" if u["line"] else u["file"]
        held = (f" (holds {', '.join(u['held'])}: neither lost nor changed until it reads)"
                if u["held"] else "")
        say(escape(f"! manifest {u['repo']}/{where} cannot be read: {u['message']}{held}"))
    for h in fleet.deps_hand_typed:
        say(escape(f"  dependency {h['id']} {h['consumer']} -> {h['provider']}: type "
                   f"{h['type']} kept, hand-edited (the manifest says {h['manifest_type']})"))
    for note in fleet.notes:
        say(escape(f"  note: {note}"))
    if fleet.deps_moved and not apply_:
        n = len(fleet.deps_moved)
        say(escape(f"  {plural(n, 'dependency').replace('dependencys', 'dependencies')} "
                   "written on another line now (not drift; --apply refreshes "
                   f"{'its' if n == 1 else 'their'} source line)"))
    if apply_:
        say(escape(f"applied to {file}: "
                   f"{_applied_counts(applied) if applied else 'nothing it can take'}"))
        for ref in applied["kept"] if applied else []:
            say(escape(f"  kept: repo {ref['repo']}: {ref['kind']} {ref['id']} names it in "
                       f"{ref['field']}"))


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return f"{value.get('file')}:{value.get('line')}"
    return "(none)" if value is None else str(value)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _applied_counts(applied: FleetApplied) -> str:
    """What one --apply did, only what it did: ``1 repo added, 2 dependencies added
    (DEP-005, DEP-006), 1 dependency removed (DEP-003), 1 repo pruned with 1
    dependency``."""
    parts = []

    def ids(xs: list[str]) -> str:
        return f" ({', '.join(xs[:10])}{', ...' if len(xs) > 10 else ''})" if xs else ""

    if applied["repos_added"]:
        parts.append(f"{_count(len(applied['repos_added']), 'repo', 'repos')} added")
    for xs, verb in ((applied["dependencies_added"], "added"),
                     (applied["dependencies_updated"], "updated"),
                     (applied["dependencies_removed"], "removed")):
        if xs:
            parts.append(f"{_count(len(xs), 'dependency', 'dependencies')} {verb}{ids(xs)}")
    moved = applied["dependencies_moved"]
    if moved:
        parts.append(f"{_count(len(moved), 'dependency', 'dependencies')} moved (source "
                     f"line refreshed{': ' + ids(moved)[2:-1]})")
    if applied["branches_set"]:
        parts.append(f"{_count(len(applied['branches_set']), 'default branch', 'default branches')}"
                     f" set")
    if applied["urls_set"]:
        parts.append(f"{_count(len(applied['urls_set']), 'clone URL', 'clone URLs')} set")
    if applied["tags_set"]:
        parts.append(f"tags refreshed on {_count(len(applied['tags_set']), 'repo', 'repos')}"
                     f"{ids(applied['tags_set'])}")
    if applied["repos_pruned"]:
        with_deps = applied["pruned_dependencies"]
        parts.append(f"{_count(len(applied['repos_pruned']), 'repo', 'repos')} pruned"
                     f"{ids(applied['repos_pruned'])}"
                     + (f" with {_count(len(with_deps), 'dependency', 'dependencies')}"
                        f"{ids(with_deps)}" if with_deps else ""))
    return ", ".join(parts) or "nothing changed"
