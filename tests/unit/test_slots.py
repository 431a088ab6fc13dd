"""Call slots shared by several Reynolds processes, against a real Redis: the cap holds across processes,
held slots are reused without a round trip, unused ones go back, a dead process's slots lapse."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from reynolds.keys import Keys
from reynolds.registry import Replica
from reynolds.slots import Slots

pytestmark = pytest.mark.anyio

AGENT = Replica(
    agent_id="wb-0", pool="workbench", agent_type="workbench", url="http://x/mcp", max_concurrency=3, tools=[]
)


async def holdings(redis: aioredis.Redis, keys: Keys) -> dict[str, int]:
    """process -> slots held on AGENT, as Redis has it (without the waiting marks)."""
    row = await redis.hgetall(keys.slots("workbench", "wb-0"))
    return {k.decode(): int(v) for k, v in row.items() if not k.startswith(b"wait:")}


async def start(slots: Slots, n: int = 1) -> None:
    for _ in range(n):
        assert await slots.take(AGENT)
        slots.started(AGENT)


def count_takes(slots: Slots) -> list[int]:
    calls: list[int] = []
    script = slots._take

    async def counted(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return await script(**kwargs)

    slots._take = counted  # type: ignore[assignment]
    return calls


async def test_two_processes_never_hold_more_than_the_replica_takes(redis_client: aioredis.Redis, keys: Keys) -> None:
    a, b = Slots(redis_client, keys, "a"), Slots(redis_client, keys, "b")
    await start(a, 2)
    await start(b)
    assert not await b.take(AGENT) and not await a.take(AGENT)
    assert a.free(AGENT) == 0 and b.free(AGENT) == 0  # each refusal also told them what the other holds
    assert a.busy(AGENT) == b.busy(AGENT) == 3
    assert await holdings(redis_client, keys) == {"a": 2, "b": 1}


async def test_a_held_slot_is_reused_without_asking_redis(redis_client: aioredis.Redis, keys: Keys) -> None:
    a = Slots(redis_client, keys, "a")
    takes = count_takes(a)
    await start(a)
    for _ in range(5):
        a.finished(AGENT)
        await start(a)
    assert len(takes) == 1


async def test_slots_unused_for_a_whole_flush_go_back(redis_client: aioredis.Redis, keys: Keys) -> None:
    a, b = Slots(redis_client, keys, "a"), Slots(redis_client, keys, "b")
    await start(a, 3)
    a.finished(AGENT)
    a.finished(AGENT)
    await a.flush()  # one slot went unused only part of the interval: it is kept for a moment
    assert await holdings(redis_client, keys) == {"a": 3}
    await a.flush()  # now two stayed unused for a whole interval
    assert await holdings(redis_client, keys) == {"a": 1}
    await start(b, 2)
    a.finished(AGENT)
    await a.flush()
    await a.flush()
    assert await holdings(redis_client, keys) == {"b": 2}


async def test_a_dead_process_holds_nothing(redis_client: aioredis.Redis, keys: Keys) -> None:
    a, b = Slots(redis_client, keys, "a"), Slots(redis_client, keys, "b")
    await start(a, 3)
    assert not await b.take(AGENT)
    await redis_client.delete(keys.process("a"))  # what expiry does when a stops renewing
    await start(b, 3)
    assert await holdings(redis_client, keys) == {"b": 3}


async def test_refresh_and_release_all(redis_client: aioredis.Redis, keys: Keys) -> None:
    a, b = Slots(redis_client, keys, "a"), Slots(redis_client, keys, "b")
    await start(a, 2)
    await b.refresh([AGENT])
    assert (b.busy(AGENT), b.free(AGENT), b.load(AGENT)) == (2, 1, 2 / 3)
    await a.release_all()
    await b.refresh([AGENT])
    assert b.free(AGENT) == 3
    assert not await redis_client.exists(keys.process("a"))


async def test_holdings_come_back_after_redis_lost_them(redis_client: aioredis.Redis, keys: Keys) -> None:
    a, b = Slots(redis_client, keys, "a"), Slots(redis_client, keys, "b")
    await start(a, 2)
    await redis_client.delete(keys.slots("workbench", "wb-0"), keys.process("a"))  # a Redis restarted empty
    await a.renew()
    await start(b)
    assert not await b.take(AGENT)


async def test_while_another_process_waits_a_busy_one_keeps_only_a_fair_share(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    a, b = Slots(redis_client, keys, "a"), Slots(redis_client, keys, "b")
    await start(a, 3)
    assert not await b.take(AGENT)  # full: b now waits
    a.finished(AGENT)
    await a.refresh([AGENT])  # a learns that b waits ...
    assert not await a.take(AGENT)  # ... so it does not reuse its third slot: 3 > ceil(3 / 2)
    await a.flush()
    await a.flush()  # the slot a could not use goes back
    assert await b.take(AGENT)
    b.started(AGENT)
    assert await holdings(redis_client, keys) == {"a": 2, "b": 1}
    a.finished(AGENT)
    b.finished(AGENT)
    await start(a)  # nobody waits any more: a reuses its slot without a refusal
