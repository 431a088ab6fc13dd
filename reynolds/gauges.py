"""The gauges Reynolds refreshes every few seconds (the ``gauges`` upkeep loop in reynolds/service.py).

Fleet-level gauges (``Metrics.FLEET``: queue depth and age per pool, replicas by health, utilisation, running
tasks) describe what every process sees alike, so only the holder of the fleet lease (reynolds/leader.py)
exports them; the others export none (``reynolds_tasks_active``, unlabelled, stays 0 there). N processes
therefore never show N copies of one queue. Dashboards and alerts still read them with ``max``, so that the
moment of a leader handover cannot double them either. Per-process gauges (calls in flight from this process,
its view of each circuit) every process exports; ``sum`` adds those up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reynolds.health import CIRCUIT_GAUGE
from reynolds.metrics import Metrics, clear
from reynolds.queue import TaskQueue
from reynolds.registry import Registry, Replica
from reynolds.store import Store

if TYPE_CHECKING:
    from reynolds.service import Service


async def refresh(service: Service) -> None:
    metrics, registry = service.metrics, service.registry
    replicas = await registry.replicas()
    _process_gauges(metrics, registry, replicas)
    leading = service.leader.held
    metrics.leader.set(1 if leading else 0)
    if leading:
        await _fleet_gauges(metrics, registry, service.queue, service.store, replicas)
    else:
        metrics.clear_fleet()


def _process_gauges(metrics: Metrics, registry: Registry, replicas: Sequence[Replica]) -> None:
    clear(metrics.circuit)
    inflight: dict[str, int] = {}
    for r in replicas:
        h = registry.health_of(r)
        inflight[r.pool] = inflight.get(r.pool, 0) + h.inflight
        metrics.circuit.labels(r.pool, r.agent_id).set(CIRCUIT_GAUGE[h.circuit.current()])
    for pool, count in inflight.items():
        metrics.inflight.labels(pool).set(count)


async def _fleet_gauges(
    metrics: Metrics, registry: Registry, queue: TaskQueue, store: Store, replicas: Sequence[Replica]
) -> None:
    clear(metrics.agents)
    for pool in {r.pool for r in replicas} | await queue.pools():
        depth, age = await queue.depth(pool)
        metrics.queue_depth.labels(pool).set(depth)
        metrics.queue_age.labels(pool).set(age)
        members = [r for r in replicas if r.pool == pool]
        healthy = [r for r in members if registry.health_of(r).healthy]
        metrics.agents.labels(pool, "healthy").set(len(healthy))
        metrics.agents.labels(pool, "unhealthy").set(len(members) - len(healthy))
        slots = sum(r.max_concurrency for r in healthy)
        busy = sum(registry.slots.busy(r) for r in healthy)  # calls of every process, not only this one's
        metrics.utilisation.labels(pool).set(busy / slots if slots else 0)
    running, oldest_s = await store.running_tasks()
    metrics.tasks_active.set(running)
    metrics.oldest_running_task.set(oldest_s)
