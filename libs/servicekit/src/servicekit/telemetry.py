"""OpenTelemetry: one tracer provider per service, W3C trace context over HTTP and AMQP.

Each service gets its own provider (its own `service.name` resource) instead of relying only on
the global one, so several services can run in one test process and still be told apart.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_providers: dict[str, TracerProvider] = {}
_extra_processors: list[SpanProcessor] = []


def add_span_processor(processor: SpanProcessor) -> None:
    """Attach a processor (e.g. an in-memory exporter in tests) to every provider, now and later."""
    _extra_processors.append(processor)
    for provider in _providers.values():
        provider.add_span_processor(processor)


def tracer_provider(service: str, otlp_endpoint: str | None = None) -> TracerProvider:
    provider = _providers.get(service)
    if provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        for processor in _extra_processors:
            provider.add_span_processor(processor)
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(
                BatchSpanProcessor(
                    OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
                )
            )
        _providers[service] = provider
    return provider


def set_process_provider(provider: TracerProvider) -> None:
    """In a real process (one service), make the service's provider the global one too."""
    trace.set_tracer_provider(provider)


def inject_headers(carrier: MutableMapping[str, Any] | None = None) -> dict[str, Any]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`)."""
    out: dict[str, Any] = dict(carrier or {})
    propagate.inject(out)
    return out


def extract_context(headers: Mapping[str, Any] | None) -> otel_context.Context:
    carrier = {k: str(v) for k, v in (headers or {}).items() if isinstance(v, str | bytes)}
    return propagate.extract(carrier)


def current_trace_id() -> str | None:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def instrument_fastapi(app: Any, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # One server span per request: the per-message send/receive spans cost more than they tell.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )


def instrument_httpx(client: Any, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
