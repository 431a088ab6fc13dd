"""The work queue: one Redis stream per pool, read by a consumer group that all Reynolds processes share.

Order across the whole backlog: pushed subtasks wait in a per-pool sorted set (most urgent first: task
priority, then the longest remaining path), and a reader moves only as many as it has room for into the
stream, atomically, just before it reads. So a critical subtask pushed behind ten thousand others is the
next one read by any process, not the ten-thousand-and-first.

At-least-once: a message stays pending until ``ack`` (called only after the outcome is stored);
messages whose consumer stopped renewing them are taken over with XAUTOCLAIM after the visibility
timeout. Retries wait in a sorted set and are moved into their pool's backlog when due, atomically.

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

# Move the most urgent of a pool's backlog into its stream until ``want`` messages wait there undelivered
# (entries after the group's last-delivered id). KEYS: backlog, since, stream.
TOP_UP = """
local function top_up(backlog, since, stream, group, want)
  local last = '0-0'
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f['name'] == group then last = f['last-delivered-id'] end
    end
  end
  local waiting = 0
  if redis.call('EXISTS', stream) == 1 then
    waiting = #redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', want)
  end
  if want - waiting <= 0 then return 0 end
  local items = redis.call('ZPOPMIN', backlog, want - waiting)
  for i = 1, #items, 2 do
    local m = cjson.decode(items[i])
    redis.call('XADD', stream, '*', 'task_id', m.task_id, 'subtask_id', m.subtask_id, 'rank', m.rank,
               'priority', m.priority, 'at', m.at)
    redis.call('ZREM', since, items[i])
  end
  return #items / 2
end
"""
# Add to a pool's backlog (ARGV: group, then member, score, queued-at ms, ...) and put one message in the stream
# if none waits there, so a blocked reader wakes.
PUSH = (
    TOP_UP
    + """
for i = 2, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
end
return top_up(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 1)
"""
)
READY = TOP_UP + "return top_up(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))"
# Move due retries into their pools' backlogs, atomically. ARGV: now ms, limit, key prefix, group.
MOVE_DUE = (
    TOP_UP
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local m = cjson.decode(member)
  local entry = cjson.encode({task_id = m.task_id, subtask_id = m.subtask_id, rank = m.rank,
                              priority = m.priority, at = m.at})
  local p = ARGV[3] .. ':'
  redis.call('ZADD', p .. 'backlog:' .. m.pool, -(tonumber(m.priority) * 1e9 + tonumber(m.rank)), entry)
  redis.call('ZADD', p .. 'backlog-since:' .. m.pool, m.at, entry)
  top_up(p .. 'backlog:' .. m.pool, p .. 'backlog-since:' .. m.pool, p .. 'stream:' .. m.pool, ARGV[4], 1)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""
)


@dataclass(frozen=True)
class Message:
    id: str
    pool: str
    task_id: str
    subtask_id: str
    rank: float
    priority: int
    queued_ms: int  # when it was first queued (it entered the stream later, when a reader had room)

    @property
    def order(self) -> tuple[int, float, str]:
        """Sort key: higher task priority first, then the longest remaining path (critical path first)."""
        return (-self.priority, -self.rank, self.id)


class TaskQueue:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._move_due = redis.register_script(MOVE_DUE)
        self._push = redis.register_script(PUSH)
        self._ready = redis.register_script(READY)
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

    def _backlog_keys(self, pool: str) -> list[str]:
        return [self.keys.backlog(pool), self.keys.backlog_since(pool), self.keys.stream(pool)]

    async def push(self, items: Sequence[Ready]) -> None:
        """Add ready subtasks to their pools' backlogs, each in its place in the pool's order."""
        now_ms = str(int(time.time() * 1000))
        for pool in {r.pool for r in items}:
            await self.ensure_group(pool)  # a lost group is re-created by the first read that misses it
            args: list[str | float] = [CONSUMER_GROUP]
            for r in (r for r in items if r.pool == pool):
                args += [json.dumps({**_fields(r), "at": now_ms}), _score(r), now_ms]
            await self._push(keys=self._backlog_keys(pool), args=args)

    async def push_later(self, item: Ready, delay_s: float) -> None:
        await self.ensure_group(item.pool)
        member = json.dumps({**_fields(item), "pool": item.pool, "at": str(int(time.time() * 1000))})
        await self.redis.zadd(self.keys.delayed, {member: (time.time() + delay_s) * 1000})

    async def move_due(self, limit: int = 500) -> int:
        return int(
            await self._move_due(
                keys=[self.keys.delayed], args=[time.time() * 1000, limit, self.keys.prefix, CONSUMER_GROUP]
            )
        )

    async def read(self, pool: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        """Up to ``count`` of the pool's most urgent messages (waiting up to ``block_ms`` for one)."""
        await self._ready(keys=self._backlog_keys(pool), args=[CONSUMER_GROUP, count])
        reply = await self._grouped(
            pool,
            lambda: self.redis.xreadgroup(
                CONSUMER_GROUP, consumer, {self.keys.stream(pool): ">"}, count=count, block=block_ms
            ),
        )
        return [_message(pool, mid, fields) for _stream, entries in reply or [] for mid, fields in entries]

    async def reclaim(self, pool: str, consumer: str, min_idle_s: float, count: int) -> list[Message]:
        """Take over messages whose consumer has not renewed them for ``min_idle_s`` (it died)."""
        reply = await self._grouped(
            pool,
            lambda: self.redis.xautoclaim(
                self.keys.stream(pool), CONSUMER_GROUP, consumer, int(min_idle_s * 1000), "0-0", count=count
            ),
        )
        entries = reply[1]  # Redis 6.2 answers [next, entries]; 7.0 appends the ids of deleted entries
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
        """(subtasks waiting or in flight, age in seconds of the oldest one)."""
        stream = self.keys.stream(pool)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(stream).zcard(self.keys.backlog(pool))
            pipe.xrange(stream, count=1).zrange(self.keys.backlog_since(pool), 0, 0, withscores=True)
            in_stream, in_backlog, first, since = await pipe.execute()
        if not in_stream + in_backlog:
            return 0, 0.0
        times = [_message(pool, *first[0]).queued_ms] if first else []
        times += [int(score) for _member, score in since]
        return int(in_stream + in_backlog), max(0.0, time.time() - min(times) / 1000) if times else 0.0


def _score(r: Ready) -> float:
    """Backlog order, lowest first: higher task priority, then the longer remaining path."""
    return -(r.priority * 1e9 + r.rank)


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
        queued_ms=int(f.get("at") or _text(mid).split("-")[0]),
    )
