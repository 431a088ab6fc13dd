"""Tracing is off without an OTLP endpoint (the API's no-op tracer, nothing installed), a traceparent is only
ever read when it is a valid one, nothing but W3C trace context is read from requests, and upkeep starts no
traces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from reynolds import tracing


@pytest.fixture(autouse=True)
def _propagator() -> Iterator[None]:
    """``traced`` sets the process's propagator; each test gets the one it found back."""
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),  # compose passes an empty default
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_on_only_with_an_endpoint(env: dict[str, str], on: bool) -> None:
    assert tracing.endpoint_configured(env) is on


def test_off_installs_nothing_and_spans_cost_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    before = trace.get_tracer_provider()
    with tracing.traced("reynolds"), tracing.tracer.start_as_current_span("submit") as span:
        assert not span.is_recording()
        assert tracing.current_traceparent() is None  # so a task stores no traceparent
    assert trace.get_tracer_provider() is before
    assert type(before).__name__ == "ProxyTracerProvider"  # the API's default: no SDK provider installed


def test_only_w3c_trace_context_is_read_from_requests() -> None:
    with pytest.raises(AttributeError):  # the API's default baggage propagator, on a non-string value
        W3CBaggagePropagator().extract({"baggage": 1})
    with tracing.traced("reynolds"):
        assert propagate.get_global_textmap() is tracing.W3C
        for meta in ({"baggage": 1}, {"baggage": [1]}, {"tracestate": "x" * 100_000}):
            assert not trace.get_current_span(propagate.extract(meta)).get_span_context().is_valid


def test_a_traceparent_round_trips() -> None:
    context = tracing.context_of(VALID)
    assert context is not None
    with trace.use_span(trace.get_current_span(context)):
        assert tracing.current_traceparent() == VALID


def test_the_current_span_is_what_is_stored() -> None:
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    with trace.use_span(span):
        assert tracing.current_traceparent() == f"00-{0xABC:032x}-{0xDEF:016x}-01"


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "garbage",
        12345,
        ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
        {"traceparent": VALID},
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-4bf92f3577b34da6a3ce929d0e0e4736-{'0' * 16}-01",  # all-zero span id
        VALID.replace("00-", "ff-", 1),  # forbidden version
        VALID.upper(),
        VALID[:-1],
        VALID + "\n" + VALID,
        VALID + "-" + "x" * 10_000,  # a future version may add fields, never this much
    ],
)
def test_a_malformed_traceparent_is_ignored(bad: Any) -> None:
    assert tracing.context_of(bad) is None


@pytest.mark.parametrize(
    ("name", "decision"),
    [
        ("MCP send server/discover", Decision.DROP),  # a health probe (2026-07-28)
        ("MCP send ping", Decision.DROP),  # a health probe (2025-11-25)
        ("MCP send tools/call heartbeat", Decision.DROP),
        ("tools/call orchestrate", Decision.RECORD_AND_SAMPLE),
        ("submit", Decision.RECORD_AND_SAMPLE),
        ("MCP send tools/call register_agent", Decision.RECORD_AND_SAMPLE),
    ],
)
def test_upkeep_starts_no_trace(name: str, decision: Decision) -> None:
    assert ParentBased(tracing.SkipUpkeep()).should_sample(None, 1, name).decision == decision
