"""A todo's broker message, as Celery and kombu's Redis transport would write it.

Sending a todo through Celery (``app.send_task``) costs the sending process Celery
and kombu's imports (about 40 ms) and about 0.16 ms of CPU per message, most of it
the generic paths every message takes: routing, option merging, the protocol
builder, the producer. A coord todo's message differs from the next one only in
its ids, so it is written here directly: the same JSON document, field for field
and in the same order, that kombu's Redis transport pushes for
``app.send_task("coord.run_todo", kwargs=..., queue=..., task_id=..., ...)`` with
coord's options (Celery's message protocol 2: body ``[args, kwargs, embed]``,
base64, ``headers`` and ``properties`` as kombu's virtual channel fills them).

What stays the same is checked, not assumed: ``tests/unit/dispatch/test_envelope.py``
sends the same todos through Celery's own path and compares both documents field by
field (only the per-message ``delivery_tag`` and the per-process ``origin`` and
``reply_to`` differ), and every integration test's workers run todos sent this way.

Nothing here talks to Redis (:func:`coordination.runtime.queues.push_messages`
does) or imports Celery.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import uuid
from dataclasses import dataclass, field

from coordination.dispatch.signatures import TASK_NAME
from coordination.messages import TodoMessage

#: Celery's protocol-2 ``embed`` (the third element of the body): no canvas.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def _origin() -> str:
    """Celery's ``anon_nodename()``: ``gen<pid>@<host>`` (Flower shows it)."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


@dataclass
class Envelopes:
    """Builds the broker documents of one sending process (its origin and reply-to)."""

    task_name: str = TASK_NAME
    origin: str = field(default_factory=_origin)
    #: Celery's ``app.thread_oid``: where an RPC result would go (coord stores none).
    reply_to: str = field(default_factory=lambda: str(uuid.uuid4()))

    def document(self, m: TodoMessage, queue: str) -> dict[str, object]:
        """The message as a dict (what kombu's Redis transport serialises)."""
        kwargs: dict[str, object] = {"sweep_id": m.sweep_id, "plan_id": m.plan_id,
                                     "todo_id": m.todo_id, "repo": m.repo}
        if m.run is not None:
            kwargs["run"] = m.run
        task_id = m.task_id
        kwargsrepr = repr(kwargs)
        eta = (None if m.eta is None
               else dt.datetime.fromtimestamp(m.eta, dt.timezone.utc).isoformat())
        stamps = {"coord_sweep": m.sweep_id, "coord_plan": m.plan_id, "coord_todo": m.todo_id}
        body = json.dumps([[], kwargs, _EMBED]).encode()
        return {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": self.task_name,
                "id": task_id,
                "shadow": None,
                "eta": eta,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": "()",
                "kwargsrepr": kwargsrepr,
                "origin": self.origin,
                "ignore_result": True,
                "replaced_task_nesting": 0,
                "stamped_headers": list(stamps),
                "stamps": dict(stamps),
                **stamps,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": self.reply_to,
                # send_task passes the reprs on as properties too; kept, as Celery does
                "argsrepr": "()",
                "kwargsrepr": kwargsrepr,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": m.priority or 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }

    def encode(self, m: TodoMessage, queue: str) -> str:
        """The message as the JSON text pushed onto the queue's list."""
        return json.dumps(self.document(m, queue))
