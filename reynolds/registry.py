"""Which replicas exist, what they offer, and which one should take the next call.

Self-registered agents live in Redis (a hash per replica that expires unless heartbeats renew it),
so every Reynolds process sees the same fleet. Extra pools from the pools file are static replicas
every process knows from its own configuration (one per URL, or per stdio child). Health and circuits
are this process's own view, built from its probes and its calls; call slots are shared by the whole
fleet (reynolds/slots.py). A probe is MCP's own liveness request over the replica's pooled session (plus
the pool's ``health_url`` when it has one).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp_types as types
import redis.asyncio as aioredis
import structlog
from mcp import StdioServerParameters

from reynolds import errors
from reynolds.auth import agent_token_for
from reynolds.config import Settings
from reynolds.health import Circuit, ReplicaHealth
from reynolds.keys import Keys
from reynolds.plan import bounded_schema
from reynolds.pools import PoolSpec
from reynolds.sessions import Endpoint, Sessions
from reynolds.slots import Slots

log = structlog.get_logger("reynolds.registry")
CACHE_S = 0.5  # how long a read of the fleet from Redis is reused
MAX_DESCRIPTION = 1000  # characters of a tool description kept for planning
MAX_TOOLS = 1000  # tools kept from one replica's tools/list
TOOL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # the MCP spec's tool names
PROBE_TIMEOUT_S = 5.0  # one probe: reconnecting if need be, then the liveness request

# Leases: a registration holds sha256(lease) in its hash; only the holder of the lease may renew it, and a
# live id cannot be registered with another lease until it expires. Scripts keep check and write atomic.
CLAIM_LUA = """
local held = redis.call('HGET', KEYS[1], 'lease')
if held and held ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
RENEW_LUA = """
if redis.call('HEXISTS', KEYS[1], 'url') == 0 then return 0 end
local held = redis.call('HGET', KEYS[1], 'lease')
if not held then return 0 end
if held ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
# A pool goes when nobody was seen in it since the cutoff, no replica is registered and its stream is empty.
PRUNE_LUA = """
if tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') > tonumber(ARGV[2]) then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('XLEN', KEYS[3]) > 0 then return 0 end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""


@dataclass
class Replica:
    agent_id: str
    pool: str
    agent_type: str
    url: str
    max_concurrency: int
    tools: list[str]
    heartbeat_at: float | None = None
    specs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # name -> description, schema
    static: bool = False
    token: str | None = None
    stdio: StdioServerParameters | None = field(default=None, repr=False)
    health_url: str | None = None

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.agent_id}"

    def learn(self, tools: Sequence[types.Tool]) -> None:
        """Take the replica's ``tools/list``: names for routing, descriptions and schemas for planning. What a
        server lists is not trusted: bad or repeated names, oversized schemas and a flood of tools are dropped."""
        kept: dict[str, dict[str, Any]] = {}
        for t in tools:
            if len(kept) >= MAX_TOOLS or not TOOL_NAME.match(t.name) or t.name in kept:
                continue
            kept[t.name] = {
                "description": (t.description or "")[:MAX_DESCRIPTION],
                "input_schema": bounded_schema(t.input_schema),  # None: too large or not a schema; unchecked
                # readOnlyHint, destructiveHint ...: the planners never pick a destructive tool unasked
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {},
            }
        if len(kept) < len(tools):
            log.warning("tools dropped from a tools/list", agent=self.key, listed=len(tools), kept=len(kept))
        self.tools = list(kept)
        self.specs = kept

    def endpoint(self, settings: Settings) -> Endpoint:
        """How to reach this replica: a static pool's own token, else the token of the replica's pool."""
        agent_token = agent_token_for(settings, self.pool)
        learn = self.learn if self.static else None  # agents declare their tools when they register
        if self.stdio is not None:
            return Endpoint(self.key, stdio=self.stdio, on_tools=learn)
        return Endpoint(self.key, url=self.url, token=self.token if self.static else agent_token, on_tools=learn)

    def same_source(self, other: Replica) -> bool:
        """Would both reach the same server the same way (so a reload may keep this one, health and all)?"""
        return (self.pool, self.url, self.token, self.stdio, self.health_url, self.max_concurrency) == (
            other.pool,
            other.url,
            other.token,
            other.stdio,
            other.health_url,
            other.max_concurrency,
        )


def static_replicas(spec: PoolSpec) -> list[Replica]:
    """The replicas a pools-file entry describes (ids are given when they join the registry)."""
    if not spec.command:
        return [_static(spec, url, health_url=spec.health_for(url), token=spec.token) for url in spec.replica_urls]
    stdio = StdioServerParameters(command=spec.command[0], args=spec.command[1:], env=spec.env or None, cwd=spec.cwd)
    return [_static(spec, f"stdio#{i}", stdio=stdio) for i in range(spec.replicas)]


def _static(spec: PoolSpec, url: str, **how: Any) -> Replica:
    return Replica(
        agent_id="",
        pool=spec.name,
        agent_type="external",
        url=url,
        max_concurrency=spec.max_concurrency,
        tools=[],
        static=True,
        **how,
    )


class Registry:
    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.static: list[Replica] = []
        self._next_index: dict[str, int] = {}  # per pool: static replica ids are never reused in a process
        self.health: dict[str, ReplicaHealth] = {}
        self._cache: tuple[float, list[Replica]] = (0.0, [])
        self.changed = anyio.Event()  # set whenever capacity may have appeared
        self.slots = Slots(redis, keys)  # call slots shared with every Reynolds process

    # ------------------------------------------------------------------ membership
    async def register(self, replica: Replica) -> None:
        key = self.keys.agent(replica.pool, replica.agent_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "agent_id": replica.agent_id,
                    "pool": replica.pool,
                    "agent_type": replica.agent_type,
                    "url": replica.url,
                    "max_concurrency": replica.max_concurrency,
                    "tools": json.dumps(replica.tools),
                    "specs": json.dumps(replica.specs),
                    "heartbeat_at": time.time(),
                },
            )
            pipe.expire(key, int(self.settings.heartbeat_ttl_s) + 1)
            pipe.sadd(self.keys.pool_agents(replica.pool), replica.agent_id)
            pipe.sadd(self.keys.pools, replica.pool)
            await pipe.execute()
        self._health(replica.key).probe_failures = 0
        self._invalidate()

    async def heartbeat(self, pool: str, agent_id: str) -> bool:
        """Renew a registration; False when Reynolds has forgotten it (the agent must register again)."""
        key = self.keys.agent(pool, agent_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "heartbeat_at", time.time())
            pipe.expire(key, int(self.settings.heartbeat_ttl_s) + 1)
            pipe.hexists(key, "url")
            _, _, known = await pipe.execute()
        if not known:
            await self.redis.delete(key)  # the HSET above created a stub; drop it
        return bool(known)

    # ------------------------------------------------------------------ leases (identity)
    async def lease_holder(self, pool: str, agent_id: str) -> str | None:
        """The lease hash of a live registration of this id (None: free, or registered before leases)."""
        key = self.keys.agent(pool, agent_id)
        url, held = await self.redis.hmget(key, ["url", "lease"])
        return held.decode() if url and held else None

    async def claim(self, pool: str, agent_id: str, lease_hash: str) -> bool:
        """Take the id for ``lease_hash``; False when another lease holds it. ``register`` follows."""
        keys = [self.keys.agent(pool, agent_id), self.keys.pool_seen]
        ttl = int(self.settings.heartbeat_ttl_s) + 1
        return bool(await self.redis.eval(CLAIM_LUA, 2, *keys, lease_hash, ttl, pool, time.time()))

    async def renew(self, pool: str, agent_id: str, lease_hash: str) -> int:
        """Heartbeat under a lease: 1 renewed, 0 unknown (register again), -1 held by another lease."""
        keys = [self.keys.agent(pool, agent_id), self.keys.pool_seen]
        ttl = int(self.settings.heartbeat_ttl_s) + 1
        return int(await self.redis.eval(RENEW_LUA, 2, *keys, lease_hash, ttl, pool, time.time()))

    async def prune_pools(self, grace_s: float) -> list[str]:
        """Forget pools with no replica, no queued work and no static definition, unseen for ``grace_s``."""
        live = {r.pool for r in await self.replicas()}
        cutoff = time.time() - grace_s
        pruned = []
        for pool in [p.decode() for p in await self.redis.smembers(self.keys.pools)]:
            if pool in live:
                continue
            keys = [self.keys.pools, self.keys.pool_agents(pool), self.keys.stream(pool), self.keys.pool_seen]
            if await self.redis.eval(PRUNE_LUA, 4, *keys, pool, cutoff):
                pruned.append(pool)
        return pruned

    async def deregister(self, pool: str, agent_id: str) -> None:
        await self.redis.delete(self.keys.agent(pool, agent_id))
        await self.redis.srem(self.keys.pool_agents(pool), agent_id)
        self._invalidate()

    def set_static(self, specs: Sequence[PoolSpec]) -> tuple[list[Replica], list[Replica]]:
        """Make the static replicas those ``specs`` describe. One that reaches the same server the same way is
        kept as it is (health, circuit, tools); returns (added, removed)."""
        wanted = [r for spec in specs for r in static_replicas(spec)]
        kept: list[Replica] = []
        added: list[Replica] = []
        for new in wanted:
            old = next((r for r in self.static if r.same_source(new) and r not in kept), None)
            if old is not None:
                kept.append(old)
                continue
            index = self._next_index.get(new.pool, 0)
            self._next_index[new.pool] = index + 1
            new.agent_id = f"{new.pool}-{index}"
            added.append(new)
        removed = [r for r in self.static if r not in kept]
        self.static = kept + added
        self._invalidate()
        return added, removed

    def mark_unhealthy(self, replica: Replica) -> None:
        """Until a probe answers (a replica that could not even be connected to)."""
        self._health(replica.key).probe_failures = self.settings.unhealthy_after

    async def replicas(self, pool: str | None = None) -> list[Replica]:
        now = time.monotonic()
        stamp, cached = self._cache
        if now - stamp > CACHE_S:
            cached = [*self.static, *await self._registered()]
            self._cache = (now, cached)
        return [r for r in cached if pool is None or r.pool == pool]

    async def _registered(self) -> list[Replica]:
        found: list[Replica] = []
        pools = [p.decode() for p in await self.redis.smembers(self.keys.pools)]
        for pool in pools:
            ids = [a.decode() for a in await self.redis.smembers(self.keys.pool_agents(pool))]
            if not ids:
                continue
            async with self.redis.pipeline(transaction=False) as pipe:
                for agent_id in ids:
                    pipe.hgetall(self.keys.agent(pool, agent_id))
                rows = await pipe.execute()
            gone = []
            for agent_id, row in zip(ids, rows, strict=True):
                h = {k.decode(): v.decode() for k, v in row.items()}
                if "url" not in h:
                    gone.append(agent_id)
                    continue
                found.append(
                    Replica(
                        agent_id=agent_id,
                        pool=pool,
                        agent_type=h["agent_type"],
                        url=h["url"],
                        max_concurrency=int(h["max_concurrency"]),
                        tools=json.loads(h["tools"]),
                        specs=json.loads(h.get("specs", "{}")),
                        heartbeat_at=float(h["heartbeat_at"]),
                    )
                )
            if gone:
                await self.redis.srem(self.keys.pool_agents(pool), *gone)
        return found

    def _invalidate(self) -> None:
        self._cache = (0.0, [])
        self.changed.set()
        self.changed = anyio.Event()

    async def tool_specs(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(pool, tool) -> description and input schema, for planners."""
        specs: dict[tuple[str, str], dict[str, Any]] = {}
        for r in await self.replicas():
            for name, spec in r.specs.items():
                specs.setdefault((r.pool, name), spec)
        return specs

    async def catalog(self) -> dict[str, set[str]]:
        """tool name -> pools whose replicas offer it."""
        offered: dict[str, set[str]] = {}
        for r in await self.replicas():
            for tool in r.tools:
                offered.setdefault(tool, set()).add(r.pool)
        return offered

    # ------------------------------------------------------------------ choosing
    def _health(self, key: str) -> ReplicaHealth:
        h = self.health.get(key)
        if h is None:
            h = self.health[key] = ReplicaHealth(
                Circuit(self.settings.unhealthy_after, self.settings.circuit_open_s),
                unhealthy_after=self.settings.unhealthy_after,
            )
        return h

    def health_of(self, replica: Replica) -> ReplicaHealth:
        return self._health(replica.key)

    async def choose(self, pool: str, avoid: str | None = None, prefer: str | None = None) -> Replica | None:
        """A healthy replica with a free slot whose circuit allows a call, its slot taken: ``prefer`` if it is
        one, else the least loaded fleet-wide, then the one with the better success record; ``avoid`` (the
        replica that just failed) only if nothing else is."""
        candidates = []
        for r in await self.replicas(pool):
            h = self._health(r.key)
            if h.healthy and self.slots.free(r) > 0 and h.circuit.allow():
                candidates.append(r)
        ranked = sorted(
            candidates,
            key=lambda r: (
                r.agent_id != prefer,
                r.agent_id == avoid,
                self.slots.load(r),
                -self._health(r.key).success_rate,
                random.random(),
            ),
        )
        for r in ranked:
            if await self.slots.take(r):
                return r
        return None

    async def usable(self, pool: str) -> int:
        """Replicas that could take a call once they have a free slot (healthy, circuit not open)."""
        return sum(
            1
            for r in await self.replicas(pool)
            if self._health(r.key).healthy and self._health(r.key).circuit.current() != "open"
        )

    async def capacity(self, pool: str) -> int:
        """Free call slots in a pool, fleet-wide as far as this process knows (0 when no replica is usable)."""
        free = 0
        for r in await self.replicas(pool):
            h = self._health(r.key)
            if h.healthy and h.circuit.current() != "open":
                free += self.slots.free(r)
        return free

    def call_started(self, replica: Replica) -> None:
        h = self._health(replica.key)
        h.inflight += 1
        h.circuit.started()
        self.slots.started(replica)

    def call_finished(self, replica: Replica, ok: bool | None) -> None:
        """``ok`` None: the call ended without saying anything about the replica (cancelled, tool error)."""
        h = self._health(replica.key)
        h.inflight -= 1
        self.slots.finished(replica)
        if ok is True:
            h.successes += 1
            h.circuit.succeeded()
        elif ok is False:
            h.failures += 1
            h.circuit.failed()
        else:
            h.circuit.released()
        self._invalidate_capacity()

    def _invalidate_capacity(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    # ------------------------------------------------------------------ probing
    async def probe_all(self, sessions: Sessions, http: httpx2.AsyncClient) -> None:
        """Probe every replica; N failures in a row mark it unhealthy, one success heals it."""

        async def probe(r: Replica) -> None:
            h = self._health(r.key)
            was = h.healthy
            ok = await self._probe(r, sessions, http)
            h.probe_failures = 0 if ok else h.probe_failures + 1
            if was != h.healthy:
                log.info("replica health changed", agent=r.key, healthy=h.healthy)
                self._invalidate_capacity()

        async with anyio.create_task_group() as tg:
            for r in await self.replicas():
                tg.start_soon(probe, r)
        alive = {r.key for r in await self.replicas()}
        for key in [k for k in self.health if k not in alive and self.health[k].inflight == 0]:
            del self.health[key]
            sessions.drop(key)  # a replica that left (expired, removed by a reload) keeps no session open

    async def _probe(self, r: Replica, sessions: Sessions, http: httpx2.AsyncClient) -> bool:
        """MCP liveness over the pooled session (reconnecting, which re-learns a static replica's tools), then
        the pool's health URL if it has one. A broken session is dropped; a slow one is left to its calls."""
        with anyio.move_on_after(PROBE_TIMEOUT_S):
            try:
                await (await sessions.get(r.endpoint(self.settings))).ping()
                if r.health_url is None:
                    return True
                return (await http.get(r.health_url, timeout=PROBE_TIMEOUT_S)).is_success
            except errors.TransportError:
                sessions.drop(r.key)
            except (errors.DispatchError, httpx2.HTTPError):
                pass
        return False
