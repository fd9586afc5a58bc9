"""OTLP export: `OTEL_EXPORTER_OTLP_ENDPOINT` in the environment makes an app's tracer provider
send its spans there (OTLP over HTTP, `/v1/traces`). A small HTTP listener stands in for the
collector and decodes what arrives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from servicekit.app import build_app
from servicekit.settings import KitSettings


class OtlpSettings(KitSettings):
    service_name: ClassVar[str] = "otlp-probe"  # its own provider: providers are per name


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_spans_go_to_the_otlp_endpoint_named_in_the_environment(
    collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    app = build_app(OtlpSettings(env="test"), title="t", with_database=False)
    provider = app.state.tracer_provider
    try:
        with provider.get_tracer("test").start_as_current_span("probe"):
            pass
        assert provider.force_flush(timeout_millis=10_000)
    finally:
        provider.shutdown()

    path, content_type, body = _Receiver.received[-1]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    export = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = export.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "otlp-probe"
    assert [s.name for scope in resource_spans.scope_spans for s in scope.spans] == ["probe"]
