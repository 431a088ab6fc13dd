"""Extra pools from the pools file: any MCP server is listed and routed to like a built-in agent — a stdio one
written for the test, and plain SDK servers over HTTP (tests/servers/plain_mcp.py: no /health, no registration)
as URL pools with several replicas, failing over, learning tools at run time, reloaded on SIGHUP, answering
with JSON-RPC errors, and behind HTTPS with a private CA."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from reynolds import errors
from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import run_plan, start_workbench, subtask, wait_task, wait_until
from tests.servers import process
from tests.servers.tls import make_ca

SERVER = textwrap.dedent(
    '''
    """A tiny stdio MCP server: text statistics."""
    import hashlib

    from mcp.server.mcpserver import MCPServer
    from pydantic import BaseModel

    server = MCPServer("textstats")


    class Stats(BaseModel):
        words: int
        sha256: str


    @server.tool()
    def text_stats(text: str) -> Stats:
        """Count the words of `text` and hash it."""
        return Stats(words=len(text.split()), sha256=hashlib.sha256(text.encode()).hexdigest())


    server.run()
    '''
)


@pytest.mark.anyio
async def test_extra_pool_from_pools_file(reynolds_cluster: Cluster, tmp_path: Path) -> None:
    script = tmp_path / "textstats_server.py"
    script.write_text(SERVER)
    pools_file = tmp_path / "pools.yaml"
    pools_file.write_text(yaml.safe_dump({"pools": [{"name": "textstats", "command": [sys.executable, str(script)]}]}))
    start_workbench(reynolds_cluster, REYNOLDS_POOLS_FILE=str(pools_file))

    text = "the quick brown fox jumps"
    plan = {
        "subtasks": [
            {"id": "say", "tool": "echo", "arguments": {"value": text}},
            {"id": "stats", "tool": "text_stats", "arguments": {"text": {"$from": "say", "path": "value"}}},
            {"id": "report", "tool": "echo", "arguments": {"value": {"$from": "stats", "path": "words"}}},
        ]
    }
    async with reynolds_cluster.client() as c:
        fleet = await call(c, "list_agents", {})
        pools = {p["pool"]: p for p in fleet["pools"]}
        task = await run_plan(c, plan)
    assert set(pools) == {"textstats", "workbench"}, fleet
    assert pools["textstats"]["tools"] == ["text_stats"]
    (replica,) = pools["textstats"]["replicas"]
    assert replica["static"] and replica["healthy"] and replica["agent_type"] == "external", replica

    assert task["state"] == "succeeded", task
    stats = subtask(task, "stats")
    assert stats["pool"] == "textstats" and stats["agent_id"] == "textstats-0", stats
    assert stats["result"] == {"words": 5, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    assert subtask(task, "report")["result"]["value"] == 5


# ---------------------------------------------------------------- plain SDK servers over HTTP


@dataclass
class Plain:
    """One plain MCP server process on a fixed port (so a restart comes back at the same URL)."""

    name: str
    workdir: Path
    tls: tuple[str, ...] = ()
    port: int = field(default_factory=process.free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/mcp"

    def start(self) -> Plain:
        self.proc = process.start(self.port, self.name, self.workdir / f"plain-{self.name}.log", *self.tls)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            process.kill(self.proc)


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Any]:
    """``plain("a")`` starts a plain server named a; all are killed afterwards."""
    started: list[Plain] = []

    def start(name: str, *tls: str) -> Plain:
        server = Plain(name, tmp_path, tls).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def write_pools(path: Path, pools: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"pools": pools}))
    return path


def start_with_pools(c: Cluster, path: Path, **settings: str) -> Proc:
    return c.start_reynolds(REYNOLDS_POOLS_FILE=str(path), **settings)


async def replicas(c: Cluster, pool: str) -> dict[str, dict[str, Any]]:
    """The pool's replicas as list_agents shows them, by URL."""
    async with c.client() as client:
        fleet = await call(client, "list_agents", {})
    views = next((p["replicas"] for p in fleet["pools"] if p["pool"] == pool), [])
    return {r["url"]: r for r in views}


def where_plan(count: int, pool: str | None = None, delay_s: float = 0.0) -> dict[str, Any]:
    subtasks = [{"id": f"w{i}", "tool": "where", "arguments": {"n": i, "delay_s": delay_s}} for i in range(count)]
    if pool:
        for s in subtasks:
            s["pool"] = pool
    return {"subtasks": subtasks}


def servers_of(task: dict[str, Any]) -> list[str]:
    assert task["state"] == "succeeded", task
    return [s["result"]["server"] for s in task["subtasks"]]


@pytest.mark.anyio
async def test_a_plain_server_with_two_urls_serves_every_subtask_on_both_for_many_probe_rounds(
    reynolds_cluster: Cluster, tmp_path: Path, plain: Any
) -> None:
    a, b = plain("a"), plain("b")
    pools = write_pools(tmp_path / "pools.yaml", [{"name": "plain", "urls": [a.url, b.url]}])
    start_with_pools(reynolds_cluster, pools)
    probe_s = float(reynolds_cluster.reynolds[0].env["REYNOLDS_PROBE_INTERVAL_S"])
    used: list[str] = []
    # rounds until 40 probe intervals have passed (GET /health probing marked such a server down after 2)
    started = time.monotonic()
    async with reynolds_cluster.client() as client:
        while time.monotonic() - started < 40 * probe_s:
            used += servers_of(await run_plan(client, where_plan(8)))
    assert set(used) == {"a", "b"}, used
    views = await replicas(reynolds_cluster, "plain")
    assert {u: (v["healthy"], v["circuit"]) for u, v in views.items()} == {
        a.url: (True, "closed"),
        b.url: (True, "closed"),
    }
    assert all(v["tools"] == ["grow", "picky", "shrink", "where"] for v in views.values()), views


@pytest.mark.anyio
async def test_a_killed_url_fails_over_opens_its_circuit_and_comes_back(
    reynolds_cluster: Cluster, tmp_path: Path, plain: Any
) -> None:
    a, b = plain("a"), plain("b")
    pools = write_pools(tmp_path / "pools.yaml", [{"name": "plain", "urls": [a.url, b.url], "max_concurrency": 4}])
    start_with_pools(reynolds_cluster, pools)
    async with reynolds_cluster.client() as client:
        submitted = await call(client, "orchestrate", {"plan": where_plan(16, delay_s=1.0), "wait": False})

        async def a_is_busy() -> bool:
            return (await replicas(reynolds_cluster, "plain"))[a.url]["inflight"] > 1

        await wait_until(a_is_busy, 20, "calls in flight on a")
        a.kill()
        task = await wait_task(client, submitted["task_id"], timeout_s=60)
        assert servers_of(task).count("b") >= 2  # what a was running finished on b
        assert any(s["attempts"] > 1 for s in task["subtasks"]), task

        async def a_is_shut_out() -> bool:
            view = (await replicas(reynolds_cluster, "plain"))[a.url]
            return not view["healthy"] and view["circuit"] != "closed"

        await wait_until(a_is_shut_out, 20, "a to be unhealthy with its circuit open")
        assert set(servers_of(await run_plan(client, where_plan(6)))) == {"b"}  # nothing tries a meanwhile

        a.start()
        seen: list[str] = []

        async def a_serves_again() -> bool:
            seen.extend(servers_of(await run_plan(client, where_plan(4))))
            return "a" in seen

        await wait_until(a_serves_again, 30, "a to take calls again", interval_s=0.2)
    view = (await replicas(reynolds_cluster, "plain"))[a.url]
    assert view["healthy"] and view["circuit"] == "closed", view


@pytest.mark.anyio
async def test_a_tool_added_at_run_time_is_routed_and_a_removed_one_refused(
    reynolds_cluster: Cluster, tmp_path: Path, plain: Any
) -> None:
    a = plain("a")
    start_with_pools(reynolds_cluster, write_pools(tmp_path / "pools.yaml", [{"name": "plain", "url": a.url}]))

    async def tools() -> list[str]:
        return (await replicas(reynolds_cluster, "plain"))[a.url]["tools"]

    async with reynolds_cluster.client() as client:
        await run_plan(client, {"subtasks": [{"id": "g", "tool": "grow", "arguments": {"tool": "fresh"}}]})

        async def learned() -> bool:
            return "fresh" in await tools()

        await wait_until(learned, 20, "the added tool to be listed")
        task = await run_plan(client, {"subtasks": [{"id": "f", "tool": "fresh", "arguments": {"text": "hi"}}]})
        assert subtask(task, "f")["result"] == {"result": "hi"}, task

        await run_plan(client, {"subtasks": [{"id": "s", "tool": "shrink", "arguments": {"tool": "fresh"}}]})

        async def forgotten() -> bool:
            return "fresh" not in await tools()

        await wait_until(forgotten, 20, "the removed tool to be dropped")
        with pytest.raises(errors.ReynoldsError, match="fresh"):
            await run_plan(client, {"subtasks": [{"id": "f", "tool": "fresh", "arguments": {"text": "hi"}}]})


@pytest.mark.anyio
async def test_sighup_reloads_the_pools_file_and_a_broken_file_keeps_the_pools_in_use(
    reynolds_cluster: Cluster, tmp_path: Path, plain: Any
) -> None:
    a, b = plain("a"), plain("b")
    pools = write_pools(tmp_path / "pools.yaml", [{"name": "alpha", "url": a.url}])
    reynolds = start_with_pools(reynolds_cluster, pools)
    assert set(await replicas(reynolds_cluster, "alpha")) == {a.url}

    def reload() -> None:
        assert reynolds.popen is not None
        reynolds.popen.send_signal(signal.SIGHUP)

    def urls_are(pool: str, urls: set[str]) -> Any:
        async def check() -> bool:
            views = await replicas(reynolds_cluster, pool)
            return set(views) == urls and all(v["healthy"] and v["tools"] for v in views.values())

        return check

    write_pools(pools, [{"name": "alpha", "urls": [a.url, b.url]}, {"name": "beta", "url": b.url}])
    reload()
    await wait_until(urls_are("alpha", {a.url, b.url}), 20, "alpha to gain b")
    await wait_until(urls_are("beta", {b.url}), 20, "beta to appear")
    async with reynolds_cluster.client() as client:
        assert set(servers_of(await run_plan(client, where_plan(3, pool="beta")))) == {"b"}

    pools.write_text("pools: [\n  - name: broken\n")
    reload()

    async def reported() -> bool:
        return "pools file not reloaded" in reynolds.log.read_text()

    await wait_until(reported, 20, "the broken file to be reported")
    assert set(await replicas(reynolds_cluster, "alpha")) == {a.url, b.url}
    assert set(await replicas(reynolds_cluster, "beta")) == {b.url}

    write_pools(pools, [{"name": "alpha", "url": b.url}])
    reload()
    await wait_until(urls_are("beta", set()), 20, "beta to be removed")
    await wait_until(urls_are("alpha", {b.url}), 20, "alpha to lose a")
    async with reynolds_cluster.client() as client:
        assert set(servers_of(await run_plan(client, where_plan(3)))) == {"b"}


@pytest.mark.anyio
async def test_a_servers_json_rpc_error_fails_its_subtask_and_spares_the_replica(
    reynolds_cluster: Cluster, tmp_path: Path, plain: Any
) -> None:
    a = plain("a")
    start_with_pools(reynolds_cluster, write_pools(tmp_path / "pools.yaml", [{"name": "plain", "url": a.url}]))
    plan = where_plan(4)
    plan["subtasks"].append({"id": "odd", "tool": "picky", "arguments": {"value": 3}})
    async with reynolds_cluster.client() as client:
        task = await run_plan(client, plan)
        odd = subtask(task, "odd")
        assert odd["state"] == "failed" and "-32602" in odd["error"] and "value must be even" in odd["error"], odd
        assert len(odd["error"]) < 3000  # the server's 100 kB message is cut
        assert all(subtask(task, f"w{i}")["state"] == "succeeded" for i in range(4)), task
        view = (await replicas(reynolds_cluster, "plain"))[a.url]
        assert view["healthy"] and view["circuit"] == "closed", view
        assert set(servers_of(await run_plan(client, where_plan(4)))) == {"a"}


@pytest.mark.anyio
async def test_a_servers_json_rpc_error_is_not_retried(reynolds_cluster: Cluster, tmp_path: Path, plain: Any) -> None:
    a = plain("a")
    start_with_pools(reynolds_cluster, write_pools(tmp_path / "pools.yaml", [{"name": "plain", "url": a.url}]))
    async with reynolds_cluster.client() as client:
        task = await run_plan(client, {"subtasks": [{"id": "odd", "tool": "picky", "arguments": {"value": 3}}]})
    assert subtask(task, "odd")["attempts"] == 1, task


@pytest.mark.anyio
async def test_https_pools_are_verified_and_a_private_ca_is_trusted_through_the_ca_setting(
    reynolds_cluster: Cluster, tmp_path: Path, plain: Any
) -> None:
    trusted_dir, stranger_dir = tmp_path / "trusted", tmp_path / "stranger"
    trusted_dir.mkdir()
    stranger_dir.mkdir()
    ca, cert, key = make_ca(trusted_dir)
    _, other_cert, other_key = make_ca(stranger_dir)  # signed by a CA Reynolds was not told about
    good = plain("good", "--cert", str(cert), "--key", str(key))
    bad = plain("bad", "--cert", str(other_cert), "--key", str(other_key))
    pools = write_pools(tmp_path / "pools.yaml", [{"name": "good", "url": good.url}, {"name": "bad", "url": bad.url}])
    reynolds = start_with_pools(reynolds_cluster, pools, REYNOLDS_CA_FILE=str(ca))
    async with reynolds_cluster.client() as client:
        assert set(servers_of(await run_plan(client, where_plan(3, pool="good")))) == {"good"}
    assert "TLS certificate not trusted" in reynolds.log.read_text()
    assert "REYNOLDS_CA_FILE" in reynolds.log.read_text()
    view = (await replicas(reynolds_cluster, "bad"))[bad.url]
    assert not view["healthy"] and view["tools"] == [], view
