"""The embedded server's Lua runtime compiles each script once (fakeredis compiles
on every call), and behaves exactly as before."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis

from coordination.connection.client import CompiledScripts, compile_scripts_once, embedded_server

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def compiled_server() -> fakeredis.FakeServer:
    srv = fakeredis.FakeServer()
    assert compile_scripts_once(srv)
    return srv


def test_the_embedded_server_compiles_scripts_once() -> None:
    from coordination.connection.client import reset_embedded

    reset_embedded()
    try:
        assert isinstance(embedded_server()._lua_runtime, CompiledScripts)  # type: ignore[attr-defined]
    finally:
        reset_embedded()


def test_a_script_is_compiled_once_and_its_top_level_runs_at_every_call(
    compiled_server: fakeredis.FakeServer,
) -> None:
    r = fakeredis.FakeRedis(server=compiled_server, decode_responses=True)
    runtime: Any = compiled_server._lua_runtime  # type: ignore[attr-defined]
    script = "local n = 0; n = n + 1; redis.call('INCR', KEYS[1]); return {n, ARGV[1]}"
    before = len(runtime._chunks)
    for i in range(5):
        assert r.eval(script, 1, "k", f"a{i}") == [1, f"a{i}"]  # fresh locals, new ARGV
    assert r.get("k") == "5"
    assert len(runtime._chunks) == before + 1
    sha = r.script_load(script)
    assert r.evalsha(sha, 1, "k", "b") == [1, "b"] and len(runtime._chunks) == before + 1


def test_errors_and_globals_are_as_with_fakeredis_itself(compiled_server: fakeredis.FakeServer) -> None:
    r = fakeredis.FakeRedis(server=compiled_server, decode_responses=True)
    with pytest.raises(redis.ResponseError, match="boom"):
        r.eval("error('boom')", 0)
    with pytest.raises(redis.ResponseError):
        r.eval("this is not lua", 0)
    assert r.eval("return 1", 0) == 1  # and the runtime still works after each
    with pytest.raises(redis.ResponseError, match="global"):
        r.eval("leaked = 1; return 1", 0)  # a script may not set globals


def test_the_full_collection_runs_every_so_many_calls(compiled_server: fakeredis.FakeServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    runtime: Any = compiled_server._lua_runtime  # type: ignore[attr-defined]
    collected: list[str] = []
    real = runtime._runtime

    class Spy:
        def execute(self, code: Any, *args: Any) -> Any:
            collected.append(code)
            return real.execute(code, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(runtime, "_runtime", Spy())
    r = fakeredis.FakeRedis(server=compiled_server)
    for _ in range(CompiledScripts.GC_EVERY * 2):
        r.eval("return 1", 0)
    assert collected.count("collectgarbage()") == 2


def test_without_a_lua_runtime_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lua(*_: Any, **__: Any) -> Any:
        raise redis.ResponseError("unknown command 'EVAL'")

    monkeypatch.setattr(fakeredis.FakeRedis, "eval", no_lua)
    srv = fakeredis.FakeServer()
    assert not compile_scripts_once(srv)
    assert not hasattr(srv, "_lua_runtime")
