"""Waking waiters: directly for changes made in this process, through one Redis pattern subscription for
changes made by any other."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis

from reynolds.keys import Keys
from reynolds.waiters import Waiters

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def relaying(waiters: Waiters) -> AsyncIterator[None]:
    """The relay from Redis to ``waiters`` runs for the length of the block."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiters.run)
        yield
        tg.cancel_scope.cancel()


async def until_heard(redis: aioredis.Redis, channel: str, message: str) -> None:
    """Publish until a subscriber receives it: the relay subscribes in the background."""
    for _ in range(500):
        if await redis.publish(channel, message):
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"nobody subscribed to {channel}")


async def test_a_local_change_wakes_only_that_tasks_watchers_and_nothing_is_a_timeout(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    waiters = Waiters(redis_client, keys)
    with waiters.watch("a") as a, waiters.watch("a") as a2, waiters.watch("b") as b:
        waiters.wake("a", final=False)
        assert await a.next(1.0) is False and await a2.next(1.0) is False
        assert await b.next(0.05) is None
        waiters.wake("b", final=True)
        assert await b.next(1.0) is True
    assert waiters._watches == {}  # nothing kept once the callers are gone


async def test_events_from_another_process_arrive_through_the_subscription(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    waiters = Waiters(redis_client, keys)
    async with relaying(waiters):
        with waiters.watch("t1") as watch:
            await until_heard(redis_client, keys.progress("t1"), '{"subtask": "x"}')
            assert await watch.next(5.0) is False
            await redis_client.publish(keys.progress("other"), '{"task": "succeeded"}')
            await redis_client.publish(keys.progress("t1"), '{"task": "succeeded"}')
            assert await watch.next(5.0) is True


async def test_a_prefix_with_glob_characters_is_matched_literally(redis_client: aioredis.Redis, keys: Keys) -> None:
    literal = Keys(f"{keys.prefix}[x]*")
    waiters = Waiters(redis_client, literal)
    async with relaying(waiters):
        with waiters.watch("t") as watch:
            await until_heard(redis_client, literal.progress("t"), "{}")
            assert await watch.next(5.0) is False
            await redis_client.publish(f"{keys.prefix}x-anything:progress:t", "{}")  # the glob would match this
            assert await watch.next(0.2) is None
