"""Monitoring configuration: Prometheus accepts it (promtool), the alert rules fire when they should
(promtool test rules), and the dashboard and alerts only use metrics that Reynolds and its agents export —
read from the real collectors, not from a list kept by hand."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agents.runtime.observe import AgentMetrics
from reynolds.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana/dashboards").glob("*.json"))
METRIC = re.compile(r"\breynolds_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def promtool() -> str:
    # `make setup` puts it next to the virtualenv's python (scripts/promtool.sh)
    path = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail("promtool not found: run `make setup` (scripts/promtool.sh)")
    return path


def exported_names() -> set[str]:
    """Every series name Reynolds and its agents can expose, from their collectors."""
    registry = CollectorRegistry()
    Metrics(registry)
    AgentMetrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            exprs.extend(t["expr"] for t in panel.get("targets", []))
    return exprs


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        [promtool(), "check", "config", str(MONITORING / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(MONITORING / "alerts.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_on_the_conditions_they_describe() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", str(MONITORING / "alerts.test.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = exported_names()
    assert {"reynolds_tasks_total", "reynolds_queue_depth", "reynolds_agent_tool_calls_total"} <= exported
    used = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    used |= {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert used, "no reynolds_* metric found in the dashboard or alerts"
    assert used - exported == set(), f"not exported by the code: {sorted(used - exported)}"


def test_fleet_gauges_are_never_summed_across_processes() -> None:
    """Fleet-level gauges come from the fleet leader, and during a handover from two processes: max, never sum."""
    fleet = "|".join(Metrics.FLEET)
    summed = re.compile(rf"\b(sum|avg)\b[^()]*(\([^()]*\))?\s*\((?:[^()]*\()?\s*({fleet})\b")
    exprs = dashboard_exprs() + [rule["expr"] for rule in alert_rules()]
    assert [e for e in exprs if summed.search(e)] == []
    assert all(name in " ".join(exprs) for name in Metrics.FLEET)


def test_dashboard_covers_what_operators_watch() -> None:
    used = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    for metric in (
        "reynolds_tasks_total",
        "reynolds_tasks_submitted_total",
        "reynolds_subtask_duration_seconds_bucket",
        "reynolds_queue_depth",
        "reynolds_queue_oldest_age_seconds",
        "reynolds_agents",
        "reynolds_circuit_state",
        "reynolds_retries_total",
        "reynolds_task_parallelism_bucket",
        "reynolds_agent_utilisation",
    ):
        assert metric in used, f"dashboard lacks {metric}"


def test_dashboard_is_consistent_with_its_provisioning() -> None:
    assert DASHBOARDS, "no dashboard JSON"
    datasource = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/reynolds.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in dashboard["panels"]:
            box = panel["gridPos"]
            assert 0 <= box["x"] and box["x"] + box["w"] <= 24, f"{panel['title']} overflows the grid"
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_prometheus_scrapes_reynolds_and_every_agent_pool_by_dns() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.orchestration.yaml").read_text())
    agent_services = {name for name in compose["services"] if name.endswith("-agent")}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in {"reynolds", *agent_services}:
        (sd,) = jobs[service]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["type"] == "A" and sd["port"] == 8080, service
    assert config["rule_files"] == ["alerts.yml"]


def test_required_alerts_exist() -> None:
    by_name = {rule["alert"]: rule for rule in alert_rules()}
    required = {"AgentPoolDown", "QueueBacklogGrowing", "CircuitOpen", "TaskFailureRatioHigh", "ReynoldsNotReady"}
    assert required | {"FleetLeaderMissing"} <= set(by_name)
    for rule in by_name.values():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_a_process_that_does_not_lead_exports_no_fleet_gauges() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.queue_depth.labels("code").set(4)
    metrics.agents.labels("code", "healthy").set(2)
    metrics.utilisation.labels("code").set(0.5)
    metrics.tasks_active.set(3)
    metrics.oldest_running_task.set(60)
    metrics.clear_fleet()
    samples = {s.name: s.value for family in registry.collect() for s in family.samples}
    unlabelled = ["reynolds_tasks_active", "reynolds_oldest_running_task_age_seconds"]  # cannot vanish: 0
    assert [name for name in samples if name in Metrics.FLEET] == unlabelled
    assert [samples[name] for name in unlabelled] == [0, 0]


def test_finished_task_counters_exist_from_the_start() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    assert registry.get_sample_value("reynolds_tasks_total", {"state": "succeeded"}) == 0
    assert registry.get_sample_value("reynolds_tasks_total", {"state": "failed"}) == 0
