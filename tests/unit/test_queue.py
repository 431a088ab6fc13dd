"""The Redis Streams work queue against a real Redis: order, ack, reclaim after the visibility timeout, renewal,
delayed retries, depth and the dead-letter stream. Each test has its own key prefix."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from reynolds.keys import CONSUMER_GROUP, Keys
from reynolds.queue import TaskQueue
from reynolds.store import Ready

pytestmark = pytest.mark.anyio

POOL = "workbench"


def ready(sid: str, rank: float = 1.0, priority: int = 0, pool: str = POOL) -> Ready:
    return Ready(
        task_id="00000000-0000-0000-0000-000000000001", subtask_id=sid, pool=pool, rank=rank, priority=priority
    )


@pytest.fixture
def queue(redis_client: aioredis.Redis, keys: Keys) -> TaskQueue:
    return TaskQueue(redis_client, keys)


async def test_push_orders_by_priority_then_rank(queue: TaskQueue) -> None:
    await queue.push(
        [
            ready("low-short", rank=1, priority=0),
            ready("high-short", rank=1, priority=5),
            ready("low-long", rank=9, priority=0),
            ready("high-long", rank=3, priority=5),
            ready("mid", rank=0.5, priority=2),
        ]
    )
    got = await queue.read(POOL, "c1", count=10, block_ms=100)
    assert [m.subtask_id for m in got] == ["high-long", "high-short", "mid", "low-long", "low-short"]
    assert [m.order for m in got] == sorted(m.order for m in got)
    first = got[0]
    assert (first.pool, first.task_id, first.rank, first.priority) == (
        POOL,
        "00000000-0000-0000-0000-000000000001",
        3.0,
        5,
    )


async def test_push_goes_to_each_pools_own_stream(queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys) -> None:
    await queue.push([ready("a"), ready("b", pool="code"), ready("c", pool="code")])
    assert (await queue.depth(POOL))[0] == 1 and (await queue.depth("code"))[0] == 2
    assert [m.subtask_id for m in await queue.read("code", "c1", count=5, block_ms=100)] == ["b", "c"]
    assert await redis_client.xlen(keys.stream(POOL)) == 1  # a message waits to wake a blocked reader
    assert await queue.pools() == {POOL, "code"}


async def test_read_then_ack_removes_the_message(queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys) -> None:
    await queue.push([ready("a"), ready("b")])
    messages = await queue.read(POOL, "c1", count=10, block_ms=100)
    assert len(messages) == 2
    assert await redis_client.xlen(keys.stream(POOL)) == 2  # read is not removal
    await queue.ack(messages[0])
    assert await redis_client.xlen(keys.stream(POOL)) == 1
    pending = await redis_client.xpending(keys.stream(POOL), CONSUMER_GROUP)
    assert pending["pending"] == 1
    await queue.ack(messages[1])
    assert await redis_client.xlen(keys.stream(POOL)) == 0
    assert await queue.read(POOL, "c1", count=10, block_ms=50) == []


async def test_each_message_goes_to_one_consumer(queue: TaskQueue) -> None:
    await queue.push([ready(f"s{i}") for i in range(6)])
    first = await queue.read(POOL, "c1", count=4, block_ms=100)
    second = await queue.read(POOL, "c2", count=4, block_ms=100)
    assert len(first) == 4 and len(second) == 2
    assert {m.subtask_id for m in first}.isdisjoint({m.subtask_id for m in second})


async def test_an_unacked_message_is_reclaimed_by_another_consumer_after_min_idle(queue: TaskQueue) -> None:
    await queue.push([ready("a")])
    [held] = await queue.read(POOL, "dead-consumer", count=1, block_ms=100)
    assert await queue.reclaim(POOL, "c2", min_idle_s=0.2, count=10) == []  # not idle long enough yet
    await asyncio.sleep(0.25)
    [taken] = await queue.reclaim(POOL, "c2", min_idle_s=0.2, count=10)
    assert (taken.id, taken.subtask_id) == (held.id, "a")
    assert await queue.reclaim(POOL, "c3", min_idle_s=0.2, count=10) == []  # c2 holds it now, freshly


async def test_renew_prevents_reclaim(queue: TaskQueue) -> None:
    await queue.push([ready("kept"), ready("lost")])
    held = {m.subtask_id: m for m in await queue.read(POOL, "c1", count=2, block_ms=100)}
    await asyncio.sleep(0.25)
    await queue.renew(POOL, "c1", [held["kept"].id])
    reclaimed = await queue.reclaim(POOL, "c2", min_idle_s=0.2, count=10)
    assert [m.subtask_id for m in reclaimed] == ["lost"]


async def test_push_later_and_move_due_move_only_due_items(
    queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys
) -> None:
    await queue.push_later(ready("due", rank=4.5, priority=2), 0.0)
    await queue.push_later(ready("later"), 30.0)
    await queue.push_later(ready("other-pool", pool="code"), 0.0)
    assert await redis_client.zcard(keys.delayed) == 3
    assert await redis_client.xlen(keys.stream(POOL)) == 0
    assert await queue.move_due() == 2
    assert await queue.move_due() == 0  # moved once, not again
    assert await redis_client.zcard(keys.delayed) == 1
    [left] = await redis_client.zrange(keys.delayed, 0, -1)
    assert b'"subtask_id": "later"' in left
    [moved] = await queue.read(POOL, "c1", count=10, block_ms=100)
    assert (moved.subtask_id, moved.rank, moved.priority) == ("due", 4.5, 2)
    [elsewhere] = await queue.read("code", "c1", count=10, block_ms=100)
    assert elsewhere.subtask_id == "other-pool"


async def test_move_due_respects_its_limit(queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys) -> None:
    for i in range(5):
        await queue.push_later(ready(f"r{i}"), 0.0)
    assert await queue.move_due(limit=3) == 3
    assert await redis_client.zcard(keys.delayed) == 2
    assert (await queue.depth(POOL))[0] == 3


async def test_depth_counts_messages_and_the_age_of_the_oldest(queue: TaskQueue) -> None:
    assert await queue.depth(POOL) == (0, 0.0)
    await queue.push([ready("a")])
    await asyncio.sleep(0.3)
    await queue.push([ready("b")])
    count, age = await queue.depth(POOL)
    assert count == 2
    assert 0.25 <= age < 5.0
    for m in await queue.read(POOL, "c1", count=10, block_ms=100):
        await queue.ack(m)
    assert await queue.depth(POOL) == (0, 0.0)


async def test_dead_letter_writes_to_the_dead_stream(
    queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys
) -> None:
    await queue.push([ready("doomed")])
    [message] = await queue.read(POOL, "c1", count=1, block_ms=100)
    await queue.dead_letter(message.pool, message.task_id, message.subtask_id, "x" * 5000, attempts=4)
    [(_id, fields)] = await redis_client.xrange(keys.dead)
    fields = {k.decode(): v.decode() for k, v in fields.items()}
    assert fields["subtask_id"] == "doomed" and fields["pool"] == POOL and fields["attempts"] == "4"
    assert fields["task_id"] == message.task_id
    assert len(fields["reason"]) == 2000  # capped


async def test_a_second_queue_on_the_same_keys_shares_the_group(redis_client: aioredis.Redis, keys: Keys) -> None:
    one, two = TaskQueue(redis_client, keys), TaskQueue(redis_client, keys)
    await one.ensure_group(POOL)
    await two.ensure_group(POOL)  # BUSYGROUP is not an error
    await one.push([ready("a")])
    [m] = await two.read(POOL, "c2", count=1, block_ms=100)
    assert m.subtask_id == "a"


async def test_a_read_after_redis_lost_its_data_recreates_the_group(
    queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys
) -> None:
    await queue.push([ready("before")])
    assert [m.subtask_id for m in await queue.read(POOL, "c1", count=5, block_ms=100)] == ["before"]
    await redis_client.delete(keys.stream(POOL), keys.pools)  # what a restart without data leaves: nothing
    await queue.push([ready("after")])  # the stream comes back without its group
    assert [m.subtask_id for m in await queue.read(POOL, "c1", count=5, block_ms=100)] == ["after"]
    assert await queue.pools() == {POOL}
    await queue.renew(POOL, "c1", [])  # and the group commands work again
    assert await queue.reclaim(POOL, "c2", min_idle_s=0, count=5) != []


async def test_lost_data_is_reported_once_per_loss(queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys) -> None:
    assert await queue.lost_data() is True  # a Redis Reynolds has never written to: nothing to trust
    assert await queue.lost_data() is False
    other = TaskQueue(redis_client, keys)  # another Reynolds process
    assert await other.lost_data() is False
    await redis_client.delete(keys.epoch)
    assert [await other.lost_data(), await queue.lost_data()] == [True, False]


async def test_priority_holds_across_the_whole_backlog_not_only_what_was_read(queue: TaskQueue) -> None:
    await queue.push([ready(f"bulk{i}", rank=1) for i in range(500)])
    first = await queue.read(POOL, "c1", count=10, block_ms=100)  # a dispatcher holds its prefetch
    assert len(first) == 10
    await queue.push([ready("critical", rank=50), ready("urgent", rank=1, priority=5)])
    got = await queue.read(POOL, "c2", count=2, block_ms=100)  # any process: the two most urgent come next
    assert [m.subtask_id for m in got] == ["urgent", "critical"]
    assert (await queue.depth(POOL))[0] == 502


async def test_entries_acked_but_left_in_the_stream_do_not_stall_the_backlog(
    queue: TaskQueue, redis_client: aioredis.Redis, keys: Keys
) -> None:
    await queue.push([ready(f"s{i}") for i in range(3)])
    for m in await queue.read(POOL, "c1", count=3, block_ms=100):
        await redis_client.xack(keys.stream(POOL), CONSUMER_GROUP, m.id)  # acked, the XDEL lost
    await queue.push([ready("next"), ready("then")])
    assert [m.subtask_id for m in await queue.read(POOL, "c1", count=5, block_ms=100)] == ["next", "then"]
