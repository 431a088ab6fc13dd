"""The running system the end-to-end tests talk to, as .ci/e2e.sh started it.

Everything goes over the real interfaces: MCP over HTTP to Reynolds' published port with the client
token, Prometheus' HTTP API, and the Docker API for what an operator would do by hand (kill or restart a
container, take the deployment down and up). Settings come from the environment .ci/e2e.sh exports:

    REYNOLDS_E2E_URL           client endpoint, e.g. http://127.0.0.1:18080/mcp
    REYNOLDS_E2E_TOKEN_FILE    file holding the client token
    REYNOLDS_E2E_PROMETHEUS    e.g. http://127.0.0.1:19090
    REYNOLDS_E2E_PROJECT       compose project name
    REYNOLDS_E2E_COMPOSE       the compose command line for that project (shell words)
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import docker
import pytest
from mcp import Client

from reynolds.client import call, connect

T = TypeVar("T")
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"


@dataclass(frozen=True)
class System:
    url: str
    token: str
    prometheus: str
    project: str
    compose: list[str]

    def containers(self, service: str, running_only: bool = True) -> list[Any]:
        client = docker.from_env()
        try:
            found = client.containers.list(
                all=not running_only,
                filters={
                    "label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]
                },
            )
        finally:
            client.close()
        return sorted(found, key=lambda c: int(c.labels["com.docker.compose.container-number"]))

    def compose_run(self, *args: str, timeout: float = 300) -> None:
        subprocess.run([*self.compose, *args], check=True, timeout=timeout)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url.removesuffix("/mcp") + "/ready", timeout=3) as response:
                return response.status == 200
        except OSError:
            return False

    def prometheus_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.prometheus + path, timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="session")
def system() -> System:
    missing = [
        name
        for name in ("REYNOLDS_E2E_URL", "REYNOLDS_E2E_TOKEN_FILE", "REYNOLDS_E2E_PROJECT", "REYNOLDS_E2E_COMPOSE")
        if not os.environ.get(name)
    ]
    if missing:
        pytest.fail(f"end-to-end tests need a running system (run .ci/e2e.sh); missing {', '.join(missing)}")
    return System(
        url=os.environ["REYNOLDS_E2E_URL"],
        token=Path(os.environ["REYNOLDS_E2E_TOKEN_FILE"]).read_text().split()[0],
        prometheus=os.environ.get("REYNOLDS_E2E_PROMETHEUS", "http://127.0.0.1:19090"),
        project=os.environ["REYNOLDS_E2E_PROJECT"],
        compose=shlex.split(os.environ["REYNOLDS_E2E_COMPOSE"]),
    )


@pytest.fixture
async def mcp(system: System) -> AsyncIterator[Client]:
    async with connect(system.url, system.token) as client:
        yield client


Tool = Callable[..., Awaitable[Any]]


@pytest.fixture
def tool(system: System) -> Tool:
    """``await tool("get_task", task_id=...)``: one call on a fresh connection, so a test survives Reynolds
    restarting between two calls."""

    async def run(name: str, **arguments: Any) -> Any:
        async with connect(system.url, system.token) as client:
            return await call(client, name, arguments)

    return run


async def eventually(check: Callable[[], Awaitable[T | None]], within_s: float, what: str, every: float = 1.0) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` and the last error after ``within_s``."""
    deadline = time.monotonic() + within_s
    last: BaseException | None = None
    while True:
        try:
            value = await check()
            if value:
                return value
        except Exception as err:  # the system may be restarting: keep polling
            last = err
        if time.monotonic() > deadline:
            detail = f" (last error: {last})" if last else ""
            raise AssertionError(f"timed out after {within_s:.0f}s waiting for {what}{detail}")
        await anyio.sleep(every)


def by_id(task: dict) -> dict[str, dict]:
    return {s["id"]: s for s in task["subtasks"]}


def explain(task: dict) -> str:
    """A task's outcome in a few lines, for assertion messages."""
    lines = [f"task {task['task_id']}: {task['state']} {task.get('error') or ''}".rstrip()]
    for sub in task["subtasks"]:
        detail = sub.get("error") or ""
        lines.append(f"  {sub['id']} [{sub['pool']}/{sub['tool']}] {sub['state']} x{sub['attempts']} {detail}".rstrip())
    return "\n".join(lines)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_dashboards.py reads what the other e2e tests made happen, so it runs after them (stable sort)."""
    items.sort(key=lambda item: item.path.name == "test_dashboards.py")
