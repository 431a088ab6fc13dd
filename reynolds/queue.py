"""The work queue: one Redis stream per pool, read by a consumer group that all Reynolds processes share.

At-least-once: a message stays pending until ``ack`` (called only after the outcome is stored);
messages whose consumer stopped renewing them are taken over with XAUTOCLAIM after the visibility
timeout. Retries wait in a sorted set and are moved into their stream when due, atomically.

A Redis that restarts empty (or fails over) loses streams and groups: a read that meets NOGROUP
re-creates its group and reads again, and ``lost_data`` tells the engine that everything queued before
must be queued again (see ``Engine.reconcile``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from reynolds.keys import CONSUMER_GROUP, Keys
from reynolds.store import Ready

T = TypeVar("T")

# Move due retries into their streams: ZRANGEBYSCORE + XADD + ZREM in one atomic step.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local m = cjson.decode(member)
  redis.call('XADD', ARGV[3] .. m.pool, '*', 'task_id', m.task_id, 'subtask_id', m.subtask_id,
             'rank', m.rank, 'priority', m.priority)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


@dataclass(frozen=True)
class Message:
    id: str
    pool: str
    task_id: str
    subtask_id: str
    rank: float
    priority: int

    @property
    def order(self) -> tuple[int, float, str]:
        """Sort key: higher task priority first, then the longest remaining path (critical path first)."""
        return (-self.priority, -self.rank, self.id)


class TaskQueue:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._move_due = redis.register_script(MOVE_DUE)
        self._groups: set[str] = set()

    async def ensure_group(self, pool: str) -> None:
        if pool in self._groups:
            return
        await self._create_group(pool)

    async def _create_group(self, pool: str) -> None:
        try:
            await self.redis.xgroup_create(self.keys.stream(pool), CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        await self.redis.sadd(self.keys.pools, pool)
        self._groups.add(pool)

    async def _grouped(self, pool: str, op: Callable[[], Awaitable[T]]) -> T:
        """Run a consumer-group command; if Redis lost the group (restarted empty), re-create it and run again."""
        await self.ensure_group(pool)
        try:
            return await op()
        except ResponseError as err:
            if "NOGROUP" not in str(err):
                raise
        self._groups.discard(pool)
        await self._create_group(pool)
        return await op()

    async def lost_data(self) -> bool:
        """True once per data loss: the epoch key (which never expires) was missing, so Redis restarted empty or
        failed over to a copy without it, and every message queued before may be gone. The first caller to find
        it missing sets it again (SET NX) and is the only one told."""
        return bool(await self.redis.set(self.keys.epoch, uuid.uuid4().hex, nx=True))

    async def pools(self) -> set[str]:
        return {p.decode() if isinstance(p, bytes) else p for p in await self.redis.smembers(self.keys.pools)}

    async def push(self, items: Sequence[Ready]) -> None:
        """Append ready subtasks to their pools' streams, most urgent first."""
        ordered = sorted(items, key=lambda r: (-r.priority, -r.rank))
        for pool in {r.pool for r in ordered}:
            await self.ensure_group(pool)  # a lost group is re-created by the first read that misses it
        async with self.redis.pipeline(transaction=False) as pipe:
            for r in ordered:
                pipe.xadd(self.keys.stream(r.pool), _fields(r))
            await pipe.execute()

    async def push_later(self, item: Ready, delay_s: float) -> None:
        await self.ensure_group(item.pool)
        member = json.dumps({**_fields(item), "pool": item.pool})
        await self.redis.zadd(self.keys.delayed, {member: (time.time() + delay_s) * 1000})

    async def move_due(self, limit: int = 500) -> int:
        return int(
            await self._move_due(
                keys=[self.keys.delayed], args=[time.time() * 1000, limit, f"{self.keys.prefix}:stream:"]
            )
        )

    async def read(self, pool: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        reply = await self._grouped(
            pool,
            lambda: self.redis.xreadgroup(
                CONSUMER_GROUP, consumer, {self.keys.stream(pool): ">"}, count=count, block=block_ms
            ),
        )
        return [_message(pool, mid, fields) for _stream, entries in reply or [] for mid, fields in entries]

    async def reclaim(self, pool: str, consumer: str, min_idle_s: float, count: int) -> list[Message]:
        """Take over messages whose consumer has not renewed them for ``min_idle_s`` (it died)."""
        _next, entries, _deleted = await self._grouped(
            pool,
            lambda: self.redis.xautoclaim(
                self.keys.stream(pool), CONSUMER_GROUP, consumer, int(min_idle_s * 1000), "0-0", count=count
            ),
        )
        return [_message(pool, mid, fields) for mid, fields in entries if fields]

    async def renew(self, pool: str, consumer: str, ids: Sequence[str]) -> None:
        """Reset the idle time of messages this consumer still holds, so nobody reclaims them."""
        if ids:
            await self._grouped(
                pool,
                lambda: self.redis.xclaim(self.keys.stream(pool), CONSUMER_GROUP, consumer, 0, list(ids), justid=True),
            )

    async def ack(self, *messages: Message) -> None:
        """Done with these messages (their outcomes are stored): remove them from the group and the stream."""
        if not messages:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for m in messages:
                stream = self.keys.stream(m.pool)
                pipe.xack(stream, CONSUMER_GROUP, m.id)
                pipe.xdel(stream, m.id)
            await pipe.execute()

    async def dead_letter(self, pool: str, task_id: str, subtask_id: str, reason: str, attempts: int) -> None:
        await self.redis.xadd(
            self.keys.dead,
            {
                "task_id": task_id,
                "subtask_id": subtask_id,
                "pool": pool,
                "reason": reason[:2000],
                "attempts": attempts,
            },
            maxlen=10_000,
            approximate=True,
        )

    async def depth(self, pool: str) -> tuple[int, float]:
        """(messages waiting or in flight, age in seconds of the oldest one)."""
        stream = self.keys.stream(pool)
        length = await self.redis.xlen(stream)
        if not length:
            return 0, 0.0
        first = await self.redis.xrange(stream, count=1)
        oldest_ms = int(_text(first[0][0]).split("-")[0]) if first else int(time.time() * 1000)
        return int(length), max(0.0, time.time() - oldest_ms / 1000)


def _fields(r: Ready) -> dict[str, str | int | float]:
    return {"task_id": r.task_id, "subtask_id": r.subtask_id, "rank": r.rank, "priority": r.priority}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _message(pool: str, mid: bytes | str, fields: dict) -> Message:
    f = {_text(k): _text(v) for k, v in fields.items()}
    return Message(
        id=_text(mid),
        pool=pool,
        task_id=f["task_id"],
        subtask_id=f["subtask_id"],
        rank=float(f.get("rank", 0)),
        priority=int(f.get("priority", 0)),
    )
