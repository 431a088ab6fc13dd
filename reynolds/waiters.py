"""Waking the callers that wait for a task (``orchestrate(wait=true)``, ``wait_task``).

One Redis pattern subscription per process carries every task's progress events to the waiters in this
process, whichever Reynolds process changed the task; a change made by this process wakes its own waiters
directly, and the end of a task hands them the finished view, so the common case (the task ran here) costs
no Redis round trip and no second read of the task. Waiters that miss an event (Redis away) still look at
Postgres once a second (``Engine.wait``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import redis.asyncio as aioredis
import structlog

from reynolds.keys import Keys
from reynolds.models import TaskView

log = structlog.get_logger("reynolds.waiters")
RECONNECT_S = 1.0


@dataclass(eq=False)  # each watch is its own: kept in a set by identity
class Watch:
    """One caller waiting for one task: ``next`` returns when something changed, or after ``timeout_s``."""

    event: anyio.Event = field(default_factory=anyio.Event)
    final: bool = False
    view: TaskView | None = None  # the finished task, when this process finished it

    async def next(self, timeout_s: float) -> bool | None:
        """True when the task ended, False when it only moved, None when nothing came within ``timeout_s``."""
        with anyio.move_on_after(timeout_s):
            await self.event.wait()
        if not self.event.is_set():
            return None
        self.event = anyio.Event()
        return self.final


class Waiters:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._watches: dict[str, set[Watch]] = {}

    @contextlib.contextmanager
    def watch(self, task_id: str) -> Iterator[Watch]:
        watch = Watch()
        self._watches.setdefault(task_id, set()).add(watch)
        try:
            yield watch
        finally:
            left = self._watches.get(task_id)
            if left is not None:
                left.discard(watch)
                if not left:
                    del self._watches[task_id]

    def wake(self, task_id: str, final: bool, view: TaskView | None = None) -> None:
        for watch in self._watches.get(task_id, ()):
            watch.final = watch.final or final
            watch.view = watch.view or view
            watch.event.set()

    async def run(self) -> None:
        """Relay progress events from every Reynolds process to this one's waiters, reconnecting forever."""
        prefix = self.keys.progress("")
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*"  # the prefix is taken literally
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(pattern)
                    async for message in pubsub.listen():
                        if message.get("type") != "pmessage":
                            continue
                        channel = message["channel"].decode()
                        self.wake(channel.removeprefix(prefix), b'"task"' in message["data"])
            except (OSError, aioredis.RedisError) as err:
                log.warning("progress subscription lost; waiters poll until it is back", error=str(err))
                await anyio.sleep(RECONNECT_S)
