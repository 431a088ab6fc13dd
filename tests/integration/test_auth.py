"""Both MCP endpoints demand their own bearer token: without it a request is refused before it runs."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp import MCPError

from reynolds.client import call, connect
from tests.integration.cluster import Cluster
from tests.integration.conftest import start_workbench

ORCHESTRATE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "orchestrate",
        "arguments": {"plan": {"subtasks": [{"id": "r", "tool": "record", "arguments": {"key": "intruder"}}]}},
    },
}


def register(url: str) -> dict[str, Any]:
    """A well-formed register_agent call: were it let through, a "rogue" pool would appear."""
    arguments = {"agent_id": "rogue", "pool": "rogue", "agent_type": "workbench", "url": url}
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "register_agent", "arguments": arguments},
    }


def leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in leaves(inner)]
    return [err]


async def post(url: str, body: dict[str, Any], token: str | None) -> httpx2.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=10.0) as http:
        return await http.post(url, json=body, headers=headers)


@pytest.mark.anyio
async def test_wrong_or_missing_token_is_rejected_and_nothing_runs(reynolds_cluster: Cluster) -> None:
    reynolds, (agent,) = start_workbench(reynolds_cluster)
    client_url, agents_url = f"{reynolds.base_url}/mcp", f"{reynolds.base_url}/agents/mcp"
    c_token, a_token = reynolds_cluster.client_token, reynolds_cluster.agent_token
    refused = [
        (client_url, ORCHESTRATE, None),
        (client_url, ORCHESTRATE, "wrong-token"),
        (client_url, ORCHESTRATE, a_token),  # the agent token is not a client token
        (agents_url, register(f"{agent.base_url}/mcp"), None),
        (agents_url, register(f"{agent.base_url}/mcp"), c_token),  # nor the client token an agent token
        (f"{agent.base_url}/mcp", ORCHESTRATE, None),  # agents accept calls only with the agent token
        (f"{agent.base_url}/mcp", ORCHESTRATE, c_token),
    ]
    for url, body, token in refused:
        response = await post(url, body, token)
        assert response.status_code == 401, (url, token, response.status_code, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
        assert response.json()["error"] == "invalid_token"

    for url, token in ((client_url, "wrong-token"), (agents_url, c_token)):
        with pytest.raises(BaseException) as failed:  # the SDK wraps the refusal in exception groups
            async with connect(url, token) as c:
                await c.list_tools()
        assert any(isinstance(e, MCPError | httpx2.HTTPStatusError) for e in leaves(failed.value)), failed.value

    async with reynolds_cluster.client() as c:
        listed = await call(c, "list_tasks", {})
        fleet = await call(c, "list_agents", {})
    assert listed["total"] == 0, listed
    assert [p["pool"] for p in fleet["pools"]] == ["workbench"], fleet  # no rogue pool registered
    assert reynolds_cluster.records(agent) == []
