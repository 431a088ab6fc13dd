"""The autoscaler's decision function and one loop round with real callables (no Docker), and leadership: with
two processes only the holder of a real Redis lease scales."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from reynolds.autoscale import Autoscaler, Decision, Policy, PoolLoad, decide
from reynolds.keys import Keys
from reynolds.leader import Lease

POLICY = Policy(
    min_replicas=1, max_replicas=6, depth_per_replica=4, max_age_s=30, up_cooldown_s=30, down_cooldown_s=120
)


def test_grows_straight_to_what_the_queue_needs() -> None:
    d = decide("code", PoolLoad(depth=17, oldest_age_s=1, replicas=2), POLICY, None)
    assert (d.current, d.desired) == (2, 5)
    assert d.changes


def test_never_beyond_max_or_below_min() -> None:
    assert decide("code", PoolLoad(depth=500, oldest_age_s=1, replicas=3), POLICY, None).desired == 6
    assert decide("code", PoolLoad(depth=0, oldest_age_s=0, replicas=1), POLICY, None).desired == 1
    assert decide("code", PoolLoad(depth=0, oldest_age_s=0, replicas=0), POLICY, None).desired == 1


def test_old_work_adds_a_replica_even_if_depth_alone_would_not() -> None:
    d = decide("devops", PoolLoad(depth=2, oldest_age_s=95, replicas=2), POLICY, None)
    assert d.desired == 3
    assert "waited 95s" in d.reason


def test_shrinks_one_replica_at_a_time() -> None:
    assert decide("devops", PoolLoad(depth=0, oldest_age_s=0, replicas=5), POLICY, 600).desired == 4


def test_steady_when_load_matches() -> None:
    d = decide("devops", PoolLoad(depth=8, oldest_age_s=2, replicas=2), POLICY, None)
    assert not d.changes
    assert d.reason.startswith("steady")


def test_cooldowns_differ_for_growing_and_shrinking() -> None:
    grow = PoolLoad(depth=20, oldest_age_s=1, replicas=2)
    assert not decide("p", grow, POLICY, 10).changes
    assert decide("p", grow, POLICY, 31).desired == 5
    shrink = PoolLoad(depth=0, oldest_age_s=0, replicas=4)
    assert not decide("p", shrink, POLICY, 60).changes
    assert "cooling down" in decide("p", shrink, POLICY, 60).reason
    assert decide("p", shrink, POLICY, 121).desired == 3


def test_policy_rejects_impossible_bounds() -> None:
    with pytest.raises(ValueError, match="min_replicas"):
        Policy(min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="depth_per_replica"):
        Policy(depth_per_replica=0)


@pytest.mark.anyio
async def test_loop_scales_changed_pools_respects_cooldown_and_survives_failures() -> None:
    now = [1000.0]
    loads = {
        "code": PoolLoad(depth=12, oldest_age_s=1, replicas=1),
        "devops": PoolLoad(depth=4, oldest_age_s=1, replicas=1),
        "platform": None,  # reading this pool fails
    }
    scaled: list[tuple[str, int]] = []

    async def read_load(pool: str) -> PoolLoad:
        load = loads[pool]
        if load is None:
            raise ConnectionError("redis went away")
        return load

    async def scale(pool: str, replicas: int) -> None:
        scaled.append((pool, replicas))
        loads[pool] = PoolLoad(depth=loads[pool].depth, oldest_age_s=1, replicas=replicas)

    scaler = Autoscaler(["code", "devops", "platform"], read_load, scale, POLICY, clock=lambda: now[0])
    first = await scaler.tick()
    assert scaled == [("code", 3)]
    assert [d.pool for d in first] == ["code", "devops"]  # platform failed and was skipped

    loads["code"] = PoolLoad(depth=40, oldest_age_s=1, replicas=3)
    now[0] += 5
    await scaler.tick()
    assert scaled == [("code", 3)]  # within the cooldown
    now[0] += 30
    second = await scaler.tick()
    assert scaled == [("code", 3), ("code", 6)]
    assert Decision("code", 3, 6, second[0].reason) == second[0]


@pytest.mark.anyio
async def test_only_the_lease_holder_scales(redis_client: aioredis.Redis, keys: Keys) -> None:
    scaled: list[tuple[str, str, int]] = []

    def process(name: str) -> tuple[Lease, Autoscaler]:
        lease = Lease(redis_client, keys.lease("fleet"), name)

        async def read_load(pool: str) -> PoolLoad:
            return PoolLoad(depth=12, oldest_age_s=1, replicas=1)

        async def scale(pool: str, replicas: int) -> None:
            scaled.append((name, pool, replicas))  # the recorded stand-in for the Docker scaler

        return lease, Autoscaler(["code"], read_load, scale, POLICY, leads=lambda: lease.held)

    (lease_a, a), (lease_b, b) = process("a"), process("b")
    assert await lease_a.try_hold() and not await lease_b.try_hold()
    assert await a.tick() and await b.tick() == []
    assert scaled == [("a", "code", 3)]

    await lease_a.release()  # a shuts down; b takes over, and a no longer scales
    assert await lease_b.try_hold()
    assert await a.tick() == [] and await b.tick()
    assert scaled == [("a", "code", 3), ("b", "code", 3)]  # the same absolute count: acting twice is harmless
