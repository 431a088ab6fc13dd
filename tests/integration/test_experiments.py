"""What-if experiments on a real cluster: Reynolds and workbench agents as processes, Postgres and Redis real.
Every run is an ordinary task; the measures and statistics are checked against what Postgres recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy import stats as sp

from reynolds.client import call
from reynolds.errors import ReynoldsError
from reynolds.experiments.scenario import Generated
from tests.integration.cluster import REPO, Cluster, Proc
from tests.integration.conftest import inflight_is, respawn, sql, start_workbench, wait_task, wait_until


def sleeps(seconds: float, n: int = 3) -> dict[str, Any]:
    return {"subtasks": [{"id": f"s{i}", "tool": "sleep", "arguments": {"seconds": seconds}} for i in range(n)]}


def scenario(plan: dict[str, Any], strategies: list[str], repetitions: int, **extra: Any) -> str:
    return yaml.safe_dump(
        {"name": "it", "workload": {"plan": plan}, "strategies": strategies, "repetitions": repetitions, **extra}
    )


def cli(c: Cluster, proc: Proc, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**proc.env, "REYNOLDS_URL": f"{proc.base_url}/mcp", "REYNOLDS_TOKEN": c.client_token}
    return subprocess.run(
        [sys.executable, "-m", "reynolds", "experiment", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def experiment_state(c: Cluster, experiment_id: str) -> str:
    return (await sql(c, "SELECT state FROM experiments WHERE id = $1::uuid", experiment_id))[0]["state"]


def max_overlap(rows: list[Any]) -> int:
    """Most subtasks running at one instant, from their recorded start and finish times."""
    edges = sorted([(r["started_at"], 1) for r in rows] + [(r["finished_at"], -1) for r in rows])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.anyio
async def test_experiment_compares_strategies_on_real_tasks(reynolds_cluster: Cluster, tmp_path: Path) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    text = scenario(
        sleeps(0.3, 4),
        ["sequential", "parallel", "hybrid:2"],
        2,
        hypothesis={
            "statement": "parallel beats sequential",
            "claims": [{"metric": "makespan_s", "strategy": "parallel", "direction": "lower", "than": "sequential"}],
        },
    )
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async with reynolds_cluster.client() as c:
        found = await call(c, "run_experiment", {"scenario": text}, on_progress)
        listed = await call(c, "list_experiments", {})
    assert found["state"] == "succeeded", found
    assert [e["experiment_id"] for e in listed["experiments"]] == [found["experiment_id"]]
    assert progress[-1] == (6, 6) and len(progress) >= 2, progress
    runs = found["runs"]
    # interleaved, rotated: every repetition runs each strategy once
    assert [r["strategy"] for r in runs] == ["sequential", "parallel", "hybrid:2", "parallel", "hybrid:2", "sequential"]
    for run in runs:
        (task,) = await sql(
            reynolds_cluster,
            "SELECT goal, state, created_at, finished_at FROM tasks WHERE id = $1::uuid",
            run["task_id"],
        )
        assert task["state"] == "succeeded" and f"run {run['seq']} ({run['strategy']})" in task["goal"]
        subtasks = await sql(
            reynolds_cluster, "SELECT started_at, finished_at FROM subtasks WHERE task_id = $1::uuid", run["task_id"]
        )
        cap = {"sequential": 1, "hybrid:2": 2, "parallel": 4}[run["strategy"]]
        assert max_overlap(subtasks) <= cap, run
        if run["strategy"] == "parallel":
            assert max_overlap(subtasks) > 1  # one replica runs the four sleeps at once
        # the makespan is Reynolds' own record, not a clock in this test
        assert run["measures"]["makespan_s"] == (task["finished_at"] - task["created_at"]).total_seconds()
    report = found["report"]
    seq = [r["measures"]["makespan_s"] for r in runs if r["strategy"] == "sequential"]
    par = [r["measures"]["makespan_s"] for r in runs if r["strategy"] == "parallel"]
    assert report["metrics"]["makespan_s"]["sequential"]["mean"] == pytest.approx(sum(seq) / 2)
    (pair,) = [p for p in report["pairs"]["makespan_s"] if {p["a"], p["b"]} == {"sequential", "parallel"}]
    expected_p = sp.ttest_ind(seq, par, equal_var=False).pvalue
    assert pair["welch_p"] == pytest.approx(expected_p), (seq, par)
    assert report["warnings"], "two repetitions must warn"
    assert "## Hypothesis" in found["markdown"]
    remembered = await sql(reynolds_cluster, "SELECT strategy FROM strategy_memory")
    assert [r["strategy"] for r in remembered] == (
        [report["winner"]["strategy"]] if report["winner"]["remembered"] else []
    )

    shown = cli(reynolds_cluster, reynolds, "show", found["experiment_id"], "--report", str(tmp_path / "report"))
    assert shown.returncode == 0, shown.stderr
    assert (tmp_path / "report" / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == report
    assert "# Experiment: it" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.anyio
async def test_strategy_auto_uses_the_remembered_winner(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    from reynolds.experiments.strategies import plan_shape
    from reynolds.models import Plan

    wide = sleeps(0, 4)
    async with reynolds_cluster.client() as c:
        before = await call(c, "plan_task", {"plan": wide, "strategy": "auto"})
        assert before["strategy"] == "parallel"  # a wide plan: auto's own rule
        await sql(
            reynolds_cluster,
            "INSERT INTO strategy_memory (shape, strategy) VALUES ($1, 'hybrid:2')",
            plan_shape(Plan.model_validate(wide)),
        )
        task = await call(c, "orchestrate", {"plan": wide, "strategy": "auto"})
        other = await call(c, "plan_task", {"plan": sleeps(0, 5), "strategy": "auto"})  # another shape
    assert task["state"] == "succeeded"
    rows = await sql(
        reynolds_cluster, "SELECT id, after_ids FROM subtasks WHERE task_id = $1::uuid ORDER BY seq", task["task_id"]
    )
    assert [list(r["after_ids"]) for r in rows] == [[], [], ["s0"], ["s1"]]
    assert all(not s["after"] for s in other["subtasks"])


@pytest.mark.anyio
async def test_cancelling_an_experiment_cancels_its_tasks(reynolds_cluster: Cluster, tmp_path: Path) -> None:
    reynolds, (agent,) = start_workbench(reynolds_cluster)
    path = tmp_path / "long.yaml"
    path.write_text(scenario(sleeps(30, 2), ["sequential", "parallel"], 3))
    started = cli(reynolds_cluster, reynolds, "run", str(path), "--no-wait")
    assert started.returncode == 0, started.stderr
    experiment_id = started.stdout.strip()
    await wait_until(inflight_is(agent, 1), 20, "the first run's sleep to be running on the agent")
    async with reynolds_cluster.client() as c:
        cancelled = await call(c, "cancel_experiment", {"experiment_id": experiment_id})
        assert cancelled["state"] == "cancelled"
        (first, *rest) = cancelled["runs"]
        task = await wait_task(c, first["task_id"], timeout_s=10)
        await wait_until(inflight_is(agent, 0), 10, "the agent's sleep to be cancelled")
        again = await call(c, "get_experiment", {"experiment_id": experiment_id})
    assert task["state"] == "cancelled"
    assert all(r["task_id"] is None for r in rest) and all(r["task_id"] is None for r in again["runs"][1:])
    assert again["state"] == "cancelled" and again["report"] is None
    assert (await sql(reynolds_cluster, "SELECT count(*) AS n FROM tasks"))[0]["n"] == 1


GOOD_HEAD = "name: x\nworkload: {generate: {component_count: 2}}\nstrategies: [parallel, sequential]\n"
UNKNOWN_TOOL = (
    "name: x\nworkload: {plan: {subtasks: [{id: a, tool: no_such_tool}]}}\nstrategies: [parallel, sequential]\n"
)
BAD = [
    ({"scenario": GOOD_HEAD + "repetitions: lots\n"}, "repetitions"),
    ({"scenario": GOOD_HEAD.replace("sequential", "teleport")}, "strategies.1"),
    ({"scenario": GOOD_HEAD + "repetitions: 100000\n"}, "repetitions"),
    ({"scenario": "a: &a [1, 2]\nb: [*a, *a]\n"}, "aliases are not allowed"),
    ({"scenario": UNKNOWN_TOOL}, "no_such_tool"),
    ({"file": "../pyproject.toml"}, "bare .yaml"),
    ({"file": "missing.yaml"}, "no scenario file"),
    ({}, "exactly one of scenario"),
]


@pytest.mark.anyio
async def test_bad_scenarios_get_precise_errors_and_store_nothing(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    async with reynolds_cluster.client() as c:
        for arguments, message in BAD:
            with pytest.raises(ReynoldsError) as caught:
                await call(c, "run_experiment", arguments)
            assert message in str(caught.value), (arguments, str(caught.value))
        with pytest.raises(ReynoldsError, match="not an experiment id"):
            await call(c, "get_experiment", {"experiment_id": "'; DROP TABLE experiments; --"})
    for table in ("experiments", "experiment_runs", "tasks"):
        assert (await sql(reynolds_cluster, f"SELECT count(*) AS n FROM {table}"))[0]["n"] == 0, table


@pytest.mark.anyio
async def test_experiment_resumes_after_reynolds_is_killed(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster, REYNOLDS_EXPERIMENT_LEASE_S="2")
    async with reynolds_cluster.client() as c:
        found = await call(
            c, "run_experiment", {"scenario": scenario(sleeps(0.5, 2), ["sequential", "parallel"], 2), "wait": False}
        )
    experiment_id = found["experiment_id"]

    async def a_run_in_flight_after_one_measured() -> Any:
        rows = await sql(
            reynolds_cluster,
            "SELECT seq, task_id::text AS task_id, measures IS NOT NULL AS measured FROM experiment_runs ORDER BY seq",
        )
        in_flight = [r for r in rows if r["task_id"] and not r["measured"]]
        return in_flight[0] if in_flight and any(r["measured"] for r in rows) else None

    caught = await wait_until(a_run_in_flight_after_one_measured, 30, "a run in flight after the first was measured")
    reynolds.kill()
    survivor = respawn(reynolds_cluster, reynolds)

    async def finished() -> bool:
        return await experiment_state(reynolds_cluster, experiment_id) != "running"

    await wait_until(finished, 60, "the experiment to finish after the restart", 0.2)
    async with reynolds_cluster.client(survivor) as c:
        done = await call(c, "get_experiment", {"experiment_id": experiment_id})
    assert done["state"] == "succeeded", done
    assert done["runs_done"] == 4 and all(r["measures"] for r in done["runs"])
    assert done["runs"][caught["seq"]]["task_id"] == caught["task_id"]  # the run in flight kept its task
    # every run has exactly one task: the one in flight at the crash was adopted, not submitted again
    tasks = await sql(
        reynolds_cluster, "SELECT goal FROM tasks WHERE goal LIKE $1", f"experiment {experiment_id} run %"
    )
    assert sorted(t["goal"] for t in tasks) == sorted(
        f"experiment {experiment_id} run {r['seq']} ({r['strategy']})" for r in done["runs"]
    )


@pytest.mark.anyio
async def test_pool_routing_compares_specialised_pools_with_one_generalist_pool(reynolds_cluster: Cluster) -> None:
    c = reynolds_cluster
    c.start_reynolds()
    fleet = {"alpha": 1, "beta": 1, "general": 2}  # one call at a time per replica: the pools' sizes matter
    agents = [
        c.start_agent("workbench", AGENT_POOL=pool, AGENT_MAX_CONCURRENCY="1")
        for pool, n in fleet.items()
        for _ in range(n)
    ]
    c.wait_registered([a.name for a in agents])
    generate = {"component_count": 6, "interdependency_ratio": 0, "duration": {"seconds": 0.1}, "seed": 1}
    generate["pools"] = {"alpha": 3, "beta": 1}  # the demand mix over the specialised pools
    text = yaml.safe_dump(
        {"name": "routing", "workload": {"generate": generate}, "strategies": ["parallel", "pool:general"]}
        | {"repetitions": 1}
    )
    async with c.client() as client:
        found = await call(client, "run_experiment", {"scenario": text})
    assert found["state"] == "succeeded", found
    drawn = {s.id: s.pool for s in Generated.model_validate(generate).plan().subtasks}
    assert set(drawn.values()) == {"alpha", "beta"}
    home = {a.name: a.env["AGENT_POOL"] for a in agents}
    for run in found["runs"]:
        rows = await sql(c, "SELECT id, pool, agent_id FROM subtasks WHERE task_id = $1::uuid", run["task_id"])
        expected = {r["id"]: "general" for r in rows} if run["strategy"] == "pool:general" else drawn
        assert {r["id"]: r["pool"] for r in rows} == expected, run["strategy"]
        assert all(home[r["agent_id"]] == r["pool"] for r in rows)  # each ran on a replica of its pool
    assert found["report"]["winner"]["remembered"] is False  # routing is the deployment's choice, not auto's


@pytest.mark.anyio
async def test_routing_to_a_pool_that_lacks_a_tool_or_scaling_without_docker_stores_nothing(
    reynolds_cluster: Cluster,
) -> None:
    admin = uuid.uuid4().hex
    with (reynolds_cluster.workdir / "client_token").open("a") as tokens:
        tokens.write(f"\n{admin} ops read,submit,admin\n")
    start_workbench(reynolds_cluster)

    def text(strategy: str) -> str:
        return scenario(sleeps(0.1, 1), ["parallel", strategy], 1)

    async with reynolds_cluster.client() as client:  # read and submit: no pool resizing
        with pytest.raises(ReynoldsError, match="pool 'nowhere' has no tool 'sleep'"):
            await call(client, "run_experiment", {"scenario": text("pool:nowhere")})
        with pytest.raises(ReynoldsError, match="lacks the 'admin' scope"):
            await call(client, "run_experiment", {"scenario": text("replicas:workbench=2")})
    async with reynolds_cluster.client(token=admin) as client:
        for strategy, message in [
            ("replicas:workbench=2", "strategy 'replicas:workbench=2' scales pool 'workbench'"),
            ("replicas:search=2", "unknown pool 'search'"),
        ]:
            with pytest.raises(ReynoldsError, match=message):
                await call(client, "run_experiment", {"scenario": text(strategy)})
    assert await sql(reynolds_cluster, "SELECT id FROM experiments") == []


@pytest.mark.anyio
async def test_a_scenario_given_as_json_text_runs(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    text = json.dumps({"name": "json", "workload": {"plan": sleeps(0.05, 2)}, "strategies": ["sequential", "parallel"]})
    async with reynolds_cluster.client() as client:
        found = await call(client, "run_experiment", {"scenario": text})
        again = await call(client, "run_experiment", {"scenario": json.loads(text) | {"repetitions": 1}})
    assert found["state"] == "succeeded" and again["state"] == "succeeded", (found, again)
