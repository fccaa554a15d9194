"""`coord context` inside a todo: asked of its worker (:mod:`workers.context_proxy`).

A todo holds no signing key and no Redis password; its worker sets
``COORD_CONTEXT_SOCKET`` and ``COORD_RUN_TOKEN`` and answers there, checking every seal
and sealing what the todo sets with its run's key. :class:`ProxiedContext` has the
store's methods the commands call (get, set, entries, delete), so the commands read the
same either way.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, cast

from coordination.errors import OperationFailed, UsageError
from coordination.runtime.shared_context import ContextRefused, Entry
from coordination.trust.runkeys import CONTEXT_SOCKET_ENV, RUN_TOKEN_ENV

#: Seconds a request may take (a read of a full scope included).
TIMEOUT = 60.0


def from_environment() -> ProxiedContext | None:
    """The worker's context service when this runs inside a todo, else None."""
    path = os.environ.get(CONTEXT_SOCKET_ENV, "").strip()
    token = os.environ.get(RUN_TOKEN_ENV, "").strip()
    return ProxiedContext(path, token) if path and token else None


class ProxiedContext:
    """The store, as a todo's worker keeps it for the todo's run."""

    def __init__(self, path: str, token: str) -> None:
        self.path, self.token = path, token

    def _ask(self, op: str, scope: str, **more: Any) -> Any:
        req = json.dumps({"op": op, "token": self.token, "scope": scope, **more},
                         separators=(",", ":")).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(TIMEOUT)
                s.connect(self.path)
                s.sendall(req)
                with s.makefile("rb") as f:
                    line = f.readline()
        except OSError as exc:
            raise OperationFailed(
                f"cannot ask this todo's worker for coord context ({self.path}: "
                f"{exc.strerror or exc})",
                hint=f"inside a todo coord context goes through its worker (${CONTEXT_SOCKET_ENV}); "
                "outside one, unset it") from None
        try:
            reply = json.loads(line)
        except ValueError:
            raise OperationFailed("the todo's worker answered coord context with no "
                                  "answer (it stopped?)") from None
        if reply.get("ok"):
            return reply.get("result")
        kind, message = reply.get("kind"), str(reply.get("message") or "refused")
        if kind == "refused":
            raise ContextRefused(message)
        if kind == "usage":
            raise UsageError(message)
        raise OperationFailed(message)

    def get(self, scope: str, key: str) -> str | None:
        got = self._ask("get", scope, key=key)
        return None if got is None else str(got)

    def set(self, scope: str, key: str, value_text: str, *, ttl: float | None = None
            ) -> list[str]:
        return [str(k) for k in self._ask("set", scope, key=key, value=value_text, ttl=ttl)
                or []]

    def entries(self, scope: str) -> list[Entry]:
        return cast(list[Entry], self._ask("list", scope) or [])

    def delete(self, scope: str, key: str) -> bool:
        return bool(self._ask("delete", scope, key=key))
