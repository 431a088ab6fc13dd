"""The operational endpoints: /health, /ready with its checks, and /metrics with the series dashboards use."""

from __future__ import annotations

import re

import httpx2
import pytest

from tests.integration.cluster import Cluster
from tests.integration.conftest import metrics_text, run_plan, start_workbench, wait_until


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text format, or None when it is absent."""
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match[2])
    return None


@pytest.mark.anyio
async def test_metrics_and_ready_endpoints(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster, replicas=2)
    async with httpx2.AsyncClient(base_url=reynolds.base_url, timeout=5.0) as http:
        health = await http.get("/health")
        ready = await http.get("/ready")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "checks": {"postgres": "ok", "migrations": "ok", "redis": "ok"}}

    plan = {
        "subtasks": [
            {"id": "a", "tool": "echo", "arguments": {"value": 1}},
            {"id": "b", "tool": "sleep", "arguments": {"seconds": 0.2}, "depends_on": ["a"]},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "succeeded", task

    async def gauges_refreshed() -> str | None:
        # gauges are refreshed by an upkeep loop every couple of seconds: wait for a refresh after the task
        text = await metrics_text(reynolds)
        healthy = sample(text, "reynolds_agents", pool="workbench", state="healthy") == 2
        return text if healthy and sample(text, "reynolds_queue_depth", pool="workbench") == 0 else None

    metrics = await wait_until(gauges_refreshed, 10, "gauges to count both replicas and an empty queue")
    assert sample(metrics, "reynolds_tasks_submitted_total") == 1
    assert sample(metrics, "reynolds_tasks_total", state="succeeded") == 1
    assert sample(metrics, "reynolds_subtasks_total", pool="workbench", state="succeeded") == 2
    assert sample(metrics, "reynolds_subtask_duration_seconds_count", pool="workbench", tool="sleep") == 1
    assert sample(metrics, "reynolds_subtask_duration_seconds_bucket", pool="workbench", tool="sleep", le="0.1") == 0
    assert sample(metrics, "reynolds_subtask_duration_seconds_bucket", pool="workbench", tool="sleep", le="+Inf") == 1
    assert sample(metrics, "reynolds_queue_depth", pool="workbench") == 0
    assert sample(metrics, "reynolds_agents", pool="workbench", state="unhealthy") == 0
    assert sample(metrics, "reynolds_ready") == 1
    assert sample(metrics, "reynolds_tasks_active") == 0
