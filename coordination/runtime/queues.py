"""What waits in the broker's queues, read from Redis without Celery.

kombu's Redis transport keeps a queue as one list per priority step
(``Keys.broker_queue``), each item a JSON message whose ``headers.id`` is the
Celery task id. The supervisor reads them to tell a todo whose message is lost
from one whose message still waits (see :mod:`coordination.sweeps.lost`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from coordination.keys import Keys

#: kombu's Redis ``priority_steps`` (its default): one list per step.
BROKER_PRIORITIES = (0, 3, 6, 9)


def queued_task_ids(r: redis.Redis, keys: Keys, queues: Iterable[str],
                    lists: Iterable[tuple[str, int]] = ()) -> set[str]:
    """Task ids of the messages waiting in these broker queues (every priority list)
    and in these ``(queue, priority)`` lists, in one pipelined round trip. Reading a
    list is O(its length): callers ration it."""
    wanted = {(q, pri) for q in set(queues) for pri in BROKER_PRIORITIES} | set(lists)
    pipe = r.pipeline(transaction=False)
    for q, pri in sorted(wanted):
        pipe.lrange(keys.broker_queue(q, pri), 0, -1)
    out: set[str] = set()
    for items in pipe.execute():
        for raw in items or ():
            try:
                tid = json.loads(raw)["headers"]["id"]
            except (ValueError, KeyError, TypeError):
                continue
            out.add(str(tid))
    return out


def queue_lengths(r: redis.Redis, keys: Keys, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each broker queue (every priority list), one round trip."""
    names = sorted(set(queues))
    pipe = r.pipeline(transaction=False)
    for q in names:
        for pri in BROKER_PRIORITIES:
            pipe.llen(keys.broker_queue(q, pri))
    replies = iter(pipe.execute())
    return {q: sum(int(next(replies) or 0) for _ in BROKER_PRIORITIES) for q in names}


#: kombu's separator in a binding member (``routing_key<sep>pattern<sep>queue``).
BINDING_SEP = "\x06\x16"


def push_messages(r: redis.Redis, keys: Keys, messages: Iterable[tuple[str, int, str]],
                  *, declare: Iterable[str] = ()) -> None:
    """Push broker messages ``(queue, priority, JSON text)`` as kombu's Redis transport
    does (``LPUSH`` onto the queue's list for that priority step), in one pipelined
    round trip and one ``LPUSH`` per list: the messages of a list keep their order
    (the first pushed is the first a worker pops).

    ``declare``: queues to bind first, as a kombu producer declares a queue the first
    time it sends to it (both binding sets, routing key = queue name, on the exchange
    of the same name), so kombu-side routing and tools that list queues by their
    bindings see them before any worker has consumed from them.
    """
    by_list: dict[str, list[str]] = {}
    for queue, priority, text in messages:
        by_list.setdefault(keys.broker_queue(queue, priority), []).append(text)
    if not by_list:
        return
    pipe = r.pipeline(transaction=False)
    for queue in declare:
        member = BINDING_SEP.join([queue, "", queue])
        pipe.sadd(keys.broker_binding(queue), member)
        pipe.sadd(keys.broker_binding_permanent(queue), member)
    for key, texts in by_list.items():
        pipe.lpush(key, *texts)
    pipe.execute()
