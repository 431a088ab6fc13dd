"""Every Grafana panel query (monitoring/grafana/dashboards/*.json) and every alert rule (monitoring/alerts.yml)
run against the live Prometheus after a workload: each must return data, or be listed in EXPECTED_EMPTY with
the reason. Runs after the other e2e tests (tests/e2e/conftest.py orders it last) and makes a small workload
of its own first, because the down/up test restarts every exporter and labelled counters only exist once
something has happened.

Queries are evaluated as a dashboard showing the last WINDOW with "All" pools would: a range query over that
window, Grafana's variables substituted (VARIABLES). An alert's comparisons are made ``bool`` so its series
come back whether or not it fires: an empty answer then means a metric or label is missing, not that all is
well."""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from reynolds.client import call, connect
from tests.e2e.conftest import System, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
WINDOW_S = 30 * 60
STEP_S = 15
SCRAPES_WITHIN_S = 90  # scrape interval 10 s; a rate needs two samples after the workload
VARIABLES = {"$__rate_interval": "1m", "$__interval": f"{STEP_S}s", "$__range": f"{WINDOW_S // 60}m", "$pool": ".*"}

# Queries that are right to return nothing after the e2e workload, keyed by the query as written (whitespace
# collapsed), with the reason. A listed query that does return data fails the test: the table stays true.
NO_LOOP = "the e2e workload hands nothing off in a loop, and the counter has no series until a refusal"
EXPECTED_EMPTY: dict[str, str] = {
    "sum by (reason) (increase(reynolds_loop_refusals_total[$__range]))": NO_LOOP,
    "sum(increase(reynolds_loop_refusals_total[10m])) > 10": NO_LOOP,
}


@dataclass(frozen=True)
class Query:
    where: str
    expr: str  # as written in the file, whitespace collapsed
    alert: bool

    def promql(self) -> str:
        expr = self.expr
        for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):  # $__range before $__r...
            expr = expr.replace(name, value)
        return without_filtering(expr) if self.alert else expr


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for panel in panels for p in [panel, *_panels(panel.get("panels", []))]]  # rows nest panels


def queries() -> list[Query]:
    found = []
    for path in sorted((MONITORING / "grafana" / "dashboards").glob("*.json")):
        for panel in _panels(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    where = f"{path.name}: {panel['title']} [{target.get('refId', '?')}]"
                    found.append(Query(where, " ".join(target["expr"].split()), alert=False))
    for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found.append(Query(f"alerts.yml: {rule['alert']}", " ".join(rule["expr"].split()), alert=True))
    return found


COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)")
KEPT = re.compile(r'(\{[^}]*\}|"[^"]*")')  # label matchers and strings: their = and != are not comparisons


def without_filtering(expr: str) -> str:
    """``a > 20 and b == 0`` -> ``a > bool 20 and b == bool 0``: every series, 1 where the alert would fire."""
    return "".join(part if KEPT.fullmatch(part) else COMPARISON.sub(r"\1 bool", part) for part in KEPT.split(expr))


def evaluate(system: System, promql: str) -> list[dict[str, Any]]:
    end = time.time()
    params = urllib.parse.urlencode({"query": promql, "start": end - WINDOW_S, "end": end, "step": STEP_S})
    try:
        answer = system.prometheus_get(f"/api/v1/query_range?{params}")
    except urllib.error.HTTPError as err:
        raise AssertionError(f"Prometheus refused {promql!r}: {err.read().decode(errors='replace')}") from None
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def shows_data(series: list[dict[str, Any]]) -> bool:
    """What a panel would draw: at least one finite sample (a rate of nothing is NaN, drawn as a gap)."""
    return any(math.isfinite(float(value)) for s in series for _, value in s["values"])


@pytest.fixture(scope="module")
def workload(system: System) -> None:
    """A call on every pool, a parallel fan-out and a task that fails after a retry — twice, with a scrape in
    between: a labelled series is born with its first observations, which rate() cannot see, so the second
    round is what the rate panels show."""

    async def scraped(metric: str, pools: set[str]) -> bool:
        return pools <= {s["metric"].get("pool") for s in evaluate(system, f"sum by (pool) ({metric})")}

    async def run() -> None:
        async with connect(system.url, system.token) as client:
            pools = {p["pool"] for p in (await call(client, "list_agents", {}))["pools"] if p["replicas"]}
            scraped_agents = {s["metric"].get("pool") for s in evaluate(system, 'up{job=~".+-agent"}')} - {None}
            spread = [
                {"id": f"recall-{pool}", "tool": "recall", "pool": pool, "arguments": {"tool": "echo"}}
                for pool in sorted(pools)
            ]
            fan = [{"id": f"nap-{i}", "tool": "sleep", "arguments": {"seconds": 1}} for i in range(4)]
            failing = [{"id": "fails", "tool": "fail", "retryable": True, "max_attempts": 2}]
            for round_ in range(2):
                done = await call(client, "orchestrate", {"plan": {"subtasks": spread + fan}, "timeout_s": 120})
                assert done["state"] == "succeeded", done
                failed = await call(client, "orchestrate", {"plan": {"subtasks": failing}, "timeout_s": 120})
                assert failed["state"] == "failed", failed
                if round_ == 0:
                    await eventually(
                        lambda: scraped("reynolds_subtask_duration_seconds_count", pools), SCRAPES_WITHIN_S, "a scrape"
                    )
                    await eventually(
                        lambda: scraped("reynolds_agent_tool_duration_seconds_count", scraped_agents),
                        SCRAPES_WITHIN_S,
                        "a scrape of the agents",
                    )

    anyio.run(run)


@pytest.mark.parametrize("query", queries(), ids=lambda q: q.where)
async def test_query_returns_data(system: System, workload: None, query: Query) -> None:
    promql = query.promql()
    reason = EXPECTED_EMPTY.get(query.expr)
    if reason is not None:
        assert not shows_data(evaluate(system, promql)), f"{query.where} now returns data: drop it from EXPECTED_EMPTY"
        return

    async def has_data() -> bool:
        return shows_data(evaluate(system, promql))

    await eventually(has_data, SCRAPES_WITHIN_S, f"{query.where} to return data ({promql})", every=5.0)


def test_expected_empty_names_only_real_queries() -> None:
    assert set(EXPECTED_EMPTY) <= {q.expr for q in queries()}, "an EXPECTED_EMPTY key matches no query"


def test_without_filtering_keeps_label_matchers() -> None:
    expr = 'up{job!="x", a=~"b"} == 0 or sum(x) >= 2 and y > bool 1'
    assert without_filtering(expr) == 'up{job!="x", a=~"b"} == bool 0 or sum(x) >= bool 2 and y > bool 1'
