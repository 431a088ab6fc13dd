"""The docker agent's tools: containers of a Compose project, their logs and health, and restarts.

This is the only agent that holds the Docker socket (root on the host), so it reads no repository
content: every tool talks to the daemon through the docker SDK and nothing else (dockerapi.py)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.docker import dockerapi
from agents.runtime import AgentRuntime
from agents.runtime.annotations import DISRUPT, READ

MONITORING = "infrastructure/monitoring.json"

ContainerName = Annotated[str, Field(min_length=1, max_length=256, description="container name or id")]


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    register_inspection(server)
    register_logs(server, runtime)
    register_restart(server)


def register_inspection(server: MCPServer) -> None:
    @server.tool(annotations=READ)
    async def docker_list_containers(
        project: Annotated[str, Field(min_length=1, max_length=256, description="Compose project name")],
    ) -> dockerapi.ContainerList:
        """Containers of a Docker Compose project (label com.docker.compose.project), running or not,
        with service, image, status, health and restart count; lists the unhealthy ones. Needs the
        Docker socket (DOCKER_HOST or /var/run/docker.sock)."""
        return await dockerapi.run(f"project {project}", dockerapi.list_containers, project)

    @server.tool(annotations=READ)
    async def docker_health(container: ContainerName) -> dockerapi.Health:
        """Health of one container: status, healthcheck state, failing streak, restart count and the
        last healthcheck outputs."""
        return await dockerapi.run(f"container {container}", dockerapi.health, container)


def register_logs(server: MCPServer, runtime: AgentRuntime) -> None:
    @server.tool(annotations=READ)
    async def docker_logs(
        container: ContainerName,
        tail: Annotated[int | None, Field(ge=1, le=100_000)] = None,
    ) -> dockerapi.Logs:
        """The last `tail` log lines (with timestamps) of a container; the default and the cap come
        from context/infrastructure/monitoring.json (logs.default_tail, logs.max_tail)."""
        policy = (runtime.layers.read_structured("context", MONITORING, {}) or {}).get("logs", {})
        lines = min(tail or int(policy.get("default_tail", 200)), int(policy.get("max_tail", 5000)))
        return await dockerapi.run(f"container {container}", dockerapi.logs, container, lines)


def register_restart(server: MCPServer) -> None:
    @server.tool(annotations=DISRUPT)
    async def docker_restart(
        container: ContainerName,
        timeout_s: Annotated[int, Field(ge=0, le=300, description="seconds to wait for a clean stop")] = 10,
    ) -> dockerapi.Restarted:
        """Restart one container (stop with timeout, then start) and report its status before and after.
        Interrupts whatever the container is doing: the planner runs it only when a goal names it."""
        return await dockerapi.run(f"container {container}", dockerapi.restart, container, timeout_s)
