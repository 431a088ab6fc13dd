"""A real Reynolds cluster on this machine for tests and benchmarks: Reynolds and agent processes
started with ``reynolds serve`` / ``reynolds agent``, isolated in their own Postgres schema and Redis
key prefix, on free loopback ports. Processes can be killed (-9) and restarted to drill failures."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import redis
from mcp import Client

from agents.runtime.settings import AGENT_TYPES
from reynolds.auth import PoolTokens
from reynolds.client import connect

REPO = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Short timeouts so failure drills finish in seconds, not minutes.
FAST_SETTINGS = {
    "REYNOLDS_VISIBILITY_TIMEOUT_S": "3",
    "REYNOLDS_HEARTBEAT_TTL_S": "4",
    "REYNOLDS_PROBE_INTERVAL_S": "0.5",
    "REYNOLDS_UNHEALTHY_AFTER": "2",
    "REYNOLDS_CIRCUIT_OPEN_S": "2",
    "REYNOLDS_BACKOFF_BASE_S": "0.1",
    "REYNOLDS_BACKOFF_MAX_S": "1",
    "REYNOLDS_NO_REPLICA_WAIT_S": "5",
    "REYNOLDS_DRAIN_TIMEOUT_S": "2",
    "REYNOLDS_LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = self.log.open("ab")
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_http(self, path: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}; log:\n{self.log.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(self.base_url + path, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(
            f"{self.name} did not answer {path} within {timeout_s} s; log:\n{self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — a crash."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """Reynolds processes and agent processes sharing one schema, one key prefix, one client token and one
    agent key (each agent gets its pool's token derived from it)."""

    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    schema: str = field(default_factory=lambda: f"t_{uuid.uuid4().hex[:12]}")
    prefix: str = field(default_factory=lambda: f"rt-{uuid.uuid4().hex[:12]}")
    client_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    agent_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    reynolds: list[Proc] = field(default_factory=list)
    agents: list[Proc] = field(default_factory=list)
    database_url: str = DATABASE_URL  # chaos tests point these at a Postgres and a Redis of their own
    redis_url: str = REDIS_URL

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name, token in (
            ("client_token", self.client_token),
            ("agent_key", self.agent_key),
            *((f"agent_token_{pool}", self.pool_token(pool)) for _long, pool, _module in AGENT_TYPES.values()),
        ):
            (self.workdir / name).write_text(token)
            (self.workdir / name).chmod(0o600)  # agents refuse to sandbox anything while others can read it

    def pool_token(self, pool: str) -> str:
        """The token an agent of ``pool`` holds (and Reynolds presents to it)."""
        return PoolTokens(self.agent_key).token_for(pool)

    @property
    def agent_token(self) -> str:
        """The workbench pool's token: the pool most tests' agents are in."""
        return self.pool_token("workbench")

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            **os.environ,
            **FAST_SETTINGS,
            "REYNOLDS_DATABASE_URL": self.database_url,
            "REYNOLDS_DATABASE_SCHEMA": self.schema,
            "REYNOLDS_REDIS_URL": self.redis_url,
            "REYNOLDS_KEY_PREFIX": self.prefix,
            "REYNOLDS_CLIENT_TOKENS_FILE": str(self.workdir / "client_token"),
            "REYNOLDS_AGENT_KEY_FILE": str(self.workdir / "agent_key"),
            # task workspaces: Reynolds makes them, every agent of the cluster sees them at the same path
            "REYNOLDS_WORKSPACES_DIR": str(self.workdir / "workspaces"),
            "WORKSPACES_DIR": str(self.workdir / "workspaces"),
            **self.settings,
            **extra,
        }

    # ------------------------------------------------------------------ processes
    def start_reynolds(self, **settings: str) -> Proc:
        port = free_port()
        name = f"reynolds-{len(self.reynolds)}"
        proc = Proc(
            name,
            [sys.executable, "-m", "reynolds", "serve"],
            self._env({"REYNOLDS_PORT": str(port), "REYNOLDS_HOST": "127.0.0.1", **settings}),
            port,
            self.workdir / f"{name}.log",
        ).start()
        proc.wait_http("/ready")
        self.reynolds.append(proc)
        return proc

    def start_agent(self, kind: str = "workbench", reynolds: Proc | None = None, **settings: str) -> Proc:
        target = reynolds or self.reynolds[0]
        port = free_port()
        name = f"{kind}-{len(self.agents)}"
        home = self.workdir / name
        pool = settings.get("AGENT_POOL") or AGENT_TYPES[kind][1]  # a pool of its own needs that pool's token
        token_file = self.workdir / f"agent_token_{pool}"
        if not token_file.exists():
            token_file.write_text(self.pool_token(pool))
            token_file.chmod(0o600)
        proc = Proc(
            name,
            [sys.executable, "-m", "reynolds", "agent"],
            self._env(
                {
                    "AGENT_TYPE": kind,
                    "AGENT_TOKEN_FILE": str(token_file),
                    "AGENT_ID": name,
                    "AGENT_PORT": str(port),
                    "AGENT_HOST": "127.0.0.1",
                    "AGENT_URL": f"http://127.0.0.1:{port}/mcp",
                    "MCP_ENDPOINT": f"{target.base_url}/agents/mcp",
                    "HEARTBEAT_INTERVAL_S": "1",
                    "KNOWLEDGE_DIR": str(REPO / "agents" / kind / "knowledge"),
                    "CONTEXT_DIR": str(REPO / "context"),
                    "MEMORY_DIR": str(home / "memory"),
                    "WORKSPACE_DIR": str(home / "workspace"),
                    **settings,
                }
            ),
            port,
            self.workdir / f"{name}.log",
        ).start()
        proc.wait_http("/health")
        self.agents.append(proc)
        return proc

    def wait_registered(self, agent_ids: list[str], timeout_s: float = 20.0) -> None:
        """Until every named agent is registered in Redis."""
        r = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                # a complete registration lists tools (a lease claim alone holds only the lease)
                found = {
                    k.decode().rsplit(":", 1)[-1]
                    for k in r.scan_iter(f"{self.prefix}:agent:*")
                    if r.hexists(k, "tools")
                }
                if set(agent_ids) <= found:
                    return
                time.sleep(0.1)
        finally:
            r.close()
        raise TimeoutError(f"agents {agent_ids} did not register within {timeout_s} s")

    def records(self, agent: Proc) -> list[dict[str, Any]]:
        """Lines the workbench ``record`` tool wrote on one agent (its side effects)."""
        import json

        path = Path(agent.env["MEMORY_DIR"]) / "workbench-records.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    @contextlib.asynccontextmanager
    async def client(self, reynolds: Proc | None = None, token: str | None = None) -> AsyncIterator[Client]:
        target = reynolds or self.reynolds[0]
        async with connect(f"{target.base_url}/mcp", token or self.client_token) as c:
            yield c

    # ------------------------------------------------------------------ clean-up
    def close(self) -> None:
        for proc in [*self.agents, *self.reynolds]:
            proc.stop(timeout_s=5)
        r = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(r.scan_iter(f"{self.prefix}:*"))
            if keys:
                r.delete(*keys)
        finally:
            r.close()
        import anyio

        async def drop() -> None:
            conn = await asyncpg.connect(self.database_url)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            finally:
                await conn.close()

        anyio.run(drop)


@contextlib.contextmanager
def cluster(
    workdir: Path, database_url: str = DATABASE_URL, redis_url: str = REDIS_URL, **settings: str
) -> Iterator[Cluster]:
    c = Cluster(workdir, settings=dict(settings), database_url=database_url, redis_url=redis_url)
    try:
        yield c
    finally:
        c.close()
