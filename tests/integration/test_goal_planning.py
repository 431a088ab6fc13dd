"""A goal without a plan is planned: by the client's LLM through MCP sampling, else by the router.

The client's LLM is the one remote service here, so the sampling callback below is a test double: it
answers with a fixed plan, first (optionally) with something that is not one."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from reynolds.client import call
from tests.integration.cluster import Cluster

PLAN = {
    "subtasks": [
        {"id": "hello", "tool": "echo", "arguments": {"value": "hi"}},
        {"id": "again", "tool": "echo", "arguments": {"value": {"$from": "hello", "path": "value"}}},
    ]
}


def llm_double(answers: list[str], prompts: list[str]) -> Callable:
    async def sampling(ctx: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        prompts.append(params.messages[-1].content.text)  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=answers.pop(0)),
            model="double",
            stop_reason="endTurn",
        )

    return sampling


async def orchestrate_with_sampling(
    cluster: Cluster, mode: str, answers: list[str], prompts: list[str]
) -> types.CallToolResult:
    reynolds = cluster.reynolds[0]
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {cluster.client_token}"}, timeout=httpx2.Timeout(30, read=None)
        ) as http,
        Client(
            streamable_http_client(f"{reynolds.base_url}/mcp", http_client=http),
            mode=mode,
            sampling_callback=llm_double(answers, prompts),
        ) as client,
    ):
        return await client.call_tool("orchestrate", {"goal": "say hi twice"})


@pytest.fixture
def workbench_cluster(reynolds_cluster: Cluster) -> Cluster:
    reynolds_cluster.start_reynolds()
    reynolds_cluster.start_agent("workbench")
    reynolds_cluster.wait_registered(["workbench-0"])
    return reynolds_cluster


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28 input-required round trip, 2025-11-25 request
async def test_goal_is_planned_by_the_clients_llm_with_one_retry(workbench_cluster: Cluster, mode: str) -> None:
    prompts: list[str] = []
    answers = ["Sure! Here is my plan: {not json", "```json\n" + json.dumps(PLAN) + "\n```"]
    result = await orchestrate_with_sampling(workbench_cluster, mode, answers, prompts)
    assert not result.is_error, result.content
    task = result.structured_content or {}
    assert task["state"] == "succeeded"
    assert task["planning"]["planner"] == "sampling"
    assert task["planning"]["notes"]  # says it had to ask again
    assert [s["id"] for s in task["subtasks"]] == ["hello", "again"]
    assert task["subtasks"][1]["result"]["value"] == "hi"
    assert "Goal: say hi twice" in prompts[0] and "echo" in prompts[0]  # the catalog went to the LLM
    assert "cannot run" in prompts[1]  # the retry says what was wrong


@pytest.mark.anyio
async def test_an_llm_that_never_answers_with_a_plan_gets_a_clear_error(workbench_cluster: Cluster) -> None:
    prompts: list[str] = []
    result = await orchestrate_with_sampling(workbench_cluster, "auto", ["no idea", "still no idea"], prompts)
    assert result.is_error
    assert "did not produce a valid plan after a retry" in result.content[0].text  # type: ignore[union-attr]
    assert len(prompts) == 2
    async with workbench_cluster.client() as c:
        assert (await call(c, "list_tasks", {}))["total"] == 0


@pytest.mark.anyio
async def test_without_sampling_the_router_matches_goal_words_to_tools(workbench_cluster: Cluster) -> None:
    async with workbench_cluster.client() as c:
        view = await call(c, "plan_task", {"goal": "echo something back"})
        assert view["planning"]["planner"] == "router"
        assert [s["tool"] for s in view["subtasks"]] == ["echo"]
        task = await call(c, "orchestrate", {"goal": "echo something back"})
        assert task["state"] == "succeeded" and task["planning"]["planner"] == "router"
        with pytest.raises(Exception, match="could not turn the goal into a plan"):
            await call(c, "orchestrate", {"goal": "bake a cake"})
        with pytest.raises(Exception, match="give a plan"):
            await call(c, "orchestrate", {})
