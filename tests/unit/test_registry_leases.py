"""Registry leases and pool pruning against a real Redis: a live id is held by one lease, only that lease
renews it, and only pools with no replica, no queued work and no recent agent are forgotten."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from reynolds.config import Settings
from reynolds.keys import Keys
from reynolds.registry import Registry, Replica

pytestmark = pytest.mark.anyio


def registry(redis_client: aioredis.Redis, keys: Keys) -> Registry:
    return Registry(redis_client, keys, Settings(heartbeat_ttl_s=15))


def replica(agent_id: str, pool: str = "workbench") -> Replica:
    url = f"http://{agent_id}:8080/mcp"
    return Replica(agent_id=agent_id, pool=pool, agent_type=pool, url=url, max_concurrency=4, tools=["echo"])


async def test_a_live_id_belongs_to_one_lease(redis_client: aioredis.Redis, keys: Keys) -> None:
    reg = registry(redis_client, keys)
    assert await reg.lease_holder("workbench", "a") is None
    assert await reg.claim("workbench", "a", "lease-1")
    await reg.register(replica("a"))
    assert await reg.lease_holder("workbench", "a") == "lease-1"
    assert not await reg.claim("workbench", "a", "lease-2")  # a second registration with another lease
    assert await reg.claim("workbench", "a", "lease-1")  # the holder registers again (lost connection)
    assert await reg.renew("workbench", "a", "lease-1") == 1
    assert await reg.renew("workbench", "a", "lease-2") == -1
    assert await reg.renew("workbench", "gone", "lease-1") == 0  # unknown: register again
    assert not await redis_client.exists(keys.agent("workbench", "gone"))


async def test_a_registration_from_before_leases_can_be_claimed(redis_client: aioredis.Redis, keys: Keys) -> None:
    reg = registry(redis_client, keys)
    await reg.register(replica("old"))  # no lease field
    assert await reg.lease_holder("workbench", "old") is None
    assert await reg.renew("workbench", "old", "any") == 0  # asked to register, which gives it a lease
    assert await reg.claim("workbench", "old", "lease-new")


async def test_only_unused_pools_are_pruned(redis_client: aioredis.Redis, keys: Keys) -> None:
    reg = registry(redis_client, keys)
    await reg.claim("live", "a", "l")
    await reg.register(replica("a", "live"))
    await redis_client.sadd(keys.pools, "junk", "busy", "recent")
    await redis_client.xadd(keys.stream("busy"), {"task_id": "t"})  # queued work
    await redis_client.hset(keys.pool_seen, "recent", 10**12)  # an agent seen "now" (far future)
    assert await reg.prune_pools(grace_s=60) == ["junk"]
    remaining = {p.decode() for p in await redis_client.smembers(keys.pools)}
    assert remaining == {"live", "busy", "recent"}
