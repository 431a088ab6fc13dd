"""An extra pool from the pools file: any MCP server (here a stdio one written for the test) is listed and
routed to like a built-in agent."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from reynolds.client import call
from tests.integration.cluster import Cluster
from tests.integration.conftest import run_plan, start_workbench, subtask

SERVER = textwrap.dedent(
    '''
    """A tiny stdio MCP server: text statistics."""
    import hashlib

    from mcp.server.mcpserver import MCPServer
    from pydantic import BaseModel

    server = MCPServer("textstats")


    class Stats(BaseModel):
        words: int
        sha256: str


    @server.tool()
    def text_stats(text: str) -> Stats:
        """Count the words of `text` and hash it."""
        return Stats(words=len(text.split()), sha256=hashlib.sha256(text.encode()).hexdigest())


    server.run()
    '''
)


@pytest.mark.anyio
async def test_extra_pool_from_pools_file(reynolds_cluster: Cluster, tmp_path: Path) -> None:
    script = tmp_path / "textstats_server.py"
    script.write_text(SERVER)
    pools_file = tmp_path / "pools.yaml"
    pools_file.write_text(yaml.safe_dump({"pools": [{"name": "textstats", "command": [sys.executable, str(script)]}]}))
    start_workbench(reynolds_cluster, REYNOLDS_POOLS_FILE=str(pools_file))

    text = "the quick brown fox jumps"
    plan = {
        "subtasks": [
            {"id": "say", "tool": "echo", "arguments": {"value": text}},
            {"id": "stats", "tool": "text_stats", "arguments": {"text": {"$from": "say", "path": "value"}}},
            {"id": "report", "tool": "echo", "arguments": {"value": {"$from": "stats", "path": "words"}}},
        ]
    }
    async with reynolds_cluster.client() as c:
        fleet = await call(c, "list_agents", {})
        pools = {p["pool"]: p for p in fleet["pools"]}
        task = await run_plan(c, plan)
    assert set(pools) == {"textstats", "workbench"}, fleet
    assert pools["textstats"]["tools"] == ["text_stats"]
    (replica,) = pools["textstats"]["replicas"]
    assert replica["static"] and replica["healthy"] and replica["agent_type"] == "external", replica

    assert task["state"] == "succeeded", task
    stats = subtask(task, "stats")
    assert stats["pool"] == "textstats" and stats["agent_id"] == "textstats-0", stats
    assert stats["result"] == {"words": 5, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    assert subtask(task, "report")["result"]["value"] == 5
