"""Middleware that counts, times and remembers every tool call an agent serves."""

from __future__ import annotations

import time
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.runtime.memory import Memory
from agents.runtime.results import error_text, is_error

UNREMEMBERED_TOOLS = {"recall"}  # asking memory about itself would only add noise


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "reynolds_agent_tool_calls_total",
            "Tool calls served by this agent",
            ["tool", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "reynolds_agent_tool_duration_seconds",
            "Tool call duration on the agent",
            ["tool"],
            registry=registry,
        )
        self.inflight = Gauge("reynolds_agent_inflight_calls", "Tool calls running now", registry=registry)

    def prime(self, tools: list[str]) -> None:
        """Export every tool's series at zero from the start, so a replica's first call is an increase that
        ``rate()`` sees (a series that appears with its first observation shows no rate until a second)."""
        for tool in tools:
            self.duration.labels(tool)
            for outcome in ("ok", "error"):
                self.calls.labels(tool, outcome)


class CallObserver:
    def __init__(self, metrics: AgentMetrics, memory: Memory) -> None:
        self.metrics = metrics
        self.memory = memory
        self.inflight = 0

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        tool = str((ctx.params or {}).get("name", "?"))
        started = time.monotonic()
        self.inflight += 1
        self.metrics.inflight.inc()
        ok, message = False, "cancelled or crashed"
        try:
            result = await call_next(ctx)
            ok = not is_error(result)
            message = "" if ok else error_text(result)
            return result
        finally:
            elapsed = time.monotonic() - started
            self.inflight -= 1
            self.metrics.inflight.dec()
            self.metrics.calls.labels(tool, "ok" if ok else "error").inc()
            self.metrics.duration.labels(tool).observe(elapsed)
            if tool not in UNREMEMBERED_TOOLS:
                self.memory.record(tool, ok, elapsed, message)
