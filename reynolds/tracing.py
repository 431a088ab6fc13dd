"""OpenTelemetry tracing, shared by Reynolds and the agents: the process's tracer provider and the W3C
``traceparent`` a task keeps so that spans made later, in any Reynolds process, join its trace.

Tracing is on only when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``, the exporter's own variables); otherwise no provider is installed and the
OpenTelemetry API's no-op tracer answers. The MCP SDK makes the protocol spans (a SERVER span per request,
a CLIENT span per call that puts ``traceparent`` in ``_meta``); Reynolds adds the ones of its own work
(submit, plan, workspace, store, queue, dispatch).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

TRACEPARENT = "traceparent"
MAX_TRACEPARENT_CHARS = 128  # version 00 is 55 characters; a later version may append fields, never this many
W3C = TraceContextTextMapPropagator()

tracer = trace.get_tracer("reynolds")  # a proxy: it uses whichever provider is installed, the no-op one until then
# the SDK's client spans of upkeep: every replica's health probe and heartbeat, every few seconds
UPKEEP_SPANS = frozenset({"MCP send ping", "MCP send server/discover", "MCP send tools/call heartbeat"})


class SkipUpkeep(Sampler):
    """Samples every trace but those upkeep starts, which would bury the tasks' traces. Under ``ParentBased``
    the server side of a dropped call is dropped too: its traceparent says "not sampled"."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if name in UPKEEP_SPANS:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "SkipUpkeep"


def endpoint_configured(env: Mapping[str, str] = os.environ) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


@contextlib.contextmanager
def traced(service: str, attributes: Mapping[str, str] | None = None) -> Iterator[None]:
    """Export this process's spans over OTLP/HTTP while the block runs, as ``service`` (``OTEL_SERVICE_NAME``
    wins), with ``attributes`` on its resource; a no-op without an endpoint. Spans still buffered are sent
    when the block ends. Either way, only W3C trace context is read from requests' ``_meta``: the API's
    default propagators also read baggage, which raises AttributeError on a non-string value and so failed
    the request of anyone who sent one (the SDK only catches ValueError and TypeError there)."""
    propagate.set_global_textmap(W3C)
    if not endpoint_configured():
        yield
        return
    # imported here: with tracing off the exporter is never loaded
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(SkipUpkeep())  # None: the SDK reads it
    provider = TracerProvider(resource=Resource.create({**(attributes or {}), "service.name": name}), sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Outside any trace for the block: a task started in it (a connection that outlives the call that
    opened it) makes spans of its own, not children of whatever span happened to be current."""
    token = otel_context.attach(Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store with what is handed to another process."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_of(traceparent: object) -> Context | None:
    """The context a stored or received ``traceparent`` names; None (the caller's own context) for anything
    that is not a valid one: it may come from outside, so a malformed value is ignored, never an error."""
    if not isinstance(traceparent, str) or len(traceparent) > MAX_TRACEPARENT_CHARS:
        return None
    context = W3C.extract({TRACEPARENT: traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None
