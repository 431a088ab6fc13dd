"""The agent's call metrics: every tool's series exists at zero before its first call."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from agents.runtime.observe import AgentMetrics


def test_prime_exports_each_tools_series_at_zero() -> None:
    registry = CollectorRegistry()
    AgentMetrics(registry).prime(["lint_python", "scan_secrets"])
    count = registry.get_sample_value
    for tool in ("lint_python", "scan_secrets"):
        assert count("reynolds_agent_tool_duration_seconds_count", {"tool": tool}) == 0
        assert count("reynolds_agent_tool_duration_seconds_bucket", {"tool": tool, "le": "+Inf"}) == 0
        for outcome in ("ok", "error"):
            assert count("reynolds_agent_tool_calls_total", {"tool": tool, "outcome": outcome}) == 0
