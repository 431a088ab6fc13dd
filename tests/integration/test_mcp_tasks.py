"""MCP Tasks through the SDK's client (protocol 2025-11-25): orchestrate as a task, polled with tasks/get,
collected with tasks/result, listed and cancelled, answered from Postgres by another Reynolds process, and
closed to other tenants."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.client.extension import ClientExtension, NotificationBinding

from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import sdk_client, start_workbench

pytestmark = pytest.mark.anyio
PLAN = {"subtasks": [{"id": "nap", "tool": "sleep", "arguments": {"seconds": 1.5}}]}


class StatusWatcher(ClientExtension):
    """The client side of notifications/tasks/status (the SDK has the model, not the method)."""

    identifier = "dev.reynolds-tests/task-status"

    def __init__(self, seen: list[types.TaskStatusNotificationParams]) -> None:
        self.seen = seen

    def notifications(self) -> list[NotificationBinding[Any]]:
        async def note(params: types.TaskStatusNotificationParams) -> None:
            self.seen.append(params)

        return [
            NotificationBinding(
                method="notifications/tasks/status", params_type=types.TaskStatusNotificationParams, handler=note
            )
        ]


@asynccontextmanager
async def legacy(
    proc: Proc, token: str, mode: str = "legacy", seen: list[types.TaskStatusNotificationParams] | None = None
) -> AsyncIterator[Client]:
    async with sdk_client(proc, token, mode=mode, extensions=[StatusWatcher([] if seen is None else seen)]) as client:
        yield client


async def send(client: Client, request: Any, result: Any) -> Any:
    return await client.session.send_request(request, result)


async def create(client: Client, plan: dict[str, Any] = PLAN) -> types.CreateTaskResult:
    params = types.CallToolRequestParams(name="orchestrate", arguments={"plan": plan}, task=types.TaskMetadata())
    return await send(client, types.CallToolRequest(params=params), types.CreateTaskResult)


async def status(client: Client, task_id: str) -> types.GetTaskResult:
    request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id))
    return await send(client, request, types.GetTaskResult)


def result_request(task_id: str) -> types.GetTaskPayloadRequest:
    return types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=task_id))


async def test_orchestrate_as_a_task_get_result_and_list(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    seen: list[types.TaskStatusNotificationParams] = []
    async with legacy(reynolds, reynolds_cluster.client_token, seen=seen) as client:
        assert client.server_capabilities.tasks is not None
        assert client.server_capabilities.tasks.requests.tools.call is not None
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["orchestrate"].execution.task_support == "optional"
        assert tools["get_task"].execution is None

        created = await create(client)
        assert created.task.status == "working" and created.task.poll_interval
        task_id = created.task.task_id
        assert (await status(client, task_id)).status == "working"

        payload = await send(client, result_request(task_id), types.CallToolResult)  # waits for the end
        assert payload.structured_content["state"] == "succeeded"
        assert payload.meta["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
        assert (await status(client, task_id)).status == "completed"
        assert {n.task_id for n in seen} == {task_id}  # status notifications while tasks/result waited
        assert seen[-1].status == "completed" and all(n.status == "working" for n in seen[:-1])

        listed = await send(client, types.ListTasksRequest(), types.ListTasksResult)
        assert [t.task_id for t in listed.tasks] == [task_id]


async def test_another_process_answers_and_the_task_outlives_a_restart(reynolds_cluster: Cluster) -> None:
    first, _ = start_workbench(reynolds_cluster)
    second = reynolds_cluster.start_reynolds()
    async with legacy(first, reynolds_cluster.client_token) as client:
        task_id = (await create(client)).task.task_id
    async with legacy(second, reynolds_cluster.client_token) as client:  # a process that never saw the call
        assert (await status(client, task_id)).status == "working"
        payload = await send(client, result_request(task_id), types.CallToolResult)
        assert payload.structured_content["state"] == "succeeded"
    first.stop()
    second.stop()
    third = reynolds_cluster.start_reynolds()
    async with legacy(third, reynolds_cluster.client_token) as client:
        assert (await status(client, task_id)).status == "completed"
        payload = await send(client, result_request(task_id), types.CallToolResult)
        assert payload.structured_content["task_id"] == task_id


async def test_cancel_a_task_and_refuse_a_second_cancel(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    long = {"subtasks": [{"id": "nap", "tool": "sleep", "arguments": {"seconds": 30}}]}
    async with legacy(reynolds, reynolds_cluster.client_token) as client:
        task_id = (await create(client, long)).task.task_id
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id))
        cancelled = await send(client, request, types.CancelTaskResult)
        assert cancelled.status == "cancelled"
        with pytest.raises(MCPError, match="already ended") as err:
            await send(client, request, types.CancelTaskResult)
        assert err.value.error.code == types.INVALID_PARAMS


async def test_hostile_task_requests_get_clear_errors(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    async with legacy(reynolds, reynolds_cluster.client_token) as client:
        for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", "x" * 10_000, "\u0000"):
            with pytest.raises(MCPError) as err:
                await status(client, bad)
            assert err.value.error.code == types.INVALID_PARAMS
        for cursor in ("-1", "9" * 40, "abc"):
            request = types.ListTasksRequest(params=types.PaginatedRequestParams(cursor=cursor))
            with pytest.raises(MCPError, match="not a cursor"):
                await send(client, request, types.ListTasksResult)
        # a plan refused before any task exists is the tool's own error, not a task
        params = types.CallToolRequestParams(
            name="orchestrate", arguments={"plan": {"subtasks": []}}, task=types.TaskMetadata()
        )
        refused = await send(client, types.CallToolRequest(params=params), types.CallToolResult)
        assert refused.is_error
        # the task field on a tool that is not a task tool changes nothing
        params = types.CallToolRequestParams(name="list_tasks", arguments={}, task=types.TaskMetadata())
        listed = await send(client, types.CallToolRequest(params=params), types.CallToolResult)
        assert listed.structured_content["tasks"] == []


async def test_the_2026_era_has_no_task_methods_and_keeps_todays_behaviour(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    async with legacy(reynolds, reynolds_cluster.client_token, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        with pytest.raises(MCPError):
            await status(client, "00000000-0000-0000-0000-000000000000")
        result = await client.call_tool("orchestrate", {"plan": PLAN})
        assert result.structured_content["state"] == "succeeded"


async def test_another_tenant_cannot_see_the_task(reynolds_cluster: Cluster) -> None:
    tokens = reynolds_cluster.workdir / "client_tokens"
    tokens.write_text("tok-alice-0001 alice\ntok-bob-0002 bob\n")
    reynolds, _ = start_workbench(reynolds_cluster, REYNOLDS_CLIENT_TOKENS_FILE=str(tokens))
    async with legacy(reynolds, "tok-alice-0001") as client:
        task_id = (await create(client)).task.task_id
    async with legacy(reynolds, "tok-bob-0002") as client:
        with pytest.raises(MCPError, match="no task"):
            await status(client, task_id)
        with pytest.raises(MCPError, match="no task"):
            await send(
                client,
                types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id)),
                types.CancelTaskResult,
            )
        assert (await send(client, types.ListTasksRequest(), types.ListTasksResult)).tasks == []


async def experiment(client: Client, strategies: list[str], seconds: float) -> types.CreateTaskResult:
    plan = {"subtasks": [{"id": f"s{i}", "tool": "sleep", "arguments": {"seconds": seconds}} for i in range(2)]}
    scenario = {"name": "as-a-task", "workload": {"plan": plan}, "strategies": strategies, "repetitions": 1}
    params = types.CallToolRequestParams(
        name="run_experiment", arguments={"scenario": json.dumps(scenario)}, task=types.TaskMetadata()
    )
    return await send(client, types.CallToolRequest(params=params), types.CreateTaskResult)


async def test_run_experiment_as_a_task(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    async with legacy(reynolds, reynolds_cluster.client_token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["run_experiment"].execution.task_support == "optional"
        created = await experiment(client, ["sequential", "parallel"], 0.1)
        experiment_id = created.task.task_id
        assert created.task.status == "working"
        payload = await send(client, result_request(experiment_id), types.CallToolResult)  # waits for the report
        assert payload.structured_content["experiment_id"] == experiment_id
        assert payload.structured_content["state"] == "succeeded" and payload.structured_content["report"]
        assert (await status(client, experiment_id)).status == "completed"
        listed = [t.task_id for t in (await send(client, types.ListTasksRequest(), types.ListTasksResult)).tasks]
        assert experiment_id in listed and len(listed) == 3  # the experiment and the tasks of its two runs

        long = await experiment(client, ["sequential", "parallel"], 30)
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=long.task.task_id))
        assert (await send(client, request, types.CancelTaskResult)).status == "cancelled"
