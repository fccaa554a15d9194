"""Signed sweeps against a real redis-server and real `coord worker` processes:
Redis write access alone cannot make a worker run a signed spec in a sweep it
was not signed for, and the sweep it was copied into ends at once, naming why.
"""

from __future__ import annotations

import pytest

from tests.integration.helpers import Cluster, T, read_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

KEY = "integration-signing-key"


def test_a_signed_spec_copied_into_another_sweep_is_refused_and_that_sweep_ends(
    cluster: Cluster,
) -> None:
    cluster.env["COORD_SIGNING_KEY"] = KEY
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", "echo ran >> a.log"),
        T("TODO-002", "web", "echo ran >> b.log", plan="PLAN-002"),
    ], plans=("PLAN-001", "PLAN-002"))
    cluster.start_worker("api")
    a = cluster.cli_json("plan", "sweep", "PLAN-001", "--wait", "--no-sync", timeout=120)
    assert a["status"] == "succeeded", a  # a real worker checks and runs a signed spec
    a_log = cluster.repo_dir("api") / "a.log"
    assert read_lines(a_log) == ["ran"]

    b = cluster.start_sweep("PLAN-002")  # queued for web, which no worker serves yet
    r = cluster.rt.redis
    a_key, b_key = cluster.rt.keys.sweep(a["sweep_id"]), cluster.rt.keys.sweep(b)
    for f in ("spec", "spec_sig", "spec_key_id"):  # A's spec, validly signed, into B
        r.hset(b_key, f, r.hget(a_key, f))
    cluster.start_worker("web")

    st = cluster.wait_sweep(b, timeout=60)
    assert st["status"] == "failed", st
    assert "spec signature invalid" in str(st["reason"]), st["reason"]
    assert "copied from another sweep" in str(st["reason"]), st["reason"]
    # Refused at TODO-002 by web's worker (failed), or first at TODO-001 by api's: the
    # copied spec names A's todo, which B's supervision sends (then B's own TODO-002,
    # which the copied spec does not name, is cancelled with the sweep's reason; it was
    # once left queued in the ended sweep).
    cp = cluster.checkpoint(b, "TODO-002")
    at = "TODO-002" if "at TODO-002)" in str(st["reason"]) else "TODO-001"
    assert cp.get("status") == ("failed" if at == "TODO-002" else "cancelled"), (cp, st)
    assert "spec signature invalid" in cp.get("reason", ""), cp
    assert read_lines(a_log) == ["ran"]  # A's command did not run again
    assert not (cluster.repo_dir("web") / "b.log").exists()
    refuser = "web" if at == "TODO-002" else "api"
    assert any(w.repo == refuser and "refused: spec signature invalid" in w.log_text()
               for w in cluster.workers)
