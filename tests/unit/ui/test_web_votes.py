"""The web view's votes under approvers: (ui/app.py api_decide): made by the view for
its signed-in user, who must be a principal of the allowed-signers file; sealed with
``via: web`` (so they count only where COORD_SIGNING_KEY checks the seal)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from coordination.runtime.context import Runtime
from coordination.ui.app import create_app
from tests.unit.support.sweeps import at_the_gate, gate_then_run

pytestmark = [pytest.mark.timeout(60), pytest.mark.signed(key="w" * 32)]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_view_votes_only_for_principals_of_the_file(signed_rt: Runtime,
                                                        tmp_path: Path) -> None:
    rt = signed_rt
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "ana")], check=True, timeout=30)
    pub = " ".join((tmp_path / "ana.pub").read_text().split()[:2])
    (tmp_path / "signers").write_text(f"ana {pub}\n")
    cat = gate_then_run(tmp_path, {"approvals": 1, "from": ["ana", "cy"]})
    cat.write_text(cat.read_text() + "approvers: {allowed_signers: signers}\n")
    client = TestClient(create_app(rt, cat, auth="ana:pw-a", users={"cy": "pw-c"}),
                        base_url="http://localhost")
    with at_the_gate(rt, cat) as (svc, sid):
        url = f"/api/sweeps/{sid}/todos/TODO-001/approve"

        def post(user: str, pw: str) -> tuple[int, dict[str, object]]:
            csrf = client.get("/api/session", headers=basic(user, pw)).json()["csrf"]
            res = client.post(url, json={}, headers={**basic(user, pw), "X-CSRF-Token": csrf})
            return res.status_code, res.json()

        code, body = post("cy", "pw-c")  # one of from:, but no key in the file
        assert code == 400 and "cy is not a principal of" in str(body["error"]), body
        assert svc.status(sid)["gates"]["TODO-001"]["votes"] == []
        code, body = post("ana", "pw-a")
        assert code == 200 and body["status"] == "succeeded", body
        votes = rt.checkpoints.gate_votes(sid, ["TODO-001"])["TODO-001"]
        assert votes["ana"]["via"] == "web" and str(votes["ana"]["sig"]).startswith("v1:")
        assert "ssh" not in votes["ana"]
        assert svc.wait(sid, timeout=30)["status"] == "succeeded"
