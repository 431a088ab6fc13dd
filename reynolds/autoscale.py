"""Optional autoscaler (off unless ``REYNOLDS_AUTOSCALE`` is true): sizes each agent pool from its queue.

The decision is a pure function, :func:`decide`, of one pool's load (queue depth, age of the oldest
queued subtask, current replicas) and the time since that pool was last changed. :class:`Autoscaler`
is the loop around it; it is given callables to read a pool's load and to scale a pool, so it knows
nothing about Redis or Docker.

Policy, in words:
- a pool wants one replica per ``depth_per_replica`` queued subtasks (rounded up);
- if the oldest subtask has waited longer than ``max_age_s``, it wants at least one more than now;
- it grows straight to what it wants, but shrinks one replica at a time, so a lull does not empty it;
- always within ``min_replicas..max_replicas``;
- after a change it waits ``up_cooldown_s`` before growing again and ``down_cooldown_s`` before
  shrinking, because new replicas need time to register and take work.

With several Reynolds processes only the holder of the fleet lease scales (``leads``). A new leader does not
know when the last one scaled, and needs not: a decision is an absolute replica count from the shared load,
so acting again on the same load sets the same count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

log = structlog.get_logger("reynolds.autoscale")


@dataclass(frozen=True)
class Policy:
    min_replicas: int = 1
    max_replicas: int = 10
    depth_per_replica: float = 4.0
    max_age_s: float = 30.0
    up_cooldown_s: float = 30.0
    down_cooldown_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"need 0 <= min_replicas <= max_replicas, got {self.min_replicas}..{self.max_replicas}")
        if self.depth_per_replica <= 0:
            raise ValueError("depth_per_replica must be positive")


@dataclass(frozen=True)
class PoolLoad:
    depth: int  # subtasks queued or in flight
    oldest_age_s: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    pool: str
    current: int
    desired: int
    reason: str

    @property
    def changes(self) -> bool:
        return self.desired != self.current


def decide(pool: str, load: PoolLoad, policy: Policy, since_change_s: float | None) -> Decision:
    """How many replicas ``pool`` should have now. ``since_change_s`` is None if it was never changed."""
    current = load.replicas
    wanted = math.ceil(load.depth / policy.depth_per_replica)
    reason = f"{load.depth} queued -> {wanted} wanted"
    if load.depth > 0 and load.oldest_age_s > policy.max_age_s and wanted <= current:
        wanted = current + 1
        reason = f"oldest queued subtask waited {load.oldest_age_s:.0f}s > {policy.max_age_s:.0f}s"
    if wanted < current:
        wanted = current - 1  # shrink one step at a time
    desired = max(policy.min_replicas, min(policy.max_replicas, wanted))
    if desired == current:
        return Decision(pool, current, current, "steady: " + reason)
    cooldown = policy.up_cooldown_s if desired > current else policy.down_cooldown_s
    if since_change_s is not None and since_change_s < cooldown:
        return Decision(pool, current, current, f"cooling down ({since_change_s:.0f}s < {cooldown:.0f}s): {reason}")
    return Decision(pool, current, desired, reason)


class Autoscaler:
    """Every ``interval_s``: read each pool's load, decide, and scale the pools whose size should change.

    ``read_load(pool)`` and ``scale(pool, replicas)`` are awaited; a failure of either is logged and the
    pool is tried again next round (the autoscaler never stops the service). A round does nothing while
    ``leads()`` is false (another process holds the fleet lease)."""

    def __init__(
        self,
        pools: Sequence[str],
        read_load: Callable[[str], Awaitable[PoolLoad]],
        scale: Callable[[str, int], Awaitable[Any]],
        policy: Policy | None = None,
        interval_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        self.pools = list(pools)
        self.read_load = read_load
        self.scale = scale
        self.policy = policy or Policy()
        self.interval_s = interval_s
        self.clock = clock
        self.leads = leads
        self.last_change: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            await self.tick()
            await anyio.sleep(self.interval_s)

    async def tick(self) -> list[Decision]:
        """One round over all pools if this process leads; returns the decisions taken (changed or not)."""
        if not self.leads():
            return []
        decisions = []
        for pool in self.pools:
            try:
                load = await self.read_load(pool)
                changed_at = self.last_change.get(pool)
                since = None if changed_at is None else self.clock() - changed_at
                decision = decide(pool, load, self.policy, since)
                if decision.changes:
                    await self.scale(pool, decision.desired)
                    self.last_change[pool] = self.clock()
                    log.info(
                        "autoscaled", pool=pool, replicas=decision.desired, previous=decision.current,
                        reason=decision.reason,
                    )  # fmt: skip
                decisions.append(decision)
            except Exception as err:  # the loop outlives any one failure
                log.warning("autoscale failed", pool=pool, error=f"{type(err).__name__}: {err}")
        return decisions
