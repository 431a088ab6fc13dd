"""The fleet lease against a real Redis: one holder at a time, renewal, loss on expiry, takeover, release."""

from __future__ import annotations

import time

import anyio
import pytest
import redis.asyncio as aioredis

from reynolds.keys import Keys
from reynolds.leader import Lease

pytestmark = pytest.mark.anyio


def lease(redis: aioredis.Redis, keys: Keys, holder: str, ttl_s: float = 10.0) -> Lease:
    return Lease(redis, keys.lease("fleet"), holder, ttl_s)


async def until(check, what: str, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.02)


async def test_one_holder_at_a_time_and_the_holder_renews(redis_client: aioredis.Redis, keys: Keys) -> None:
    a, b = lease(redis_client, keys, "a"), lease(redis_client, keys, "b")
    assert await a.try_hold() and a.held
    assert not await b.try_hold() and not b.held
    await redis_client.pexpire(keys.lease("fleet"), 500)
    assert await a.try_hold()  # renewing restores the full ttl
    assert await redis_client.pttl(keys.lease("fleet")) > 5000
    assert await redis_client.get(keys.lease("fleet")) == b"a"


async def test_a_holder_that_stops_renewing_loses_the_lease_to_the_next(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    a, b = lease(redis_client, keys, "a", ttl_s=0.3), lease(redis_client, keys, "b", ttl_s=0.3)
    assert await a.try_hold()
    assert not await b.try_hold()
    # a dies (stops renewing): its own belief runs out, and then b can take the lease
    await until(lambda: _false(a.held), "a's belief to run out")
    await until(b.try_hold, "b to take over")
    assert not await a.try_hold(), "the old holder cannot renew a lease another process took"


async def test_belief_runs_out_no_later_than_the_key(redis_client: aioredis.Redis, keys: Keys) -> None:
    now = [100.0]
    a = Lease(redis_client, keys.lease("fleet"), "a", ttl_s=10.0, clock=lambda: now[0])
    assert await a.try_hold()
    now[0] += 9.99
    assert a.held
    now[0] += 0.01
    assert not a.held  # the key in Redis (set after the request was sent) is still there: nobody else leads yet
    assert await redis_client.get(keys.lease("fleet")) == b"a"


async def test_release_hands_over_at_once_and_only_the_holder_can_release(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    a, b = lease(redis_client, keys, "a"), lease(redis_client, keys, "b")
    assert await a.try_hold()
    await b.release()  # not the holder: changes nothing
    assert await redis_client.get(keys.lease("fleet")) == b"a"
    await a.release()
    assert not a.held
    assert await b.try_hold()


async def test_run_holds_the_lease_and_releases_it_when_cancelled(redis_client: aioredis.Redis, keys: Keys) -> None:
    a = lease(redis_client, keys, "a", ttl_s=1.0)
    tries = 0
    take = a.try_hold

    async def counted() -> bool:
        nonlocal tries
        tries += 1
        return await take()

    a.try_hold = counted  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.run)
        await until(lambda: _true(tries >= 4), "three renewals after the take")
        assert await redis_client.get(keys.lease("fleet")) == b"a"
        tg.cancel_scope.cancel()
    assert await redis_client.get(keys.lease("fleet")) is None


async def _true(value: bool) -> bool:
    return value


async def _false(value: bool) -> bool:
    return not value
