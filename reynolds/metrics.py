"""Prometheus metrics Reynolds exports on /metrics (all prefixed ``reynolds_``).

The Grafana dashboard and alert rules may only use names defined here or by agents'
``AgentMetrics``; tests/unit/test_monitoring.py checks that.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from reynolds import workers
from reynolds.models import TaskState

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    # Gauges of state every process shares: only the fleet lease holder exports them (reynolds/gauges.py), and
    # dashboards and alerts aggregate them with max, never sum (tests/unit/test_monitoring.py checks).
    FLEET = (
        "reynolds_queue_depth",
        "reynolds_queue_oldest_age_seconds",
        "reynolds_agents",
        "reynolds_agent_utilisation",
        "reynolds_tasks_active",
        "reynolds_oldest_running_task_age_seconds",
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.tasks_submitted = Counter("reynolds_tasks_submitted", "Tasks accepted", registry=registry)
        self.tasks = Counter("reynolds_tasks", "Tasks finished, by final state", ["state"], registry=registry)
        for state in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED):
            self.tasks.labels(state.value)  # exported as 0 from the start, so rates survive a restart
        self.tasks_active = Gauge(
            "reynolds_tasks_active",
            "Tasks running now (exported by the fleet leader; 0 elsewhere)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.oldest_running_task = Gauge(  # lifecycle: a task that never ends shows here first
            "reynolds_oldest_running_task_age_seconds",
            "Age of the oldest task still running (exported by the fleet leader; 0 elsewhere)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.subtasks = Counter(
            "reynolds_subtasks", "Subtasks finished, by pool and final state", ["pool", "state"], registry=registry
        )
        self.subtask_duration = Histogram(
            "reynolds_subtask_duration_seconds",
            "Agent call duration of successful subtasks",
            ["pool", "tool"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "reynolds_queue_depth",
            "Subtasks waiting or in flight per pool",
            ["pool"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.queue_age = Gauge(
            "reynolds_queue_oldest_age_seconds",
            "Age of the oldest queued subtask",
            ["pool"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.agents = Gauge(
            "reynolds_agents", "Replicas by health", ["pool", "state"], registry=registry, multiprocess_mode="livemax"
        )
        self.circuit = Gauge(
            "reynolds_circuit_state",
            "Circuit per replica: 0 closed, 1 half-open, 2 open",
            ["pool", "agent_id"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.retries = Counter("reynolds_retries", "Attempts retried, by reason", ["pool", "reason"], registry=registry)
        self.loop_refusals = Counter(
            "reynolds_loop_refusals", "Handoffs or events refused by loop prevention", ["reason"], registry=registry
        )
        self.inflight = Gauge(
            "reynolds_inflight_subtasks",
            "Agent calls in flight from this process",
            ["pool"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.utilisation = Gauge(
            "reynolds_agent_utilisation",
            "Calls in flight from every process / call slots of healthy replicas",
            ["pool"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.parallelism = Histogram(
            "reynolds_task_parallelism",
            "Sum of subtask busy time / task wall time, per finished task",
            buckets=(0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32, 64),
            registry=registry,
        )
        self.dispatch_overhead = Histogram(
            "reynolds_dispatch_overhead_seconds",
            "Time from a subtask being ready to its agent call starting",
            ["pool"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.github_failures = Counter(
            "reynolds_github_sync_failures",
            "GitHub tracking updates that failed (tasks are unaffected)",
            registry=registry,
        )
        self.leader = Gauge(
            "reynolds_leader",
            "1 in the process holding the fleet lease (autoscaling, fleet gauges)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.ready = Gauge(
            "reynolds_ready",
            "1 when Postgres and Redis answer and migrations are applied",
            registry=registry,
            multiprocess_mode="livemin",
        )

    def clear_fleet(self) -> None:
        """Stop exporting the fleet-level gauges (this process does not hold the fleet lease)."""
        for gauge in (self.queue_depth, self.queue_age, self.agents, self.utilisation):
            clear(gauge)
        self.tasks_active.set(0)
        self.oldest_running_task.set(0)


def shared() -> bool:
    """True in a worker of ``reynolds serve --workers N``: metrics live in the directory the workers share. (The
    variable alone, set by hand for one process, does not count: its files may be any process's, dead ones too.)"""
    return os.environ.get(workers.WORKER_ENV) is not None and bool(os.environ.get(workers.METRICS_ENV))


def clear(gauge: Gauge) -> None:
    """Drop a gauge's series. Under ``--workers N`` prometheus_client cannot delete a value from the shared
    directory (``clear`` would leave it there at its last value), so each is set to 0: 0 loses every max."""
    if not shared():
        gauge.clear()
        return
    for sample in gauge.collect()[0].samples:
        gauge.labels(**sample.labels).set(0)


def exposition(registry: CollectorRegistry) -> CollectorRegistry:
    """What /metrics serves: this process's registry, or, under ``reynolds serve --workers N``, every worker's
    metrics merged from the directory they share (counters summed, gauges by their ``multiprocess_mode``)."""
    if not shared():
        return registry
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged
