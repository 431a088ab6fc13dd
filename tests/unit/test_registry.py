"""The replica registry against a real Redis: registration, heartbeats and expiry, the tool catalog, static
replicas from the pools file (kept, added and removed on reload), what is kept of a hostile tools/list, and the
choice of a replica (load, success record, health, circuits, concurrency, avoidance). Probes are MCP requests
to a real server process (a plain SDK server without /health); health URLs are served by a Starlette app
through httpx2's ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reynolds.config import Settings
from reynolds.keys import Keys
from reynolds.pools import PoolSpec, load_pools
from reynolds.registry import CACHE_S, MAX_DESCRIPTION, MAX_TOOLS, Registry, Replica
from reynolds.sessions import Sessions
from tests.servers import process

pytestmark = pytest.mark.anyio


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"heartbeat_ttl_s": 15, "unhealthy_after": 2, "circuit_open_s": 0.2}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def replica(
    agent_id: str, pool: str = "workbench", tools: list[str] | None = None, max_concurrency: int = 4
) -> Replica:
    return Replica(
        agent_id=agent_id,
        pool=pool,
        agent_type=pool,
        url=f"http://{agent_id}:8080/mcp",
        max_concurrency=max_concurrency,
        tools=tools or ["echo"],
    )


@pytest.fixture
def registry(redis_client: aioredis.Redis, keys: Keys) -> Registry:
    return Registry(redis_client, keys, settings())


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain MCP server (no /health) running as a process."""
    port = process.free_port()
    proc = process.start(port, "probed", tmp_path_factory.mktemp("plain") / "server.log")
    yield f"http://127.0.0.1:{port}/mcp"
    process.kill(proc)


@asynccontextmanager
async def open_sessions() -> AsyncIterator[Sessions]:
    async with anyio.create_task_group() as tg:
        sessions = Sessions(tg)
        yield sessions
        await sessions.close_all()
        tg.cancel_scope.cancel()


def health_app() -> httpx2.AsyncClient:
    """Health URLs answered by host: ``up`` says 200, anything else 503."""

    async def health(request: Request) -> JSONResponse:
        ok = request.url.hostname == "up"
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=Starlette(routes=[Route("/health", health)])))


def spec(name: str, **fields: object) -> PoolSpec:
    return PoolSpec.model_validate({"name": name, **fields})


async def seen(registry: Registry, pool: str | None = None) -> list[str]:
    """Agent ids the registry sees (each test reads only after a change, which clears the read cache)."""
    return sorted(r.agent_id for r in await registry.replicas(pool))


def fail_calls(registry: Registry, r: Replica, n: int) -> None:
    for _ in range(n):
        registry.call_started(r)
        registry.call_finished(r, False)


def succeed_calls(registry: Registry, r: Replica, n: int) -> None:
    for _ in range(n):
        registry.call_started(r)
        registry.call_finished(r, True)


# ---------------------------------------------------------------- membership


async def test_register_makes_a_replica_visible_with_its_details(registry: Registry) -> None:
    await registry.register(replica("w1", tools=["echo", "sleep"], max_concurrency=7))
    [seen] = await registry.replicas("workbench")
    assert (seen.agent_id, seen.pool, seen.url, seen.max_concurrency, seen.tools) == (
        "w1",
        "workbench",
        "http://w1:8080/mcp",
        7,
        ["echo", "sleep"],
    )
    assert seen.heartbeat_at is not None and not seen.static
    assert await registry.replicas("code") == []


async def test_registration_expires_without_heartbeats_and_heartbeats_keep_it(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    registry = Registry(redis_client, keys, settings(heartbeat_ttl_s=1))  # key lives int(1) + 1 = 2 s
    await registry.register(replica("beating"))
    await registry.register(replica("silent"))
    assert 1000 < await redis_client.pttl(keys.agent("workbench", "silent")) <= 2000
    for _ in range(5):
        await asyncio.sleep(0.45)
        assert await registry.heartbeat("workbench", "beating") is True
    assert await seen(registry) == ["beating"]
    # the expired member is pruned from the pool's set on read
    assert await redis_client.smembers(keys.pool_agents("workbench")) == {b"beating"}
    assert await registry.heartbeat("workbench", "silent") is False


async def test_heartbeat_for_an_unknown_agent_is_refused_and_leaves_no_stub(
    registry: Registry, redis_client: aioredis.Redis, keys: Keys
) -> None:
    assert await registry.heartbeat("workbench", "stranger") is False
    assert await redis_client.exists(keys.agent("workbench", "stranger")) == 0
    assert await seen(registry) == []


async def test_deregister_removes_the_replica(registry: Registry) -> None:
    await registry.register(replica("w1"))
    await registry.register(replica("w2"))
    await registry.deregister("workbench", "w1")
    assert await seen(registry) == ["w2"]


async def test_replicas_are_cached_briefly(registry: Registry, redis_client: aioredis.Redis, keys: Keys) -> None:
    await registry.register(replica("w1"))
    assert await seen(registry) == ["w1"]
    await redis_client.delete(keys.agent("workbench", "w1"))  # gone behind the registry's back
    assert [r.agent_id for r in await registry.replicas()] == ["w1"]
    await asyncio.sleep(CACHE_S + 0.05)
    assert await registry.replicas() == []


async def test_catalog_maps_tools_to_pools_including_static_ones(registry: Registry, tmp_path: Path) -> None:
    await registry.register(replica("w1", tools=["echo", "sleep"]))
    await registry.register(replica("w2", tools=["echo", "sleep"]))
    await registry.register(replica("c1", pool="code", tools=["lint", "echo"]))
    pools_file = tmp_path / "pools.yaml"
    pools_file.write_text("pools:\n  - name: search\n    url: http://search:9000/mcp\n")
    [static], removed = registry.set_static(load_pools(pools_file))
    assert (static.agent_id, static.static, static.url, removed) == ("search-0", True, "http://search:9000/mcp", [])
    static.learn([types.Tool(name="find", input_schema={"type": "object"})])
    assert await registry.catalog() == {
        "echo": {"workbench", "code"},
        "sleep": {"workbench"},
        "lint": {"code"},
        "find": {"search"},
    }


# ---------------------------------------------------------------- choosing


async def test_choose_prefers_the_least_loaded_replica(registry: Registry) -> None:
    a, b = replica("a"), replica("b")
    await registry.register(a)
    await registry.register(b)
    registry.call_started(a)
    for _ in range(10):
        assert (await registry.choose("workbench")).agent_id == "b"
    registry.call_started(b)
    registry.call_started(b)
    assert (await registry.choose("workbench")).agent_id == "a"


async def test_load_is_relative_to_max_concurrency(registry: Registry) -> None:
    big, small = replica("big", max_concurrency=10), replica("small", max_concurrency=2)
    await registry.register(big)
    await registry.register(small)
    registry.call_started(big)
    registry.call_started(big)
    registry.call_started(small)
    assert (await registry.choose("workbench")).agent_id == "big"  # 2/10 beats 1/2


async def test_choose_breaks_load_ties_by_success_rate(registry: Registry) -> None:
    good, shaky = replica("good"), replica("shaky")
    await registry.register(good)
    await registry.register(shaky)
    succeed_calls(registry, good, 3)
    succeed_calls(registry, shaky, 1)
    fail_calls(registry, shaky, 1)  # one failure: circuit still closed
    assert registry.health_of(shaky).circuit.current() == "closed"
    for _ in range(10):
        assert (await registry.choose("workbench")).agent_id == "good"


async def test_choose_skips_replicas_that_do_not_answer_mcp_probes(registry: Registry, mcp_url: str) -> None:
    up, down = replica("up"), replica("down")
    up.url, down.url = mcp_url, f"http://127.0.0.1:{process.free_port()}/mcp"  # nothing listens there
    await registry.register(up)
    await registry.register(down)
    async with open_sessions() as sessions, health_app() as http:
        await registry.probe_all(sessions, http)
        assert registry.health_of(down).healthy  # one failed probe is not enough (unhealthy_after=2)
        await registry.probe_all(sessions, http)
    assert not registry.health_of(down).healthy and registry.health_of(up).healthy
    for _ in range(10):
        assert (await registry.choose("workbench")).agent_id == "up"
    assert await registry.capacity("workbench") == up.max_concurrency
    await registry.deregister("workbench", "up")
    assert await registry.choose("workbench") is None


async def test_a_health_url_is_checked_besides_the_mcp_probe(registry: Registry, mcp_url: str) -> None:
    registry.set_static(
        [
            spec("fine", url=mcp_url, health_url="http://up/health"),
            spec("sick", url=mcp_url, health_url="http://sick/health"),
            spec("plain", url=mcp_url),
        ]
    )
    async with open_sessions() as sessions, health_app() as http:
        for _ in range(2):
            await registry.probe_all(sessions, http)
    healthy = {r.pool: registry.health_of(r).healthy for r in await registry.replicas()}
    assert healthy == {"fine": True, "sick": False, "plain": True}
    # probing connected the static replicas, and connecting learned their tools
    assert all("where" in r.tools for r in await registry.replicas())


async def test_a_probe_heals_a_replica_that_could_not_be_connected(registry: Registry, mcp_url: str) -> None:
    [static], _ = registry.set_static([spec("late", url=mcp_url)])
    registry.mark_unhealthy(static)
    assert not registry.health_of(static).healthy and await registry.choose("late") is None
    async with open_sessions() as sessions, health_app() as http:
        await registry.probe_all(sessions, http)
    assert registry.health_of(static).healthy and (await registry.choose("late")) is static


async def test_choose_skips_replicas_whose_circuit_is_open(registry: Registry) -> None:
    flaky, steady = replica("flaky"), replica("steady")
    await registry.register(flaky)
    await registry.register(steady)
    registry.call_started(steady)
    registry.call_started(steady)  # steady is busier, so only the open circuit keeps flaky out
    fail_calls(registry, flaky, 2)
    assert registry.health_of(flaky).circuit.current() == "open"
    assert (await registry.choose("workbench")).agent_id == "steady"
    assert await registry.capacity("workbench") == 2


async def test_choose_respects_max_concurrency(registry: Registry) -> None:
    only = replica("only", max_concurrency=2)
    await registry.register(only)
    registry.call_started(only)
    assert (await registry.choose("workbench")).agent_id == "only"
    registry.call_started(only)
    assert await registry.choose("workbench") is None
    assert await registry.capacity("workbench") == 0
    registry.call_finished(only, True)
    assert (await registry.choose("workbench")).agent_id == "only"


async def test_avoid_is_honoured_while_another_replica_exists(registry: Registry) -> None:
    a, b = replica("a"), replica("b")
    await registry.register(a)
    await registry.register(b)
    registry.call_started(b)  # b is busier, yet a is the one to avoid
    assert (await registry.choose("workbench", avoid="a")).agent_id == "b"
    registry.call_started(b)
    registry.call_started(b)
    registry.call_started(b)  # b is full
    assert (await registry.choose("workbench", avoid="a")).agent_id == "a"  # nothing else: a after all


async def test_a_half_open_trial_ending_without_a_verdict_frees_the_trial_slot(registry: Registry) -> None:
    # a trial call that ends with no word on the replica (claim lost, task cancelled, moved to another
    # replica) must not leave the circuit waiting for a verdict that will never come
    only = replica("only")
    await registry.register(only)
    fail_calls(registry, only, 2)
    await asyncio.sleep(0.25)  # circuit_open_s = 0.2
    assert (await registry.choose("workbench")).agent_id == "only"
    registry.call_started(only)
    assert await registry.choose("workbench") is None  # one trial at a time
    registry.call_finished(only, None)
    assert (await registry.choose("workbench")) is not None


async def test_probe_all_forgets_health_of_replicas_that_left(registry: Registry) -> None:
    await registry.register(replica("gone"))
    registry.health_of((await registry.replicas())[0])
    await registry.deregister("workbench", "gone")
    async with open_sessions() as sessions, health_app() as http:
        await registry.probe_all(sessions, http)
    assert registry.health == {}


# ---------------------------------------------------------------- static replicas (the pools file)


async def test_set_static_keeps_unchanged_replicas_adds_new_ones_and_removes_the_rest(registry: Registry) -> None:
    added, _ = registry.set_static([spec("s", urls=["http://a/mcp", "http://b/mcp"]), spec("f", command=["srv"])])
    assert [(r.agent_id, r.url) for r in added] == [
        ("s-0", "http://a/mcp"),
        ("s-1", "http://b/mcp"),
        ("f-0", "stdio#0"),
    ]
    a = added[0]
    fail_calls(registry, a, 1)  # some history that a reload must not wipe
    added, removed = registry.set_static([spec("s", urls=["http://a/mcp", "http://c/mcp"])])
    assert [(r.agent_id, r.url) for r in added] == [("s-2", "http://c/mcp")]  # ids are never reused
    assert sorted(r.agent_id for r in removed) == ["f-0", "s-1"]
    assert await seen(registry) == ["s-0", "s-2"]
    assert (await registry.replicas("s"))[0] is a and registry.health_of(a).failures == 1


async def test_a_changed_entry_replaces_its_replicas(registry: Registry) -> None:
    [old], _ = registry.set_static([spec("s", url="http://a/mcp")])
    [new], [gone] = registry.set_static([spec("s", url="http://a/mcp", max_concurrency=2)])
    assert gone is old and (new.agent_id, new.max_concurrency) == ("s-1", 2)
    assert registry.set_static([spec("s", url="http://a/mcp", max_concurrency=2)]) == ([], [])


def test_learn_keeps_what_a_lying_tools_list_cannot_hurt_planning_with() -> None:
    r = replica("liar")
    listed = [
        types.Tool(name="ok", description="d" * 5000, input_schema={"type": "object"}),
        types.Tool(name="ok", description="a second 'ok'", input_schema={"type": "object"}),
        types.Tool(name="bad name; rm -rf /", input_schema={"type": "object"}),
        types.Tool(name="x" * 129, input_schema={"type": "object"}),
        types.Tool(name="big", input_schema={"type": "object", "description": "y" * 100_000}),
        *[types.Tool(name=f"t{i}", input_schema={"type": "object"}) for i in range(MAX_TOOLS + 5)],
    ]
    r.learn(listed)
    assert r.tools[:2] == ["ok", "big"] and len(r.tools) == MAX_TOOLS
    assert len(r.specs["ok"]["description"]) == MAX_DESCRIPTION
    assert r.specs["big"]["input_schema"] is None  # too large to keep: that tool's arguments go unchecked
