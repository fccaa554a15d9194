"""Deciding gates from the web view, in process (Starlette's TestClient): who is signed
in (COORD_UI_AUTH's user and COORD_UI_USERS' users), the CSRF token, the origin."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.ui.app import create_app
from coordination.ui.server import check_bind, load_users
from tests.unit.support.sweeps import at_the_gate, gate_then_run

pytestmark = pytest.mark.timeout(60)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_users_file_is_read_with_located_errors(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text("# team\nbo:pw-b\n\ncy:pw:with:colons\n")
    assert load_users(f) == {"bo": "pw-b", "cy": "pw:with:colons"}
    f.write_text("bo:pw\nnocolon\n")
    with pytest.raises(UsageError, match=r"users:2: COORD_UI_USERS lines look like"):
        load_users(f)
    with pytest.raises(UsageError, match="cannot read"):
        load_users(tmp_path / "missing")
    check_bind("0.0.0.0", None, {"bo": "pw"})  # a users file is authentication too
    with pytest.raises(UsageError, match="without authentication"):
        check_bind("0.0.0.0", None, {})


def test_two_signed_in_users_pass_a_two_person_gate(rt: Runtime, tmp_path: Path) -> None:
    cat = gate_then_run(tmp_path, {"approvals": 2, "from": ["ana", "bo", "cy"]})
    client = TestClient(create_app(rt, cat, auth="ana:pw-a", users={"bo": "pw-b"}),
                        base_url="http://localhost")
    with at_the_gate(rt, cat) as (svc, sid):
        url = f"/api/sweeps/{sid}/todos/TODO-001/approve"

        def session(user: str, pw: str) -> Any:
            got = client.get("/api/session", headers=basic(user, pw)).json()
            assert got["user"] == user and got["csrf"]
            return got

        ana, bo = session("ana", "pw-a"), session("bo", "pw-b")
        assert client.get("/api/session", headers=basic("bo", "pw-a")).status_code == 401
        # ana's token is not bo's; a foreign origin is refused; neither changes anything
        refused = [client.post(url, json={}, headers={**basic("bo", "pw-b"),
                                                      "X-CSRF-Token": ana["csrf"]}),
                   client.post(url, json={}, headers={**basic("bo", "pw-b"),
                                                      "X-CSRF-Token": bo["csrf"],
                                                      "Origin": "http://evil.example"}),
                   client.post(f"/api/sweeps/{sid}/todos/TODO-001/merge", json={},
                               headers={**basic("bo", "pw-b"), "X-CSRF-Token": bo["csrf"]})]
        assert [r.status_code for r in refused] == [403, 403, 404]
        assert svc.status(sid)["gates"]["TODO-001"]["votes"] == []
        ok = client.post(url, json={"comment": "fine"},
                         headers={**basic("ana", "pw-a"), "X-CSRF-Token": ana["csrf"]})
        assert ok.status_code == 200 and ok.json()["approvals"] == ["ana"]
        again = client.post(url, json={}, headers={**basic("ana", "pw-a"),
                                                   "X-CSRF-Token": ana["csrf"]})
        assert again.status_code == 400 and "already" in again.json()["error"]
        ok = client.post(url, json={}, headers={**basic("bo", "pw-b"), "X-CSRF-Token": bo["csrf"]})
        assert ok.json()["status"] == "succeeded" and ok.json()["approvals"] == ["ana", "bo"]
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "succeeded"
