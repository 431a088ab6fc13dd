"""The shipped deployment scenario does real work: each of its steps, called on the real devops and code
agents (in memory) with the repository as their workspace, succeeds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reynolds.experiments.scenario import parse, read_file

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.anyio
async def test_every_deployment_step_runs_on_the_repository(agent_client: Callable) -> None:
    plan = parse(read_file(REPO / "experiments", "deployment-strategies.yaml")).workload.resolve()
    clients = {}
    for kind in ("devops", "code"):
        client, _ = await agent_client(kind, workspace_dir=REPO)
        clients.update({t.name: client for t in (await client.list_tools()).tools})
    for step in plan.subtasks:
        assert step.tool in clients, step.tool
        result = await clients[step.tool].call_tool(step.tool, step.arguments)
        assert not result.is_error, (step.id, result.content)
