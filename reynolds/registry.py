"""Which replicas exist, what they offer, and which one should take the next call.

Self-registered agents live in Redis (a hash per replica that expires unless heartbeats renew it),
so every Reynolds process sees the same fleet. Extra pools from the pools file are static replicas
every process knows from its own configuration. Health, circuits and in-flight counts are this
process's own view, built from its probes and its calls.
"""

from __future__ import annotations

import json
import random
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

from reynolds.config import Settings
from reynolds.health import Circuit, ReplicaHealth
from reynolds.keys import Keys
from reynolds.pools import PoolSpec
from reynolds.sessions import Endpoint

log = structlog.get_logger("reynolds.registry")
CACHE_S = 0.5  # how long a read of the fleet from Redis is reused
MAX_DESCRIPTION = 1000  # characters of a tool description kept for planning


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

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.agent_id}"

    def learn(self, tools: Sequence[types.Tool]) -> None:
        """Take the replica's ``tools/list``: names for routing, descriptions and schemas for planning."""
        self.tools = [t.name for t in tools]
        self.specs = {
            t.name: {
                "description": (t.description or "")[:MAX_DESCRIPTION],
                "input_schema": t.input_schema,
                # readOnlyHint, destructiveHint ...: the planners never pick a destructive tool unasked
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {},
            }
            for t in tools
        }

    def endpoint(self, agent_token: str) -> Endpoint:
        if self.stdio is not None:
            return Endpoint(self.key, stdio=self.stdio)
        return Endpoint(self.key, url=self.url, token=self.token if self.static else agent_token)


class Registry:
    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.static: list[Replica] = []
        self.health: dict[str, ReplicaHealth] = {}
        self._cache: tuple[float, list[Replica]] = (0.0, [])
        self.changed = anyio.Event()  # set whenever capacity may have appeared

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

    async def deregister(self, pool: str, agent_id: str) -> None:
        await self.redis.delete(self.keys.agent(pool, agent_id))
        await self.redis.srem(self.keys.pool_agents(pool), agent_id)
        self._invalidate()

    def add_static(self, spec: PoolSpec, tools: Sequence[str], index: int) -> Replica:
        stdio = None
        if spec.command:
            stdio = StdioServerParameters(
                command=spec.command[0], args=spec.command[1:], env=spec.env or None, cwd=spec.cwd
            )
        replica = Replica(
            agent_id=f"{spec.name}-{index}",
            pool=spec.name,
            agent_type="external",
            url=spec.url or "stdio",
            max_concurrency=spec.max_concurrency,
            tools=list(tools),
            static=True,
            token=spec.token,
            stdio=stdio,
        )
        self.static.append(replica)
        self._invalidate()
        return replica

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
        """A healthy replica with a free slot whose circuit allows a call: ``prefer`` if it is one, else the least
        loaded, then the one with the better success record; ``avoid`` (the replica that just failed) only if
        nothing else is."""
        candidates = []
        for r in await self.replicas(pool):
            h = self._health(r.key)
            if h.healthy and h.inflight < r.max_concurrency and h.circuit.allow():
                candidates.append(r)
        if not candidates:
            return None
        for r in candidates:
            if r.agent_id == prefer:
                return r
        preferred = [r for r in candidates if r.agent_id != avoid] or candidates
        return min(
            preferred,
            key=lambda r: (
                self._health(r.key).inflight / r.max_concurrency,
                -self._health(r.key).success_rate,
                random.random(),
            ),
        )

    async def usable(self, pool: str) -> int:
        """Replicas that could take a call once they have a free slot (healthy, circuit not open)."""
        return sum(
            1
            for r in await self.replicas(pool)
            if self._health(r.key).healthy and self._health(r.key).circuit.current() != "open"
        )

    async def capacity(self, pool: str) -> int:
        """Free call slots in a pool as this process sees it (0 when no replica is usable)."""
        free = 0
        for r in await self.replicas(pool):
            h = self._health(r.key)
            if h.healthy and h.circuit.current() != "open":
                free += max(0, r.max_concurrency - h.inflight)
        return free

    def call_started(self, replica: Replica) -> None:
        h = self._health(replica.key)
        h.inflight += 1
        h.circuit.started()

    def call_finished(self, replica: Replica, ok: bool | None) -> None:
        """``ok`` None: the call ended without saying anything about the replica (cancelled, tool error)."""
        h = self._health(replica.key)
        h.inflight -= 1
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
    async def probe_all(self, http: httpx2.AsyncClient) -> None:
        """GET /health on every HTTP replica; N failures in a row mark it unhealthy, one success heals it."""
        replicas = [r for r in await self.replicas() if r.stdio is None]

        async def probe(r: Replica) -> None:
            url = r.url.rsplit("/mcp", 1)[0] + "/health"
            h = self._health(r.key)
            try:
                ok = (await http.get(url, timeout=2.0)).status_code == 200
            except httpx2.HTTPError:
                ok = False
            was = h.healthy
            h.probe_failures = 0 if ok else h.probe_failures + 1
            if was != h.healthy:
                log.info("replica health changed", agent=r.key, healthy=h.healthy)
                self._invalidate_capacity()

        async with anyio.create_task_group() as tg:
            for r in replicas:
                tg.start_soon(probe, r)
        alive = {r.key for r in await self.replicas()}
        for key in [k for k in self.health if k not in alive and self.health[k].inflight == 0]:
            del self.health[key]
