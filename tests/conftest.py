"""Fixtures shared by every test layer."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from mcp import Client

from agents.runtime.app import build_server
from agents.runtime.context import AgentRuntime
from agents.runtime.settings import AgentSettings

REPO = Path(__file__).resolve().parents[1]


def _bring_services() -> None:
    """With no TEST_DATABASE_URL / TEST_REDIS_URL and nothing usable on localhost's default ports (e.g. a fresh
    machine, or a Postgres that refuses password-less logins), start embedded servers for this test run.
    Runs when this file is imported: before the other conftest files read those variables."""
    from reynolds import embedded

    if os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL"):
        return
    default_db = "postgresql://postgres@127.0.0.1:5432/test"
    configured_db = os.environ.get("TEST_DATABASE_URL") or (
        default_db if embedded.postgres_answers(default_db) else None
    )
    configured_redis = os.environ.get("TEST_REDIS_URL") or (
        embedded.DEFAULT_REDIS_URL if embedded.redis_answers(embedded.DEFAULT_REDIS_URL) else None
    )
    state = Path(tempfile.mkdtemp(prefix="reynolds-test-services-"))
    found = embedded.ensure_services(state, configured_db, configured_redis, database="test")
    if "REYNOLDS_DATABASE_URL" in found.env:
        os.environ["TEST_DATABASE_URL"] = found.env["REYNOLDS_DATABASE_URL"]
    if "REYNOLDS_REDIS_URL" in found.env:
        os.environ["TEST_REDIS_URL"] = found.env["REYNOLDS_REDIS_URL"]
    if found.env:
        print("tests:", "; ".join(found.notes), file=sys.stderr)

        def stop() -> None:
            found.stop()
            shutil.rmtree(state, ignore_errors=True)

        atexit.register(stop)


_bring_services()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A fresh directory other users may enter (not list): sandboxed commands run as their own uids
    (agents/runtime/sandbox.py) and must reach workspaces under it. pytest's own tmp_path lives under
    /tmp/pytest-of-<user>, which every pytest session resets to 0700."""
    path = Path(tempfile.mkdtemp(prefix="reynolds-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def agent_settings(tmp_path: Path) -> Callable[..., AgentSettings]:
    """Settings for an agent of ``kind`` whose layers live under tmp_path; context is the repo's own."""

    def make(kind: str, **overrides: object) -> AgentSettings:
        values: dict[str, object] = {
            "agent_type": kind,
            "agent_id": f"{kind}-test",
            "agent_token": "agent-test-token",
            "knowledge_dir": REPO / "agents" / kind / "knowledge",
            "context_dir": REPO / "context",
            "memory_dir": tmp_path / "memory",
            "workspace_dir": tmp_path / "workspace",
        }
        values.update(overrides)
        return AgentSettings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def agent_client(agent_settings: Callable[..., AgentSettings]) -> AsyncIterator[Callable[..., object]]:
    """``await open_agent("devops")`` -> (Client, AgentRuntime): the agent's real MCPServer, in memory."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def open_agent(kind: str, **overrides: object) -> tuple[Client, AgentRuntime]:
            runtime = AgentRuntime(agent_settings(kind, **overrides))
            client = await stack.enter_async_context(Client(build_server(runtime)))
            return client, runtime

        yield open_agent
