"""Traces of a real cluster, exported by the real OTLP/HTTP exporter to a receiver on loopback: one task's
spans form one trace from the client's orchestrate call to the agent's tool, in both protocol eras, and a
malformed traceparent a client sends is ignored."""

from __future__ import annotations

import gzip
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from reynolds import tracing
from tests.integration.cluster import Cluster, cluster
from tests.integration.conftest import start_workbench
from tests.integration.test_client_log import client

pytestmark = pytest.mark.anyio
ERAS = ["legacy", "auto"]  # the SDK client's legacy mode speaks 2025-11-25; auto gets 2026-07-28
PLAN = {
    "subtasks": [
        {"id": "first", "tool": "echo", "arguments": {"value": 1}},
        {"id": "second", "tool": "echo", "arguments": {"value": 2}, "depends_on": ["first"]},
    ]
}


@dataclass(frozen=True)
class Span:
    service: str
    instance: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Receiver:
    """An OTLP/HTTP trace receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def keep(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.spans.extend(
                        Span(
                            resource["service.name"],
                            resource["service.instance.id"],
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in s.attributes},
                        )
                        for s in scope_spans.spans
                    )

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def named(self, name: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.name == name]


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def traced_cluster(tmp_path: Path, receiver: Receiver) -> Iterator[Cluster]:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}  # 50 ms, not 5 s
    with cluster(tmp_path / "cluster", **otel) as c:
        yield c


async def wait_spans(receiver: Receiver, check: Any, what: str, timeout_s: float = 20.0) -> list[Span]:
    """The spans ``check`` picks once it picks some; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            names = sorted({(s.service, s.name) for s in receiver.spans})
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; span names seen: {names}")
        await anyio.sleep(0.05)
    return found


def one(spans: list[Span], name: str) -> Span:
    matches = [s for s in spans if s.name == name]
    assert len(matches) == 1, (name, spans)
    return matches[0]


async def orchestrate(session: Client, plan: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool("orchestrate", {"plan": plan}, meta=meta)
    assert not result.is_error, result
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.parametrize("mode", ERAS)
async def test_a_task_is_one_trace_from_orchestrate_to_the_agents_tool(
    traced_cluster: Cluster, receiver: Receiver, mode: str
) -> None:
    start_workbench(traced_cluster)
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    async with client(traced_cluster, [], mode=mode) as session:
        task = await orchestrate(session, PLAN, {"traceparent": f"00-{trace_id}-{caller}-01"})
    assert task["state"] == "succeeded", task

    def complete() -> list[Span]:
        # Reynolds exports its spans in the order they end, and orchestrate's ends last
        spans = receiver.trace(trace_id)
        names = [s.name for s in spans]
        return spans if names.count("tools/call echo") == 2 and "tools/call orchestrate" in names else []

    spans = await wait_spans(receiver, complete, "the agents' and Reynolds' spans in the client's trace")
    by_id = {s.span_id: s for s in spans}
    orchestrate_span = one(spans, "tools/call orchestrate")
    submit = one(spans, "submit")
    assert (orchestrate_span.service, orchestrate_span.parent_id) == ("reynolds", caller)
    assert submit.parent_id == orchestrate_span.span_id
    assert submit.attributes["reynolds.task_id"] == task["task_id"]
    for step in ("plan", "workspace", "store", "queue"):
        assert one(spans, step).parent_id == submit.span_id, step
    tools = [s for s in spans if s.name == "tools/call echo"]
    assert {s.service for s in tools} == {"agent-workbench"}
    dispatched = set()
    for tool in tools:
        send = by_id[tool.parent_id]  # the SDK's client span, whose traceparent went in _meta
        dispatch = by_id[send.parent_id]
        assert (send.name, send.service) == ("MCP send tools/call echo", "reynolds")
        assert (dispatch.name, dispatch.parent_id) == ("dispatch echo", submit.span_id)
        dispatched.add(dispatch.attributes["reynolds.subtask_id"])
    assert dispatched == {"first", "second"}
    upkeep = {*tracing.UPKEEP_SPANS, "tools/call heartbeat"}  # the agent's side of a heartbeat is dropped too
    assert [s for s in receiver.spans if s.name in upkeep] == []  # probes and heartbeats (every 0.5 s, 1 s) start none


async def test_spans_of_a_task_dispatched_by_several_processes_join_its_trace(
    traced_cluster: Cluster, receiver: Receiver
) -> None:
    # two processes on one queue, prefetch 1 so neither takes every message (as in test_multi_reynolds)
    fleet = [traced_cluster.start_reynolds(REYNOLDS_PREFETCH="1") for _ in range(2)]
    agents = [traced_cluster.start_agent("workbench", reynolds=r, AGENT_MAX_CONCURRENCY="4") for r in fleet]
    traced_cluster.wait_registered([a.name for a in agents])
    plan = {
        "subtasks": [
            {"id": f"r{i}", "tool": "record", "arguments": {"key": f"r{i}", "seconds": 0.2}} for i in range(20)
        ]
    }
    async with traced_cluster.client(fleet[0]) as session:
        task = await orchestrate(session, plan, {})
    assert task["state"] == "succeeded", task

    def dispatched() -> list[Span]:
        spans = [s for s in receiver.named("dispatch record") if s.attributes["reynolds.task_id"] == task["task_id"]]
        return spans if len(spans) == 20 else []

    spans = await wait_spans(receiver, dispatched, "a dispatch span for every subtask")
    trace_id = spans[0].trace_id
    submits = await wait_spans(receiver, lambda: [s for s in receiver.trace(trace_id) if s.name == "submit"], "submit")
    submit_span = one(submits, "submit")
    assert {(s.trace_id, s.parent_id) for s in spans} == {(submit_span.trace_id, submit_span.span_id)}
    dispatchers = {s.instance for s in spans}
    assert len(dispatchers) == 2, f"both processes should have dispatched some calls: {dispatchers}"
    assert submit_span.instance in dispatchers


MALFORMED: list[dict[str, Any]] = [
    *(
        {"traceparent": bad}
        for bad in (
            "garbage",
            12345,
            {"trace": "id"},
            [1, 2],
            "",
            f"00-{'0' * 32}-{'1' * 16}-01",  # the all-zero trace id is invalid
            f"00-{'a' * 32}-{'0' * 16}-01",  # so is the all-zero span id
            f"ff-{'a' * 32}-{'b' * 16}-01",  # version ff is forbidden
            f"00-{'A' * 32}-{'B' * 16}-01",  # upper-case hex is not the format
            f"00-{'c' * 32}-{'d' * 16}-01-" + "x" * 100_000,
        )
    ),
    {"tracestate": 1},
    {"baggage": 1},  # the API's baggage propagator raises AttributeError on these
    {"baggage": [1]},
]


@pytest.mark.parametrize("mode", ERAS)
async def test_malformed_trace_context_is_ignored(traced_cluster: Cluster, receiver: Receiver, mode: str) -> None:
    start_workbench(traced_cluster)
    async with client(traced_cluster, [], mode=mode) as session:
        for bad in MALFORMED:
            task = await orchestrate(session, {"subtasks": [PLAN["subtasks"][0]]}, bad)
            assert task["state"] == "succeeded", (bad, task)

    def all_calls() -> list[Span]:
        spans = receiver.named("tools/call orchestrate")
        return spans if len(spans) == len(MALFORMED) else []

    calls = await wait_spans(receiver, all_calls, "a span for every orchestrate call")
    assert all(s.parent_id == "" for s in calls)  # each a new trace of Reynolds' own, none the client named
    assert len({s.trace_id for s in calls}) == len(MALFORMED)
    assert not {s.trace_id for s in calls} & {"a" * 32, "c" * 32, "0" * 32}
    for call in calls:  # and the task still traced end to end under it
        await wait_spans(
            receiver, lambda t=call.trace_id: [s for s in receiver.trace(t) if s.name == "tools/call echo"], "tool"
        )
