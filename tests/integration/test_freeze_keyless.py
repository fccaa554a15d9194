"""A keyless Redis writer against `coord freeze` (issue 78), on a real redis-server with
the attack mounted by `redis-cli` (the Redis URL alone: no key, no catalog):

- `DEL <ns>:freeze` no longer lifts a freeze: it is kept beside the catalog
  (``.coord/freeze.json``), a start refuses (plan sweep, a push trigger), the freeze
  is put back into Redis and said (``fleet.refrozen``); `coord unfreeze` clears both.
- A freeze record that cannot be read (``at: 1e308``, ``NaN``, not JSON; in Redis or
  beside the catalog) still refuses a start, said as unreadable, and `coord unfreeze`
  lifts it: never a traceback. A schedule record that cannot be read is listed.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.integration.helpers import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240),
              pytest.mark.skipif(shutil.which("redis-cli") is None, reason="no redis-cli")]

CATALOG = """\
version: 1
repos:
  - {name: api, path: repos/api, tags: [python]}
coordination:
  plans:
    - {id: PLAN-001, title: on pushes, on: {push: {repos: api}},
       schedule: {cron: "0 3 * * 1-5", timezone: Europe/Berlin}}
  todos:
    - {id: TODO-001, task: test api, repo: api, plan: PLAN-001, run: "echo ok"}
"""
SHA = "3f2c1e9aa0"


def fleet(c: Cluster) -> None:
    (c.root / "repos" / "api").mkdir(parents=True, exist_ok=True)
    c.eco.write_text(CATALOG)


def keyless(c: Cluster, *args: str) -> str:
    """One command as a writer with the Redis URL alone (`redis-cli`)."""
    res = subprocess.run(["redis-cli", "-u", c.redis_url, *args], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0 and not res.stdout.startswith("(error)"), res
    return res.stdout.strip()


def refused(c: Cluster, *argv: str) -> str:
    res = c.cli(*argv)
    out = res.stdout + res.stderr
    assert res.returncode == 1, (argv, out)
    assert "the fleet is frozen" in out and "Traceback" not in out, out
    return out


def test_a_freeze_deleted_from_redis_still_holds_and_is_put_back(cluster: Cluster) -> None:
    c = cluster
    fleet(c)
    key = c.rt.keys.freeze
    kept = c.root / ".coord" / "freeze.json"
    res = c.cli("freeze", "--reason", "incident 4711")
    assert res.returncode == 0, res.stderr
    # the attack: the freeze lifted in Redis alone
    assert keyless(c, "DEL", key) == "1"
    for argv in (("plan", "sweep", "PLAN-001"),
                 ("trigger", "push", "--repo", "api", "--ref", SHA)):
        out = refused(c, *argv)
        assert "incident 4711" in out, out
    assert c.cli_json("sweep", "list") == []
    assert json.loads(kept.read_text())["reason"] == "incident 4711"
    # put back into Redis, and said
    assert json.loads(keyless(c, "GET", key))["reason"] == "incident 4711"
    said = [e for e in c.cli_json("events") if e["kind"] == "fleet.refrozen"]
    assert len(said) == 1 and said[0]["reason"] == "incident 4711", said
    assert said[0]["file"] == str(kept.resolve())
    # put back: deleted again, a second start finds it gone again and refuses again
    keyless(c, "DEL", key)
    assert c.cli_json("freeze", "--reason", "again")["frozen"] is True  # (via freeze too)
    # unfreeze clears both: starts go again
    done = c.cli_json("unfreeze")
    assert done["changed"] is True and done["kept"] is True
    assert not kept.exists() and keyless(c, "EXISTS", key) == "0"
    assert c.cli_json("plan", "sweep", "PLAN-001")["sweep_id"]
    assert c.cli_json("unfreeze")["changed"] is False


@pytest.mark.parametrize("record", ['{"by": "mallory", "at": 1e308, "reason": "x"}',
                                    '{"by": "mallory", "at": NaN}',
                                    '{"by": "mallory", "at": "soon"}',
                                    "not json at all"])
def test_an_unreadable_freeze_record_refuses_and_unfreeze_lifts_it(cluster: Cluster,
                                                                   record: str) -> None:
    c = cluster
    fleet(c)
    keyless(c, "SET", c.rt.keys.freeze, record)
    out = refused(c, "plan", "sweep", "PLAN-001")
    assert "unreadable freeze record" in out, out
    for argv in (("doctor", "--json"), ("freeze", "--json")):
        res = c.cli(*argv)
        assert "Traceback" not in res.stderr, (argv, res.stderr)
    res = c.cli("unfreeze")
    assert res.returncode == 0 and "no longer frozen" in res.stdout, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert keyless(c, "EXISTS", c.rt.keys.freeze) == "0"
    assert c.cli_json("plan", "sweep", "PLAN-001")["sweep_id"]


def test_an_unreadable_freeze_file_refuses_and_unfreeze_lifts_it(cluster: Cluster) -> None:
    c = cluster
    fleet(c)
    kept = c.root / ".coord" / "freeze.json"
    kept.parent.mkdir()
    kept.write_text('{"by": "mallory", "at": NaN')
    out = refused(c, "plan", "sweep", "PLAN-001")
    assert "unreadable freeze file" in out, out
    res = c.cli("unfreeze")
    assert res.returncode == 0 and "no longer frozen" in res.stdout, res.stdout + res.stderr
    assert not kept.exists() and keyless(c, "EXISTS", c.rt.keys.freeze) == "0"
    assert c.cli_json("plan", "sweep", "PLAN-001")["sweep_id"]


def test_an_unreadable_schedule_record_is_listed_never_a_traceback(cluster: Cluster) -> None:
    c = cluster
    fleet(c)
    c.cli_json("plan", "sweep", "PLAN-001")  # (a server with records: list reads them)
    keyless(c, "HSET", c.rt.keys.schedules,
            "fired:PLAN-001", '{"at": NaN, "due": 1e308, "sweep": [1], "error": {"x": 1}}',
            "skipped:PLAN-001", "not json")
    for argv in (("schedule", "list"), ("schedule", "list", "--json")):
        res = c.cli(*argv)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (argv, res.stderr)
    row = c.cli_json("schedule", "list")["schedules"][0]
    assert row["plan"] == "PLAN-001" and row["last_skipped"] is None
