"""`coord mcp` answers every request that carries an id (#23), however malformed: invalid
UTF-8, not JSON, a wrong `jsonrpc`, `params` or `id`, an unknown method, a line too long;
notifications get nothing; and the server goes on answering.

The real `coord mcp` in a subprocess (embedded), written to byte by byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.support.mcp import RawMCP
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(150)

pytest.importorskip("mcp.client.stdio")


@pytest.fixture
def issue_catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}],
                         issues=[{"id": "ISSUE-001", "title": "one", "repos": ["api"]}])


MALFORMED: list[tuple[bytes, int | str | None, int]] = [
    # (line, the id the reply must carry, its error code)
    (b'{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"coord_get",'
     b'"arguments":{"id":"ISSUE-\xff\xfe"}}}', 11, -32700),      # invalid UTF-8
    (b'\xc3({"jsonrpc":"2.0","id":12,"method":"ping"}', None, -32700),  # ... before the id
    (b'{', None, -32700),                                                # not JSON
    (b'{"jsonrpc":"2.0","id":13,"method":"tools/list",garbage', 13, -32700),
    (b'{"jsonrpc":"2.0","id":"s-14","method":', "s-14", -32700),         # cut short
    (b'{"jsonrpc":"1.0","id":15,"method":"tools/list"}', 15, -32600),
    (b'{"id":16,"method":"tools/list"}', 16, -32600),                     # no jsonrpc
    (b'{"jsonrpc":"2.0","id":17,"method":"tools/list","params":[]}', 17, -32602),
    (b'{"jsonrpc":"2.0","id":18,"method":"tools/call","params":"x"}', 18, -32602),
    (b'{"jsonrpc":"2.0","id":19,"method":"no/such/method"}', 19, -32601),
    (b'{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":5}}', 20, -32602),
    (b'{"jsonrpc":"2.0","id":21,"method":7}', 21, -32600),
    (b'{"jsonrpc":"2.0","id":22}', 22, -32600),
    (b'{"jsonrpc":"2.0","id":23,"method":"ping","params":{"x":NaN}}', 23, -32700),
    (b'{"jsonrpc":"2.0","id":24,"method":"ping","params":{"a":' + b"[" * 5000
     + b"]" * 5000 + b"}}", 24, -32700),                                # nested too deeply
    (b'{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}', None, -32600),  # bad id
    (b'[{"jsonrpc":"2.0","id":25,"method":"ping"}]', None, -32600),     # a batch
    (b'42', None, -32600),
]


def test_every_malformed_request_gets_an_error_with_its_id_and_the_server_goes_on(
        issue_catalog: Path) -> None:
    server = RawMCP(issue_catalog)
    try:
        server.initialize()
        for n, (line, rid, code) in enumerate(MALFORMED):
            server.send(line)
            reply = server.reply_to(rid)
            assert server.skipped == [], (line[:60], server.skipped)
            assert reply["jsonrpc"] == "2.0" and "result" not in reply, (line[:60], reply)
            assert reply["error"]["code"] == code, (line[:60], reply)
            assert reply["error"]["message"], reply
            # ... and it still answers a valid request after each.
            server.request(1000 + n, "ping")
            assert server.reply_to(1000 + n)["result"] == {}, line[:60]
        # Notifications (no id) are never answered, however malformed.
        for line in (b'{"jsonrpc":"2.0","method":"notifications/no-such"}',
                     b'{"jsonrpc":"1.0","method":"notifications/x"}',
                     b'{"jsonrpc":"2.0","method":"notifications/x","params":[]}',
                     b'{"jsonrpc":"2.0","id":9,"result":[]}',  # nor a malformed response
                     b"", b"   "):
            server.send(line)
        server.request(2000, "tools/call", {"name": "coord_get",
                                            "arguments": {"id": "ISSUE-001"}})
        doc = json.loads(server.reply_to(2000)["result"]["content"][0]["text"])
        assert server.skipped == []  # nothing came before that reply
        assert doc["id"] == "ISSUE-001"
    finally:
        code = server.close()
    assert code == 0, server.stderr()
    assert "Traceback" not in server.stderr()


def test_a_line_too_long_is_refused_with_its_id_and_skipped(issue_catalog: Path) -> None:
    from coordination.mcp_server.stdio import MAX_LINE

    server = RawMCP(issue_catalog)
    try:
        server.initialize()
        server.send(b'{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"'
                    + b"x" * (MAX_LINE + 10) + b'"}}')
        reply = server.reply_to("big", timeout=60)
        assert reply["error"]["code"] == -32700 and "longer" in reply["error"]["message"]
        server.request(1, "ping")
        assert server.reply_to(1)["result"] == {}
    finally:
        assert server.close() == 0, server.stderr()
