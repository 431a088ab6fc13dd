"""Docker tools (docker agent) without a daemon: DOCKER_HOST points at a unix socket nobody listens on, so every tool
must answer NotConfigured with the reason, through the real docker SDK connection attempt."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture
def dead_docker_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the socket file stays; connecting to it is refused
    url = f"unix://{path}"
    monkeypatch.setenv("DOCKER_HOST", url)
    return url


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("docker_list_containers", {"project": "reynolds"}),
        ("docker_logs", {"container": "reynolds-docker-agent-1", "tail": 50}),
        ("docker_health", {"container": "reynolds-docker-agent-1"}),
        ("docker_restart", {"container": "reynolds-docker-agent-1"}),
    ],
)
async def test_unreachable_daemon_is_not_configured(
    agent_client, dead_docker_socket: str, tool: str, arguments
) -> None:
    client, _ = await agent_client("docker")
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0].text
    assert "Docker is not reachable: mount /var/run/docker.sock" in text
    assert dead_docker_socket in text


@pytest.mark.anyio
async def test_arguments_are_validated_before_connecting(agent_client, dead_docker_socket: str) -> None:
    client, _ = await agent_client("docker")
    result = await client.call_tool("docker_logs", {"container": "x", "tail": 0})
    assert result.is_error and "greater than or equal to 1" in result.content[0].text


@pytest.mark.anyio
async def test_the_docker_tools_live_in_the_docker_agent_only(agent_client) -> None:
    docker_agent, _ = await agent_client("docker")
    devops, _ = await agent_client("devops")
    docker_tools = {t.name for t in (await docker_agent.list_tools()).tools}
    devops_tools = {t.name for t in (await devops.list_tools()).tools}
    assert docker_tools == {"recall", "docker_list_containers", "docker_logs", "docker_health", "docker_restart"}
    assert not {name for name in devops_tools if name.startswith("docker_")}
