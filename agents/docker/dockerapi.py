"""Docker through the docker SDK: containers of a Compose project, their logs, health and restarts.

The daemon is reached through DOCKER_HOST or /var/run/docker.sock; when neither answers, every tool
says so (NotConfigured) instead of guessing. Calls are blocking, so callers run them in a thread."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import docker
from docker.errors import APIError, NotFound
from pydantic import BaseModel, Field

from agents.docker.settings import load_settings
from agents.runtime.errors import NotConfigured, ToolError

T = TypeVar("T")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class Container(BaseModel):
    id: str
    name: str
    service: str | None = Field(description="Compose service (label com.docker.compose.service)")
    image: str
    status: str = Field(description="created | running | paused | restarting | exited | dead")
    health: str | None = Field(description="healthy | unhealthy | starting; None without a healthcheck")
    restart_count: int


class ContainerList(BaseModel):
    project: str
    count: int
    unhealthy: list[str]
    containers: list[Container]


class Logs(BaseModel):
    container: str
    tail: int
    lines: list[str]


class HealthCheckRun(BaseModel):
    exit_code: int
    output: str
    start: str | None
    end: str | None


class Health(BaseModel):
    container: str
    status: str
    health: str | None
    failing_streak: int
    restart_count: int
    recent: list[HealthCheckRun]


class Restarted(BaseModel):
    container: str
    status_before: str
    status_after: str


def client() -> docker.DockerClient:
    """A client that has answered a ping, or NotConfigured."""
    settings = load_settings()
    base_url = settings.docker_host or DEFAULT_SOCKET
    try:
        dc = docker.DockerClient(base_url=base_url, timeout=settings.docker_timeout_s)
        dc.ping()
        return dc
    except Exception as err:  # DockerException, or a connection error straight from requests/urllib3
        raise NotConfigured(
            f"Docker is not reachable: mount /var/run/docker.sock into the agent or set DOCKER_HOST "
            f"(tried {base_url}: {err})"
        ) from err


async def run(what: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking docker SDK call in a worker thread with readable errors."""
    return await anyio.to_thread.run_sync(functools.partial(_translated, what, fn, *args))


def _translated(what: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except NotFound as err:
        raise ToolError(f"Docker: {what} not found") from err
    except APIError as err:
        raise ToolError(f"Docker refused {what}: {err.explanation or err}") from err


def _container(c: Any) -> Container:
    state = c.attrs.get("State", {})
    return Container(
        id=c.short_id,
        name=c.name,
        service=c.labels.get(SERVICE_LABEL),
        image=(c.image.tags[0] if c.image and c.image.tags else c.attrs.get("Config", {}).get("Image", "")),
        status=c.status,
        health=(state.get("Health") or {}).get("Status"),
        restart_count=c.attrs.get("RestartCount", 0),
    )


def list_containers(project: str) -> ContainerList:
    found = client().containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    containers = sorted((_container(c) for c in found), key=lambda c: c.name)
    unhealthy = [c.name for c in containers if c.health == "unhealthy" or c.status in ("exited", "dead", "restarting")]
    return ContainerList(project=project, count=len(containers), unhealthy=unhealthy, containers=containers)


def logs(container: str, tail: int) -> Logs:
    raw = client().containers.get(container).logs(tail=tail, timestamps=True)
    return Logs(container=container, tail=tail, lines=raw.decode("utf-8", errors="replace").splitlines())


def health(container: str) -> Health:
    c = client().containers.get(container)
    state = c.attrs.get("State", {})
    h = state.get("Health") or {}
    recent = [
        HealthCheckRun(
            exit_code=r.get("ExitCode", -1),
            output=(r.get("Output") or "")[-2000:],
            start=r.get("Start"),
            end=r.get("End"),
        )
        for r in (h.get("Log") or [])[-5:]
    ]
    return Health(
        container=c.name,
        status=c.status,
        health=h.get("Status"),
        failing_streak=h.get("FailingStreak", 0),
        restart_count=c.attrs.get("RestartCount", 0),
        recent=recent,
    )


def restart(container: str, timeout_s: int) -> Restarted:
    c = client().containers.get(container)
    before = c.status
    c.restart(timeout=timeout_s)
    c.reload()
    return Restarted(container=c.name, status_before=before, status_after=c.status)
