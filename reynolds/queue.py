"""The work queue: one Redis stream per pool, read by a consumer group that all Reynolds processes share.

At-least-once: a message stays pending until ``ack`` (called only after the outcome is stored);
messages whose consumer stopped renewing them are taken over with XAUTOCLAIM after the visibility
timeout. Retries wait in a sorted set and are moved into their stream when due, atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from reynolds.keys import CONSUMER_GROUP, Keys
from reynolds.store import Ready

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
        try:
            await self.redis.xgroup_create(self.keys.stream(pool), CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        await self.redis.sadd(self.keys.pools, pool)
        self._groups.add(pool)

    async def pools(self) -> set[str]:
        return {p.decode() if isinstance(p, bytes) else p for p in await self.redis.smembers(self.keys.pools)}

    async def push(self, items: Sequence[Ready]) -> None:
        """Append ready subtasks to their pools' streams, most urgent first."""
        ordered = sorted(items, key=lambda r: (-r.priority, -r.rank))
        for pool in {r.pool for r in ordered}:
            await self.ensure_group(pool)
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
        await self.ensure_group(pool)
        reply = await self.redis.xreadgroup(
            CONSUMER_GROUP, consumer, {self.keys.stream(pool): ">"}, count=count, block=block_ms
        )
        return [_message(pool, mid, fields) for _stream, entries in reply or [] for mid, fields in entries]

    async def reclaim(self, pool: str, consumer: str, min_idle_s: float, count: int) -> list[Message]:
        """Take over messages whose consumer has not renewed them for ``min_idle_s`` (it died)."""
        await self.ensure_group(pool)
        reply = await self.redis.xautoclaim(
            self.keys.stream(pool), CONSUMER_GROUP, consumer, int(min_idle_s * 1000), "0-0", count=count
        )
        entries = reply[1]  # Redis 6.2 answers [next, entries]; 7.0 appends the ids of deleted entries
        return [_message(pool, mid, fields) for mid, fields in entries if fields]

    async def renew(self, pool: str, consumer: str, ids: Sequence[str]) -> None:
        """Reset the idle time of messages this consumer still holds, so nobody reclaims them."""
        if ids:
            await self.redis.xclaim(self.keys.stream(pool), CONSUMER_GROUP, consumer, 0, list(ids), justid=True)

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

    async def dead_letter(self, message: Message, reason: str, attempts: int) -> None:
        await self.redis.xadd(
            self.keys.dead,
            {
                "task_id": message.task_id,
                "subtask_id": message.subtask_id,
                "pool": message.pool,
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
