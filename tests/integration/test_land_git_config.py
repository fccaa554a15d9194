"""A todo's git config runs nothing during `change land` or `change revert` (#38 audit):
real git with bare remotes, a real redis-server, a real `coord worker`, the CLI.

A todo of the change writes into its repo's git config (the worktree shares the
checkout's): ``remote.origin.uploadpack`` and ``remote.origin.receivepack`` (programs
a fetch and a push run), ``core.fsmonitor`` (a program any command reading the index
runs). Each made a marker file during 0.4's `change land` (hooks were off, config was
not). Now: ``core.fsmonitor`` is off on every git call coord makes; the other two are
keys a landing refuses, naming them (land, --dry-run, status, revert), until removed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.change_repos import Repos, git, make_repos
from tests.integration.helpers import Cluster
from tests.integration.landing import (
    NAMES,
    PLAN,
    refused,
    start,
    status,
    sweep,
    write_catalog,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def change_repos(c: Cluster, with_urls: bool = False) -> Repos:
    """The change's repos and its catalog (naming each repo's URL, as `coord init`
    writes it, when ``with_urls``)."""
    repos: Repos = make_repos(c.root, NAMES)
    write_catalog(c, broken=False)
    if with_urls:
        text = c.eco.read_text()
        for n in NAMES:
            text = text.replace(f"path: checkouts/{n}}}",
                                f"path: checkouts/{n}, url: {repos.remote(n)}}}")
        c.eco.write_text(text)
    return repos


def swept(c: Cluster, with_urls: bool = False) -> tuple[Repos, Path]:
    """:func:`change_repos`, a worker and a sweep that ran the change: the repos and
    api's worktree (where a todo writes into the checkout's shared git config)."""
    repos = change_repos(c, with_urls)
    start(c)
    sweep(c, expect=0)
    return repos, Path(status(c)["repos"]["api"]["worktree"])


def lands_where_it_says(c: Cluster, repos: Repos, base: dict[str, str]) -> dict[str, str]:
    """The change lands; what coord reports landed is each remote's head, moved from
    ``base``: those heads."""
    assert c.cli_json("change", "land", PLAN, "--wait")["state"] == "landed"
    doc = status(c)
    landed = {n: repos.remote_head(n) for n in NAMES}
    assert {n: r["landed"] for n, r in doc["repos"].items()} == landed  # report = remotes
    assert all(landed[n] != base[n] for n in NAMES)
    return landed


def lands_after_the_todos_run_again(c: Cluster, marker: Path, what: str) -> None:
    """The landing's merge of a moved base left the change unverified, running nothing
    (no ``marker``): the todos run again (their own runs may touch it), then it lands."""
    res = c.cli("change", "land", PLAN)
    assert res.returncode == 1 and "unverified: verify again" in res.stderr, res.stderr
    assert not marker.exists(), f"{what} ran during the landing's merge"
    for tid in ("TODO-101", "TODO-102", "TODO-103"):
        c.cli_json("todo", "run", tid, "--wait", "--ignore-blockers", "--no-sync")
    marker.unlink(missing_ok=True)  # (the todos' own runs: their world)
    assert c.cli_json("change", "land", PLAN, "--wait")["state"] == "landed"


def planted(c: Cluster, key: str, marker: Path) -> str:
    """The command ``key`` gets: one that leaves ``marker`` and then does git's job."""
    if key == "core.fsmonitor":
        script = c.root / "fsmonitor.sh"
        script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        script.chmod(0o755)
        return str(script)
    program = "git-upload-pack" if key.endswith("uploadpack") else "git-receive-pack"
    return f"touch {marker}; {program}"


@pytest.mark.parametrize("key", ["remote.origin.uploadpack", "remote.origin.receivepack",
                                 "core.fsmonitor"])
def test_a_todos_git_config_runs_nothing_when_the_change_lands(
        cluster: Cluster, key: str) -> None:
    c = cluster
    repos, wt = swept(c)
    marker = c.root / "MARKER"
    # what a todo in api's worktree could run: into the checkout's own config (shared)
    git(wt, "config", key, planted(c, key, marker))

    if key == "core.fsmonitor":  # off on every git call: the landing goes on, runs nothing
        repos.push_from_elsewhere("api")  # api's base moved: landing merges it (the index)
        lands_after_the_todos_run_again(c, marker, "core.fsmonitor")
        assert c.cli_json("change", "revert", PLAN)["state"] == "reverted"
        assert not marker.exists(), "core.fsmonitor ran during the landing or the revert"
        return

    base = {n: repos.remote_head(n) for n in NAMES}
    why = f"its own git config sets {key}="
    res = c.cli("change", "land", PLAN)
    assert not marker.exists(), f"{key} ran during coord change land"
    assert res.returncode == 1 and why in res.stderr, res.stderr
    assert repos.pushes() == [] and {n: repos.remote_head(n) for n in NAMES} == base
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert any(b["id"] == "api" and why in b["why"] for b in dry["blockers"]), dry
    doc = status(c)
    assert doc["landable"] is False
    [b] = [b for b in doc["blockers"] if b["id"] == "api" and why in b["why"]]
    assert "land_hooks: true" in b["why"] and "--unset-all" in b["why"], b["why"]
    assert not marker.exists()

    # removed as the refusal says: it lands; planted again after the landing, it stops
    # the revert before any git runs there (all or none: nothing is left reverted)
    git(repos.checkout("api"), "config", "--unset-all", key)
    assert c.cli_json("change", "land", PLAN, "--wait")["state"] == "landed"
    landed = {n: repos.remote_head(n) for n in NAMES}
    git(wt, "config", key, planted(c, key, marker))
    dry = c.cli("change", "revert", PLAN, "--dry-run", "--json")
    assert dry.returncode == 1 and why in dry.stdout, (dry.stdout, dry.stderr)
    res = c.cli("change", "revert", PLAN, "--json")
    assert res.returncode == 1 and why in res.stdout, (res.stdout, res.stderr)
    assert json.loads(res.stdout)["state"] == "landed"
    assert not marker.exists(), f"{key} ran during coord change revert"
    assert {n: repos.remote_head(n) for n in NAMES} == landed


@pytest.mark.parametrize("key", ["remote.origin.pushurl", "url.ELSEWHERE.pushInsteadOf"])
def test_a_todo_cannot_redirect_a_landing_or_a_revert_elsewhere(
        cluster: Cluster, key: str) -> None:
    """``remote.origin.pushurl`` (or a ``pushInsteadOf`` turning the remote's URL into
    another) written by a todo: the landing and the revert are refused, naming it;
    nothing reaches the other repository, and what coord reports is on the real remote."""
    c = cluster
    repos, wt = swept(c)
    elsewhere = c.root / "elsewhere.git"
    git(c.root, "init", "--quiet", "--bare", "-b", "main", str(elsewhere))
    real = str(repos.remote("api"))
    key = key.replace("ELSEWHERE", str(elsewhere))
    value = real if key.endswith("pushInsteadOf") else str(elsewhere)

    def nothing_elsewhere() -> bool:
        return git(elsewhere, "for-each-ref") == ""

    git(wt, "config", key, value)
    base = {n: repos.remote_head(n) for n in NAMES}
    why = f"its own git config sets {key.lower()} ("
    res = c.cli("change", "land", PLAN)
    assert res.returncode == 1 and why in res.stderr.lower(), res.stderr
    assert "--unset-all" in res.stderr
    assert repos.pushes() == [] and {n: repos.remote_head(n) for n in NAMES} == base
    assert nothing_elsewhere()

    git(repos.checkout("api"), "config", "--unset-all", key)
    landed = lands_where_it_says(c, repos, base)
    assert nothing_elsewhere()

    git(wt, "config", key, value)
    res = c.cli("change", "revert", PLAN, "--json")
    assert res.returncode == 1 and why in res.stdout.lower(), (res.stdout, res.stderr)
    assert json.loads(res.stdout)["state"] == "landed"
    assert {n: repos.remote_head(n) for n in NAMES} == landed and nothing_elsewhere()


def test_a_signing_key_command_never_runs_when_a_landing_merges_a_moved_base(
        cluster: Cluster) -> None:
    """``commit.gpgSign`` + ``gpg.format=ssh`` + ``gpg.ssh.defaultKeyCommand`` in the
    repo's config: the landing's merge of the moved base signs nothing and runs nothing."""
    c = cluster
    repos, wt = swept(c)
    marker = c.root / "MARKER"
    key = c.root / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    for k, v in (("commit.gpgSign", "true"), ("gpg.format", "ssh"),
                 ("gpg.ssh.defaultKeyCommand",
                  f"sh -c 'touch {marker}; echo key::$(cat {key}.pub)'")):
        git(wt, "config", k, v)
    repos.push_from_elsewhere("api")  # api's base moved: the landing merges it
    lands_after_the_todos_run_again(c, marker, "gpg.ssh.defaultKeyCommand")
    assert not marker.exists(), "gpg.ssh.defaultKeyCommand ran during the landing"
    head = repos.remote_head("api")
    assert "gpgsig" not in git(repos.remote("api"), "cat-file", "-p", head)


@pytest.mark.parametrize("how", ["set-url", "add-url"])
def test_a_todo_cannot_send_a_landing_or_a_revert_to_another_remote_url(
        cluster: Cluster, how: str) -> None:
    """``remote.origin.url`` itself rewritten by a todo (``set-url``), or a second URL
    added to it (``add-url``: git pushes to each), while the catalog's ``url:`` names
    the real remote: the landing, its dry run and the revert are refused, naming both
    URLs and the fix; the other repository never receives anything, and what coord
    reports is on the real remote."""
    c = cluster
    repos, wt = swept(c, with_urls=True)
    real = str(repos.remote("api"))
    elsewhere = c.root / "elsewhere.git"  # a copy of it: a landing would go through there
    git(c.root, "clone", "--quiet", "--bare", real, str(elsewhere))
    was = git(elsewhere, "for-each-ref")

    def nothing_elsewhere() -> bool:
        return git(elsewhere, "for-each-ref") == was

    def redirect() -> None:  # what a todo in api's worktree can do (the config is shared)
        if how == "set-url":
            git(wt, "remote", "set-url", "origin", str(elsewhere))
        else:
            git(wt, "config", "--add", "remote.origin.url", str(elsewhere))

    redirect()
    base = {n: repos.remote_head(n) for n in NAMES}
    res = c.cli("change", "land", PLAN)
    assert res.returncode == 1, (res.stdout, res.stderr)
    said = " ".join(res.stderr.split())
    assert "its remote origin points at" in said and str(elsewhere) in said, said
    assert f"not at {real}" in said and "coord repo update api --url" in said, said
    assert repos.pushes() == [] and {n: repos.remote_head(n) for n in NAMES} == base
    assert nothing_elsewhere()
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert any(b["id"] == "api" and str(elsewhere) in b["why"] for b in dry["blockers"]), dry
    assert nothing_elsewhere()
    # a sweep starting pushes the plan's freshness anchor to each remote: not to that one
    anchor_ref = f"refs/coord/changes/{c.rt.keys.namespace}/{PLAN}"
    sweep(c, 0, "--again")
    assert nothing_elsewhere()
    assert git(repos.remote("core"), "for-each-ref", anchor_ref) != ""

    # put back as the refusal says: it lands, on the catalog's URL
    git(repos.checkout("api"), "config", "--replace-all", "remote.origin.url", real)
    landed = lands_where_it_says(c, repos, base)
    assert nothing_elsewhere()

    redirect()
    res = c.cli("change", "revert", PLAN, "--json")
    assert res.returncode == 1 and str(elsewhere) in res.stdout, (res.stdout, res.stderr)
    assert json.loads(res.stdout)["state"] == "landed"
    assert {n: repos.remote_head(n) for n in NAMES} == landed and nothing_elsewhere()


def test_a_trusted_repos_own_config_cannot_send_a_landing_to_another_url(
        cluster: Cluster) -> None:
    """A repo whose catalog entry trusts its hooks and config (``land_hooks: true``)
    still lands only on its ``url:``: a ``pushInsteadOf`` a todo wrote into its config
    (git obeys it for a trusted repo) refuses the landing and its dry run, naming the
    rule and how to remove it, and nothing reaches the other repository; removed, the
    change lands on the catalog's URL."""
    c = cluster
    repos = change_repos(c, with_urls=True)
    c.eco.write_text(c.eco.read_text().replace(
        f"url: {repos.remote('api')}}}", f"url: {repos.remote('api')}, land_hooks: true}}"))
    assert "land_hooks: true" in c.eco.read_text()
    start(c)
    sweep(c, expect=0)
    real = str(repos.remote("api"))
    elsewhere = c.root / "elsewhere.git"
    git(c.root, "clone", "--quiet", "--bare", real, str(elsewhere))
    was = git(elsewhere, "for-each-ref")
    key = f"url.{elsewhere}.pushInsteadOf"
    git(repos.checkout("api"), "config", key, real)
    base = {n: repos.remote_head(n) for n in NAMES}

    res = c.cli("change", "land", PLAN)
    assert res.returncode == 1, (res.stdout, res.stderr)
    said = " ".join(res.stderr.split())
    assert "redirects its remote origin" in said and str(elsewhere) in said, said
    assert "--unset-all" in said and key.lower() in said.lower(), said
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert any(b["id"] == "api" and "redirects" in b["why"] for b in dry["blockers"]), dry
    assert repos.pushes() == [] and {n: repos.remote_head(n) for n in NAMES} == base
    assert git(elsewhere, "for-each-ref") == was

    git(repos.checkout("api"), "config", "--unset-all", key)
    lands_where_it_says(c, repos, base)
    assert git(elsewhere, "for-each-ref") == was


@pytest.mark.parametrize("how", ["set-url", "insteadOf"])
def test_a_change_worktree_is_never_fetched_from_another_remote_url(
        cluster: Cluster, how: str) -> None:
    """The fetch that makes a repo's worktree of the change (its first todo's run) goes
    only to the catalog's ``url:``: a checkout whose remote names another URL
    (``set-url``), or whose own config rewrites it into another (``insteadOf``), fails
    that todo naming the URL and the fix, and nothing is fetched from there; put back,
    the worktree is made from the real remote."""
    c = cluster
    repos = change_repos(c, with_urls=True)
    real = str(repos.remote("api"))
    elsewhere = c.root / "elsewhere.git"  # a copy of it, one commit ahead
    git(c.root, "clone", "--quiet", "--bare", real, str(elsewhere))
    other = c.root / "elsewhere-clone"
    git(c.root, "clone", "--quiet", str(elsewhere), str(other))
    git(other, "commit", "--quiet", "--allow-empty", "-m", "not the real remote's")
    git(other, "push", "--quiet", "origin", "main")
    ahead = git(elsewhere, "rev-parse", "refs/heads/main")
    checkout = repos.checkout("api")
    if how == "set-url":
        git(checkout, "remote", "set-url", "origin", str(elsewhere))
        said, fix = f"its remote origin points at {elsewhere}", "remote set-url origin"
    else:
        git(checkout, "config", f"url.{elsewhere}.insteadOf", real)
        said = f"its own git config rewrites the URL of its remote origin, {real}, into {elsewhere}"
        fix = f"config --unset-all url.{elsewhere}.insteadof"
    start(c)
    sid = sweep(c, 1)
    doc = c.cli_json("sweep", "status", sid)
    reason = " ".join(str(doc["todos"]["TODO-003"].get("reason")).split())
    assert said in reason and fix in reason, reason
    assert doc["todos"]["TODO-003"]["status"] == "failed", doc["todos"]["TODO-003"]
    assert ahead not in git(checkout, "for-each-ref"), "fetched from the other URL"
    assert not status(c)["repos"].get("api", {}).get("worktree")

    if how == "set-url":
        git(checkout, "remote", "set-url", "origin", real)
    else:
        git(checkout, "config", "--unset-all", f"url.{elsewhere}.insteadOf")
    sweep(c, 0)
    wt = Path(status(c)["repos"]["api"]["worktree"])
    assert git(wt, "merge-base", "HEAD", repos.remote_head("api")) == repos.remote_head("api")
    assert ahead not in git(checkout, "for-each-ref")
