"""The shortest path through the whole system: a plan goes in over MCP, a result comes out."""

from __future__ import annotations

import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster


@pytest.mark.anyio
async def test_diamond_plan_runs_and_passes_data(reynolds_cluster: Cluster) -> None:
    reynolds_cluster.start_reynolds()
    reynolds_cluster.start_agent("workbench")
    reynolds_cluster.wait_registered(["workbench-0"])
    plan = {
        "subtasks": [
            {"id": "a", "tool": "echo", "arguments": {"value": {"n": 7}}},
            {"id": "b", "tool": "echo", "arguments": {"value": {"$from": "a", "path": "value.n"}}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan})
    assert task["state"] == "succeeded"
    b = next(s for s in task["subtasks"] if s["id"] == "b")
    assert b["result"]["value"] == 7
    assert b["depends_on"] == ["a"]
