"""The dispatcher: the one loop that takes queued subtasks and calls agents.

Per pool it reads the stream (plus messages reclaimed from dead consumers), keeps what it holds in
priority order, and starts a call whenever a replica has a free slot. Each call: claim the subtask
in Postgres, resolve ``$from`` references, call the replica over its pooled MCP session with the
idempotency key in ``_meta``, hand the raw outcome to ``Engine.settle`` (which decides and stores
it), then ack. Leases on held and running work are renewed in Postgres and Redis together, so only
a dead process's work is ever reclaimed. Every loop outlives a lost Redis or Postgres: it logs,
waits and tries again.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
import redis.asyncio as aioredis
import structlog
from anyio.abc import TaskGroup
from opentelemetry.trace import StatusCode

from agents.runtime.idempotency import IDEMPOTENCY_META_KEY
from agents.runtime.workspace import WORKSPACE_META_KEY
from reynolds import errors, retry, tracing
from reynolds.batching import Batcher
from reynolds.config import Settings
from reynolds.engine import Engine
from reynolds.keys import Keys
from reynolds.metrics import Metrics
from reynolds.models import Attempt, Claim, ClaimRequest
from reynolds.plan import references, resolve_references
from reynolds.queue import Message, TaskQueue
from reynolds.registry import Registry, Replica
from reynolds.sessions import Sessions
from reynolds.store import Store
from reynolds.tracing import tracer

log = structlog.get_logger("reynolds.dispatch")
ACK_INTERVAL_S = 0.02
LOOP_RETRY_S = 1.0  # a loop that met a lost Redis or Postgres tries again after this long


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class PoolState:
    held: list[tuple[tuple[int, float, str], Message]] = field(default_factory=list)  # heap by priority
    held_ids: set[str] = field(default_factory=set)
    running: dict[str, Message] = field(default_factory=dict)
    unusable_since_ms: float | None = None  # when the pool last lost its last usable replica


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: Store,
        queue: TaskQueue,
        registry: Registry,
        sessions: Sessions,
        metrics: Metrics,
        redis: aioredis.Redis,
        keys: Keys,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.queue = queue
        self.registry = registry
        self.sessions = sessions
        self.metrics = metrics
        self.redis = redis
        self.keys = keys
        self.consumer = engine.owner  # leases and outcomes are the engine's under the same name
        self.pools: dict[str, PoolState] = {}
        self._scopes: dict[tuple[str, str], anyio.CancelScope] = {}
        self._calls: TaskGroup | None = None
        self._stopping = anyio.Event()
        self._drained = anyio.Event()
        self._acks: list[Message] = []  # messages whose outcome is stored, not yet acked
        # concurrent calls share Postgres round trips for their claims (group commit)
        self._claims: Batcher[ClaimRequest, tuple[Claim | None, str]] = Batcher(
            lambda requests: store.claim_many(requests, self.consumer, settings.visibility_timeout_s)
        )

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Run until cancelled or ``stop``; in-flight calls drain (bounded) before the loop returns."""
        log.info("dispatcher started", consumer=self.consumer)
        async with anyio.create_task_group() as calls:
            self._calls = calls
            async with anyio.create_task_group() as loops:
                loops.start_soon(self._watch_pools, loops)
                loops.start_soon(self._keep_leases)
                loops.start_soon(self._move_due)
                loops.start_soon(self._ack_batches)
                loops.start_soon(self._listen_control)
                await self._stopping.wait()
                loops.cancel_scope.cancel()
            with anyio.move_on_after(self.settings.drain_timeout_s):
                while any(p.running for p in self.pools.values()):  # noqa: ASYNC110 - polls several dicts
                    await anyio.sleep(0.05)
            calls.cancel_scope.cancel()  # what did not drain gives its lease back (see _call)
        with anyio.CancelScope(shield=True):
            await self.flush_acks()
        self._drained.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def stop(self) -> None:
        self._stopping.set()
        await self._drained.wait()
        await self.engine.flush_stats()

    async def _watch_pools(self, loops: TaskGroup) -> None:
        while True:
            try:
                pools = await self.queue.pools() | {r.pool for r in await self.registry.replicas()}
                for pool in pools - self.pools.keys():
                    self.pools[pool] = PoolState()
                    loops.start_soon(self._pool_loop, pool)
            except Exception as err:
                log.warning("watching pools failed; retrying", error=str(err))
            await anyio.sleep(LOOP_RETRY_S)

    # ------------------------------------------------------------------ per pool
    async def _pool_loop(self, pool: str) -> None:
        state = self.pools[pool]
        last_reclaim = 0.0
        while True:
            try:
                if time.monotonic() - last_reclaim > self.settings.visibility_timeout_s / 2:
                    last_reclaim = time.monotonic()
                    self._hold(
                        state,
                        await self.queue.reclaim(
                            pool, self.consumer, self.settings.visibility_timeout_s, self.settings.prefetch
                        ),
                    )
                free = await self.registry.capacity(pool)
                room = free + (self.settings.prefetch if free else 1) - len(state.held)
                if room > 0:
                    block = 50 if state.held else 500
                    self._hold(state, await self.queue.read(pool, self.consumer, room, block))
                await self._start_calls(pool, state)
                await self._expire_unplaceable(pool, state)
                if state.held:
                    with anyio.move_on_after(0.2):
                        await self.registry.changed.wait()
            except Exception as err:  # Redis or Postgres lost: the loop waits and reads again
                log.warning("pool loop error; retrying", pool=pool, error=str(err))
                await anyio.sleep(LOOP_RETRY_S)

    def _hold(self, state: PoolState, messages: list[Message]) -> None:
        for m in messages:
            if m.id not in state.held_ids and m.id not in state.running:
                heapq.heappush(state.held, (m.order, m))
                state.held_ids.add(m.id)

    async def _start_calls(self, pool: str, state: PoolState) -> None:
        assert self._calls is not None
        while state.held:
            replica = await self.registry.choose(pool)
            if replica is None:
                return
            _, message = heapq.heappop(state.held)
            state.held_ids.discard(message.id)
            state.running[message.id] = message
            self.registry.call_started(replica)  # reserve the slot now; _call may move it to another replica
            self._calls.start_soon(self._call, state, message, replica)

    async def _expire_unplaceable(self, pool: str, state: PoolState) -> None:
        """Subtasks that found no usable replica for ``no_replica_wait_s`` fail with that reason. A pool whose
        replicas are merely busy queues its work for as long as it takes."""
        now_ms = time.time() * 1000
        if await self.registry.usable(pool):
            state.unusable_since_ms = None
            return
        if state.unusable_since_ms is None:
            state.unusable_since_ms = now_ms
        limit_ms = self.settings.no_replica_wait_s * 1000
        keep = []
        for order, m in state.held:
            # the wait starts when the subtask was queued or when the pool became unusable, whichever is later
            if now_ms - max(m.queued_ms, state.unusable_since_ms) < limit_ms:
                keep.append((order, m))
                continue
            state.held_ids.discard(m.id)
            claim, _ = await self.store.claim(
                m.task_id, m.subtask_id, self.consumer, self.settings.visibility_timeout_s
            )
            if claim is not None:
                reason = f"no healthy replica in pool {pool!r} for {self.settings.no_replica_wait_s:g} s"
                await self.engine.settle(Attempt(claim, m.rank, m.priority, None, error=errors.NoReplica(reason)))
            await self.queue.ack(m)
        heapq.heapify(keep)
        state.held = keep

    # ------------------------------------------------------------------ one call
    async def _call(self, state: PoolState, message: Message, replica: Replica) -> None:
        ack = True
        claim: Claim | None = None
        attempt: Attempt | None = None
        key = (message.task_id, message.subtask_id)
        # every log line of this call carries its ids (contextvars are per task, so calls do not mix)
        structlog.contextvars.bind_contextvars(
            task_id=message.task_id, subtask_id=message.subtask_id, pool=message.pool, agent_id=replica.agent_id
        )
        try:
            claim, why = await self._claims.submit(ClaimRequest(message.task_id, message.subtask_id, replica.agent_id))
            if claim is None:
                # leased elsewhere: leave the message unrenewed so it is reclaimed if that holder dies
                ack = why != "leased"
                return
            log.debug("claimed", task_id=claim.task_id, subtask_id=claim.subtask_id, attempt=claim.attempts)
            replica = await self._choose_for(claim, message.pool, replica)
            attempt = await self._attempt(message, claim, replica)
            if attempt is not None:
                await self.engine.settle(attempt)
        except anyio.get_cancelled_exc_class():
            ack = False  # shutting down: give the subtask back, keep the message for another process
            if claim is not None:
                with anyio.CancelScope(shield=True):
                    await self.store.release_lease(claim.task_id, claim.subtask_id, self.consumer)
            raise
        except Exception:
            log.exception("storing an outcome failed; the lease goes back for another attempt")
            ack = False
            if claim is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.store.release_lease(claim.task_id, claim.subtask_id, self.consumer)
        finally:
            self._scopes.pop(key, None)
            ok = None if attempt is None else not retry.replica_at_fault(attempt.error)
            self.registry.call_finished(replica, ok)
            state.running.pop(message.id, None)
            if ack:
                self._acks.append(message)  # acked in the next batch: the outcome is already stored

    async def _choose_for(self, claim: Claim, pool: str, replica: Replica) -> Replica:
        """A call interrupted by a dead dispatcher goes back to the same replica, whose idempotency key then joins
        or answers it; a retry after a failure goes elsewhere if it can."""
        other = None
        if claim.interrupted_on and claim.interrupted_on != replica.agent_id:
            other = await self.registry.choose(pool, prefer=claim.interrupted_on)
        elif claim.last_agent_id == replica.agent_id:
            other = await self.registry.choose(pool, avoid=replica.agent_id)
        if other is None or other.agent_id == replica.agent_id:
            return replica
        self.registry.call_finished(replica, None)
        self.registry.call_started(other)
        structlog.contextvars.bind_contextvars(agent_id=other.agent_id)
        await self.store.assign(claim.task_id, claim.subtask_id, self.consumer, other.agent_id)
        return other

    async def _attempt(self, message: Message, claim: Claim, replica: Replica) -> Attempt | None:
        """Make the call; its raw outcome (result or error), or None when the task was cancelled meanwhile."""
        started = time.monotonic()

        def attempt(**outcome: Any) -> Attempt:
            elapsed = time.monotonic() - started
            return Attempt(claim, message.rank, message.priority, replica.agent_id, elapsed_s=elapsed, **outcome)

        try:
            arguments = claim.arguments
            if sources := sorted(set(references(arguments))):  # only what is read: a wide join loads nothing
                outputs = await self.store.outputs(claim.task_id, sources)
                arguments = resolve_references(arguments, outputs, self.settings.max_resolved_argument_bytes)
            timeout = claim.timeout_s or self.settings.call_timeout_s
            if claim.deadline is not None:
                timeout = min(timeout, max(0.0, claim.deadline.timestamp() - time.time()))
            if claim.ready_at is not None:
                self.metrics.dispatch_overhead.labels(message.pool).observe(
                    max(0.0, time.time() - claim.ready_at.timestamp())
                )
            started = time.monotonic()
            with anyio.CancelScope() as scope:
                self._scopes[(claim.task_id, claim.subtask_id)] = scope
                result = await self._invoke(replica, claim, arguments, timeout)
            return None if scope.cancelled_caught else attempt(result=result)  # cancelled: Postgres says so
        except errors.TransportError as err:
            self.sessions.drop(replica.key)
            return attempt(error=err)
        except (errors.DispatchError, errors.PlanError) as err:  # a bad path or fill: the plan's, never retried
            return attempt(error=err)
        except Exception as err:
            log.exception("dispatch failed unexpectedly")
            return attempt(error=err)  # counted as a failed attempt, so it cannot loop forever

    async def _invoke(
        self, replica: Replica, claim: Claim, arguments: dict[str, Any], limit_s: float
    ) -> types.CallToolResult:
        if limit_s <= 0:
            raise errors.CallTimeout("the task's deadline passed before the call could start")
        attributes = {
            "reynolds.task_id": claim.task_id,
            "reynolds.subtask_id": claim.subtask_id,
            "reynolds.pool": claim.pool,
            "reynolds.agent_id": replica.agent_id,
            "reynolds.attempt": claim.attempts,
            "gen_ai.tool.name": claim.tool,
        }
        # a child of the task's submit span, whichever process submitted it; the SDK's client span below
        # this one puts its traceparent in the call's _meta, where the agent's server span picks it up
        context = tracing.context_of(claim.traceparent)
        with tracer.start_as_current_span(f"dispatch {claim.tool}", context=context, attributes=attributes) as span:
            connection = await self.sessions.get(replica.endpoint(self.settings))
            meta = {IDEMPOTENCY_META_KEY: f"{claim.task_id}/{claim.subtask_id}", WORKSPACE_META_KEY: claim.task_id}
            log.debug("calling", agent=replica.key, tool=claim.tool, task_id=claim.task_id, subtask_id=claim.subtask_id)
            result = await connection.call(claim.tool, arguments, meta, limit_s)
            if result.is_error:
                span.set_status(StatusCode.ERROR, "the tool answered with an error")
            return result

    # ------------------------------------------------------------------ background duties
    async def _keep_leases(self) -> None:
        """Renew every lease this process holds, well inside the visibility timeout."""
        interval = self.settings.visibility_timeout_s / 3
        while True:
            await anyio.sleep(interval)
            try:
                await self.store.renew_leases(self.consumer, self.settings.visibility_timeout_s)
                for pool, state in self.pools.items():
                    waiting = [m.id for m in self._acks if m.pool == pool]
                    await self.queue.renew(pool, self.consumer, [*state.held_ids, *state.running, *waiting])
            except Exception as err:
                log.warning("lease renewal failed", error=str(err))

    async def flush_acks(self) -> None:
        batch, self._acks = self._acks, []
        try:
            await self.queue.ack(*batch)
        except Exception:
            self._acks[:0] = batch  # acks are idempotent; try again next round
            raise

    async def _ack_batches(self) -> None:
        """Ack in batches, one Redis round trip for many calls. A crash before a batch is harmless: the message
        is reclaimed, its claim finds the subtask finished, and it is acked then."""
        while True:
            await anyio.sleep(ACK_INTERVAL_S)
            try:
                await self.flush_acks()
            except Exception as err:
                log.warning("acking failed; retrying", error=str(err))

    async def _move_due(self) -> None:
        while True:
            try:
                await self.queue.move_due()
            except Exception as err:
                log.warning("moving due retries failed", error=str(err))
            await anyio.sleep(0.1)

    async def _listen_control(self) -> None:
        """Cancellations reach in-flight calls in every process through the control channel."""
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.control)
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        task_id = json.loads(item["data"]).get("cancel")
                        for (tid, _sid), scope in list(self._scopes.items()):
                            if tid == task_id:
                                scope.cancel()
            except Exception as err:
                log.warning("control channel lost; resubscribing", error=str(err))
                await anyio.sleep(LOOP_RETRY_S)
