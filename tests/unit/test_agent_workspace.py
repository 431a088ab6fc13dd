"""The current workspace on an agent (agents/runtime/workspace.py): a call's ``_meta`` names its task, the
middleware makes ``<WORKSPACES_DIR>/<task id>`` the tree that layers and the sandbox use — in async tools
and in sync tools run in worker threads — and a call without one works in the agent's scratch."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from agents.runtime.app import build_server
from agents.runtime.context import AgentRuntime
from agents.runtime.results import error_text
from agents.runtime.settings import AgentSettings
from agents.runtime.workspace import WORKSPACE_META_KEY, WorkspaceMiddleware

pytestmark = pytest.mark.anyio


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, str]:
    task_id = str(uuid.uuid4())
    (tmp_path / "workspaces" / task_id).mkdir(parents=True)
    return tmp_path / "workspaces", task_id


def runtime_for(agent_settings: Callable[..., AgentSettings], root: Path) -> tuple[AgentRuntime, object]:
    runtime = AgentRuntime(agent_settings("workbench", workspaces_dir=root))
    server = build_server(runtime)
    server.middleware.append(WorkspaceMiddleware(root))

    @server.tool()
    async def pwd() -> str:
        """Where a sandboxed command runs by default."""
        return (await runtime.sandbox.run(["pwd"])).stdout.strip()

    return runtime, server


async def test_calls_naming_a_task_work_in_its_workspace_sync_and_async(
    agent_settings: Callable[..., AgentSettings], roots: tuple[Path, str]
) -> None:
    root, task_id = roots
    runtime, server = runtime_for(agent_settings, root)
    meta = {WORKSPACE_META_KEY: task_id}
    async with Client(server) as client:
        wrote = await client.call_tool("write_file", {"path": "a/b.txt", "text": "hi"}, meta=meta)
        read = await client.call_tool("read_file", {"path": "a/b.txt"}, meta=meta)  # a sync tool: worker thread
        pwd = await client.call_tool("pwd", {}, meta=meta)
        scratch = await client.call_tool("write_file", {"path": "s.txt", "text": "x"})
    assert (root / task_id / "a" / "b.txt").read_text() == "hi"
    assert wrote.structured_content["workspace"] == str(root / task_id)
    assert read.structured_content == {**wrote.structured_content}
    assert pwd.structured_content["result"] == str((root / task_id).resolve())
    assert scratch.structured_content["workspace"] == str(runtime.layers.scratch)
    assert (runtime.layers.scratch / "s.txt").exists() and runtime.layers.workspace == runtime.layers.scratch


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../escape", "must be a task id"),
        ("/etc", "must be a task id"),
        (42, "must be a task id"),
        (str(uuid.UUID(int=1)), "is not on this replica"),
        ("ABCDEF00-0000-0000-0000-000000000000", "must be a task id"),
    ],
)
async def test_a_workspace_that_is_not_a_task_here_is_refused(
    agent_settings: Callable[..., AgentSettings], roots: tuple[Path, str], name: object, message: str
) -> None:
    root, _ = roots
    _, server = runtime_for(agent_settings, root)
    async with Client(server) as client:
        result = await client.call_tool("write_file", {"path": "x", "text": "x"}, meta={WORKSPACE_META_KEY: name})
    assert result.is_error and message in error_text(result)
    assert sorted(p.name for p in root.iterdir()) == [roots[1]] and not list((root / roots[1]).iterdir())


async def test_a_symlinked_workspace_is_refused(
    agent_settings: Callable[..., AgentSettings], roots: tuple[Path, str], tmp_path: Path
) -> None:
    root, _ = roots
    link = str(uuid.uuid4())
    (root / link).symlink_to(tmp_path)
    _, server = runtime_for(agent_settings, root)
    async with Client(server) as client:
        result = await client.call_tool("write_file", {"path": "x", "text": "x"}, meta={WORKSPACE_META_KEY: link})
    assert result.is_error and "is not on this replica" in error_text(result)


async def test_tool_paths_stay_inside_the_task_workspace(
    agent_settings: Callable[..., AgentSettings], roots: tuple[Path, str]
) -> None:
    root, task_id = roots
    _, server = runtime_for(agent_settings, root)
    async with Client(server) as client:
        result = await client.call_tool(
            "write_file", {"path": "../other/x", "text": "x"}, meta={WORKSPACE_META_KEY: task_id}
        )
    assert result.is_error and "outside" in error_text(result)
    assert not (root / "other").exists()
