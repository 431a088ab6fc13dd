"""track_in_github: a tracking issue with a checklist follows the task and is closed at its end; GitHub
failing never fails the task. GitHub itself is the one remote service here, so it is the local double in
tests/doubles/github_api.py (a real HTTP server) that Reynolds' real PyGithub client talks to."""

from __future__ import annotations

import httpx2
import pytest

from reynolds.client import call
from tests.doubles.github_api import GitHubDouble
from tests.integration.cluster import Cluster, free_port
from tests.integration.conftest import wait_until

PLAN = {
    "subtasks": [
        {"id": "first", "tool": "echo", "arguments": {"value": 1}},
        {"id": "second", "tool": "sleep", "arguments": {"seconds": 0.5}, "depends_on": ["first"]},
    ]
}


@pytest.mark.anyio
async def test_tracking_issue_follows_the_task_and_is_closed(reynolds_cluster: Cluster) -> None:
    with GitHubDouble(token="gh-token") as github:
        github.add_repo("acme/ops")
        reynolds_cluster.start_reynolds(
            REYNOLDS_GITHUB_TOKEN="gh-token", REYNOLDS_GITHUB_REPO="acme/ops", REYNOLDS_GITHUB_BASE_URL=github.url
        )
        reynolds_cluster.start_agent("workbench")
        reynolds_cluster.wait_registered(["workbench-0"])
        async with reynolds_cluster.client() as c:
            task = await call(c, "orchestrate", {"plan": PLAN, "goal": "ship it", "track_in_github": True})
            assert task["state"] == "succeeded"

            async def closed() -> bool:
                view = await call(c, "get_task", {"task_id": task["task_id"]})
                number = view["github_issue"]
                return number is not None and github.repos["acme/ops"].items[number]["state"] == "closed"

            await wait_until(closed, 20, "the tracking issue to be closed")
        issue = next(iter(github.repos["acme/ops"].items.values()))
        assert issue["title"] == "Reynolds: ship it"
        assert "- [x] `first`: echo on workbench — succeeded" in issue["body"]
        assert "- [x] `second`: sleep on workbench — succeeded" in issue["body"]
        assert task["task_id"] in issue["body"]


@pytest.mark.anyio
async def test_github_failure_never_fails_the_task(reynolds_cluster: Cluster) -> None:
    closed_port = free_port()
    reynolds = reynolds_cluster.start_reynolds(
        REYNOLDS_GITHUB_TOKEN="gh-token",
        REYNOLDS_GITHUB_REPO="acme/ops",
        REYNOLDS_GITHUB_BASE_URL=f"http://127.0.0.1:{closed_port}",
    )
    reynolds_cluster.start_agent("workbench")
    reynolds_cluster.wait_registered(["workbench-0"])
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": PLAN, "track_in_github": True})
    assert task["state"] == "succeeded" and task["github_issue"] is None

    async def counted() -> bool:
        metrics = httpx2.get(f"{reynolds.base_url}/metrics").text
        return any(
            line.startswith("reynolds_github_sync_failures_total") and not line.endswith(" 0.0")
            for line in metrics.splitlines()
        )

    await wait_until(counted, 20, "a counted GitHub failure")


@pytest.mark.anyio
async def test_tracking_without_configuration_is_refused_and_stores_nothing(reynolds_cluster: Cluster) -> None:
    reynolds_cluster.start_reynolds()
    reynolds_cluster.start_agent("workbench")
    reynolds_cluster.wait_registered(["workbench-0"])
    async with reynolds_cluster.client() as c:
        with pytest.raises(Exception, match="GitHub tracking is not configured"):
            await call(c, "orchestrate", {"plan": PLAN, "track_in_github": True})
        assert (await call(c, "list_tasks", {}))["total"] == 0
