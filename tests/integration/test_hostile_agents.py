"""A hostile holder of an agent token cannot take over a live replica, join a pool its token does not admit,
hand off into work it is not running, or make Reynolds fetch URLs outside the agent networks (and never sees
what such a URL answered); pools nobody uses are forgotten."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from reynolds import errors
from reynolds.client import call
from tests.integration.agent_side import agent_endpoint, registered, registration
from tests.integration.cluster import Cluster
from tests.integration.conftest import run_plan, sql, start_workbench, subtask, wait_until

SECRET_BODY = "internal-secret-4f1c"  # what a probed internal URL answers; must never reach the caller


@contextlib.contextmanager
def http_server(status: int, headers: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP server on loopback answering every request with ``status``, ``headers`` and SECRET_BODY;
    yields its base URL and the paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            asked.append(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(SECRET_BODY.encode())

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


async def refusal(reynolds: Any, token: str, tool: str, arguments: dict[str, Any]) -> str:
    async with agent_endpoint(reynolds, token) as side:
        with pytest.raises(errors.ReynoldsError) as refused:
            await call(side, tool, arguments)
    return str(refused.value)


async def fleet(c: Cluster) -> dict[str, list[tuple[str, str]]]:
    async with c.client() as client:
        view = await call(client, "list_agents", {})
    return {p["pool"]: [(r["agent_id"], r["url"]) for r in p["replicas"]] for p in view["pools"]}


@pytest.mark.anyio
async def test_a_live_replica_id_cannot_be_taken_over_and_keeps_its_traffic(reynolds_cluster: Cluster) -> None:
    reynolds, (real,) = start_workbench(reynolds_cluster)
    impostor = reynolds_cluster.start_agent("workbench", reynolds=reynolds, MCP_ENDPOINT="")
    token = reynolds_cluster.agent_token  # a genuine workbench token: only the lease is missing
    takeover = registration(real.name, "workbench", f"{impostor.base_url}/mcp")
    assert "belongs to a live replica" in await refusal(reynolds, token, "register_agent", takeover)
    guessed = registration(real.name, "workbench", f"{impostor.base_url}/mcp", lease="guessed-lease")
    assert "belongs to a live replica" in await refusal(reynolds, token, "register_agent", guessed)
    beat = {"agent_id": real.name, "pool": "workbench", "lease": "guessed-lease"}
    assert "belongs to a live replica" in await refusal(reynolds, token, "heartbeat", beat)

    assert (await fleet(reynolds_cluster))["workbench"] == [(real.name, f"{real.base_url}/mcp")]
    plan = {"subtasks": [{"id": f"r{i}", "tool": "record", "arguments": {"key": f"k{i}"}} for i in range(4)]}
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "succeeded", task
    assert {s["agent_id"] for s in task["subtasks"]} == {real.name}
    assert len(reynolds_cluster.records(real)) == 4 and reynolds_cluster.records(impostor) == []


@pytest.mark.anyio
async def test_a_token_joins_only_its_own_pool(reynolds_cluster: Cluster) -> None:
    reynolds, (agent,) = start_workbench(reynolds_cluster)
    url = f"{agent.base_url}/mcp"
    code_token = reynolds_cluster.pool_token("code")
    foreign = await refusal(reynolds, code_token, "register_agent", registration("spy", "workbench", url))
    assert "admits pool 'code', not 'workbench'" in foreign
    junk = await refusal(reynolds, reynolds_cluster.agent_token, "register_agent", registration("j", "junk", url))
    assert "admits pool 'workbench', not 'junk'" in junk
    beat = {"agent_id": agent.name, "pool": "workbench", "lease": "x"}
    assert "admits pool 'code'" in await refusal(reynolds, code_token, "heartbeat", beat)
    assert await fleet(reynolds_cluster) == {"workbench": [(agent.name, url)]}


@pytest.mark.anyio
async def test_only_the_replica_running_a_subtask_hands_off_from_it(reynolds_cluster: Cluster) -> None:
    reynolds = reynolds_cluster.start_reynolds()
    agent = reynolds_cluster.start_agent("workbench", reynolds=reynolds, MCP_ENDPOINT="")
    url, token = f"{agent.base_url}/mcp", reynolds_cluster.agent_token
    child = {"id": "smuggled", "tool": "echo", "arguments": {"value": "forged"}}
    async with reynolds_cluster.client() as c, registered(reynolds, token, "wb-1", "workbench", url) as runner:
        done = await run_plan(c, {"subtasks": [{"id": "old", "tool": "echo", "arguments": {"value": 1}}]})
        plan = {"subtasks": [{"id": "parent", "tool": "sleep", "arguments": {"seconds": 30}}]}
        task_id = (await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"]

        async def parent_running() -> bool:
            return subtask(await call(c, "get_task", {"task_id": task_id}), "parent")["state"] == "running"

        await wait_until(parent_running, 10, "the parent to run on wb-1")
        async with registered(reynolds, token, "wb-2", "workbench", url) as other:
            attempts = [
                (other, task_id, "parent", {}),  # another replica of the same pool
                (runner, task_id, "parent", {"lease": other.lease}),  # the runner's id with another lease
                (runner, done["task_id"], "old", {}),  # another task, finished
                (runner, task_id, "nothing", {}),  # no such subtask
                (runner, "not-a-uuid", "parent", {}),
            ]
            for side, target, parent, override in attempts:
                with pytest.raises(errors.ReynoldsError) as refused:
                    await side.handoff(target, parent, child, **override)
                assert "no running subtask" in str(refused.value), (target, parent, override)
        async with agent_endpoint(reynolds, reynolds_cluster.pool_token("code")) as code_side:
            arguments = {"task_id": task_id, "subtask_id": "parent", "subtasks": [child]}
            with pytest.raises(errors.ReynoldsError, match="no running subtask"):
                await call(code_side, "handoff", {**arguments, "agent_id": "wb-1", "lease": runner.lease})
        view = await call(c, "get_task", {"task_id": task_id})
        assert [s["id"] for s in view["subtasks"]] == ["parent"], view
        await call(c, "cancel_task", {"task_id": task_id})
    assert await sql(reynolds_cluster, "SELECT id FROM subtasks WHERE id = 'smuggled'") == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers"),
    [(200, {}), (302, {"Location": "http://169.254.169.254/latest/meta-data/"}), (500, {})],
    ids=["not-mcp", "redirect", "error"],
)
async def test_a_url_that_is_not_an_mcp_agent_is_refused_without_echoing_it(
    reynolds_cluster: Cluster, status: int, headers: dict[str, str]
) -> None:
    reynolds = reynolds_cluster.start_reynolds()
    with http_server(status, headers) as (base, asked):
        message = await refusal(
            reynolds, reynolds_cluster.agent_token, "register_agent", registration("probe", "workbench", base + "/x")
        )
    assert asked, "Reynolds should have tried the URL inside the networks"
    assert "did not answer MCP tools/list" in message and SECRET_BODY not in message, message
    assert await fleet(reynolds_cluster) == {}


@pytest.mark.anyio
async def test_a_url_outside_the_agent_networks_is_never_fetched(reynolds_cluster: Cluster) -> None:
    reynolds = reynolds_cluster.start_reynolds(REYNOLDS_AGENT_NETWORKS='["10.0.0.0/8"]')
    with http_server(200, {}) as (base, asked):
        for url in (base + "/mcp", "http://169.254.169.254/latest/meta-data/", base.replace("127.0.0.1", "localhost")):
            message = await refusal(
                reynolds, reynolds_cluster.agent_token, "register_agent", registration("probe", "workbench", url)
            )
            assert "outside REYNOLDS_AGENT_NETWORKS" in message, (url, message)
    assert asked == []
    assert await fleet(reynolds_cluster) == {}


@pytest.mark.anyio
async def test_a_pool_nobody_uses_is_pruned_and_a_live_one_stays(reynolds_cluster: Cluster) -> None:
    reynolds, (agent,) = start_workbench(reynolds_cluster, REYNOLDS_POOL_GRACE_S="1", REYNOLDS_PURGE_INTERVAL_S="0.5")
    junk_token_file = reynolds_cluster.workdir / "agent_token_junk"
    junk_token_file.write_text(reynolds_cluster.pool_token("junk"))
    junk = reynolds_cluster.start_agent(
        "workbench", reynolds=reynolds, MCP_ENDPOINT="", AGENT_TOKEN_FILE=str(junk_token_file)
    )
    token = reynolds_cluster.pool_token("junk")
    async with registered(reynolds, token, "junk-1", "junk", f"{junk.base_url}/mcp"):
        assert set(await fleet(reynolds_cluster)) == {"workbench", "junk"}

    async def junk_gone() -> bool:
        return set(await fleet(reynolds_cluster)) == {"workbench"}

    await wait_until(junk_gone, 30, "the unused junk pool to be pruned")
    assert (await fleet(reynolds_cluster))["workbench"] == [(agent.name, f"{agent.base_url}/mcp")]
