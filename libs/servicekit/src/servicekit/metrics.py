"""Prometheus metrics: each process exposes its own (default) registry at `/metrics`.

An API serves it on its own port: `build_app` adds the route and `HttpMetrics`, and an app may
add figures it computes at each scrape (`ScrapeFigures`: ops' health, read from its database).
A worker has no HTTP server, so `WorkerRuntime` starts `serve_metrics` when `METRICS_PORT` is
set; the default 0 starts none, because several workers on one machine would collide on any
fixed port.

Label values are bounded: route templates (never raw paths), status classes, queue names, job
kinds, loop names and operation names chosen in code. Never ids, addresses, or anything a
client can choose: every distinct value is a time series kept forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from fastapi import Request, Response
from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Seconds: fast SQL-only endpoints up to slow external calls with retries.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds: how old an event is when handled (retries wait up to minutes).
AGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
RETRY_AFTER_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)

HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests answered", ["method", "route", "status_class"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route", "status_class"],
    buckets=LATENCY_BUCKETS,
)

CONSUMED = Counter(
    "consumer_messages",
    "Deliveries settled by a consumer; outcome: ok, duplicate, skipped, retried, "
    "dead_lettered, requeued (could not be handed on, put back)",
    ["queue", "outcome"],
)
HANDLER_DURATION = Histogram(
    "consumer_handler_duration_seconds",
    "One handler transaction (inbox claim + effects + commit; a batch counts once)",
    ["queue"],
    buckets=LATENCY_BUCKETS,
)
EVENT_AGE = Histogram(
    "consumer_event_age_seconds",
    "How old an event is (since its envelope's time) when a consumer takes it up",
    ["queue"],
    buckets=AGE_BUCKETS,
)

OUTBOX_UNPUBLISHED = Gauge(
    "outbox_unpublished_rows", "Outbox rows not yet published (refreshed by the relay)"
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox row (0 when there is none)",
)
OUTBOX_PUBLISHED = Counter("outbox_published", "Outbox rows published with a broker confirm")
OUTBOX_FAILED = Counter("outbox_publish_failures", "Outbox rows whose publish attempt failed")

LOOP_RUNS = Counter("worker_loop_runs", "Passes of a worker's periodic loop", ["loop", "outcome"])
LOOP_DURATION = Histogram(
    "worker_loop_duration_seconds", "One pass of a periodic loop", ["loop"], buckets=LATENCY_BUCKETS
)

JOBS = Counter(
    "jobs",
    "Job attempts by kind and outcome (integrations side effects, webhook processing, "
    "reconciler repairs)",
    ["kind", "outcome"],
)

EXTERNAL_REQUESTS = Counter(
    "external_requests",
    "Calls to an external system; status_class: 2xx..5xx, no_answer (timeout, unreachable), "
    "refused (our own budget said no before sending)",
    ["system", "operation", "status_class"],
)
EXTERNAL_DURATION = Histogram(
    "external_request_duration_seconds",
    "One external call, the client's own retries included",
    ["system", "operation"],
    buckets=LATENCY_BUCKETS,
)
THROTTLED = Counter(
    "external_throttled", "429 answers from an external system", ["system", "operation"]
)
RETRY_AFTER = Histogram(
    "external_retry_after_seconds",
    "Retry-After asked for by an external system's 429 answers",
    ["system"],
    buckets=RETRY_AFTER_BUCKETS,
)


def status_class(status: int | str | None) -> str:
    """`2xx`…`5xx`; `no_answer` when none came; a string is a class already (`refused`)."""
    if isinstance(status, str):
        return status
    return "no_answer" if status is None else f"{status // 100}xx"


def record_external(
    system: str, operation: str, status: int | str | None, seconds: float | None = None
) -> None:
    EXTERNAL_REQUESTS.labels(system, operation, status_class(status)).inc()
    if seconds is not None:
        EXTERNAL_DURATION.labels(system, operation).observe(seconds)


def record_throttled(system: str, operation: str, retry_after: float | None) -> None:
    THROTTLED.labels(system, operation).inc()
    if retry_after is not None:
        RETRY_AFTER.labels(system).observe(retry_after)


# -- the outbox backlog ------------------------------------------------------------------------


class _OutboxBacklog:
    """The relay refreshes the row count and oldest row's age every few seconds; the age grows
    on its own between refreshes, computed at scrape time (on the process's monotonic clock,
    from an age the database measured on its own clock, so no clock skew enters)."""

    def __init__(self) -> None:
        self._oldest_at: float | None = None

    def update(self, rows: int, oldest_age_seconds: float | None) -> None:
        OUTBOX_UNPUBLISHED.set(rows)
        self._oldest_at = (
            None
            if not rows or oldest_age_seconds is None
            else time.monotonic() - oldest_age_seconds
        )

    def oldest_age(self) -> float:
        oldest = self._oldest_at
        return 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)


OUTBOX_BACKLOG = _OutboxBacklog()
OUTBOX_OLDEST_AGE.set_function(OUTBOX_BACKLOG.oldest_age)


# -- HTTP ----------------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # 404s and redirects: one series, whatever path was asked for


def route_template(routes: Sequence[BaseRoute | RouteContext], scope: Scope) -> str:
    """The template of the route that takes `scope` ("/api/requests/{request_id}"), matched
    against the app's flattened routes, so nested routers' prefixes are part of it (the route
    object in `scope["route"]` knows only its own router's prefix in FastAPI ≥ 0.137)."""
    partial = None
    for route in iter_route_contexts(routes):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route.path_format or UNMATCHED
        if match is Match.PARTIAL and partial is None:
            partial = route.path_format  # the path exists, not with this method (405)
    return partial or UNMATCHED


class _Routes:
    """An app's routes flattened, and each route object's full template when it is unique.

    Starlette leaves the route it chose in `scope["route"]`; mapping that object to its template
    costs a dict lookup, where matching every route again costs ~100 µs on the gateway. Only a
    route included in two places, or a mount, falls back to matching; a 404 no route chose is
    `unmatched` at once (a flood of them must not cost a full match each)."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.size = len(routes)
        self.flat = list(iter_route_contexts(routes))
        self.templates: dict[int, str | None] = {}
        for route in self.flat:
            key = id(route.original_route)
            self.templates[key] = None if key in self.templates else route.path_format

    def template(self, chosen: object, arrived: Scope, status: int) -> str:
        if chosen is None and status == 404:
            return UNMATCHED
        found = self.templates.get(id(chosen)) if chosen is not None else None
        return found or route_template(self.flat, arrived)


class HttpMetrics:
    """ASGI middleware: count and time each request by method, route template, status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: _Routes | None = None

    def _index(self, routes: list[BaseRoute]) -> _Routes:
        # Built at the first request (every route is added by then), again if routes are added.
        if self._routes is None or self._routes.size != len(routes):
            self._routes = _Routes(routes)
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Routing rewrites scope (root_path, path params): keep what it looked like on arrival.
        arrived = dict(scope)
        status = 500  # an exception that escapes becomes a 500 further out
        began = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - began
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            routes = self._index(arrived["app"].routes)
            route = routes.template(scope.get("route"), arrived, status)
            klass = status_class(status)
            HTTP_REQUESTS.labels(method, route, klass).inc()
            HTTP_DURATION.labels(method, route, klass).observe(elapsed)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# An app's own figures, computed for each scrape (async: they may need the database).
ScrapeFigures = Callable[[Request], Awaitable[Iterable[Metric]]]


class _WithFigures(Collector):
    """The process registry, then one scrape's figures. They are not registered anywhere, so
    nothing is left set between scrapes and other apps in the process never show them."""

    def __init__(self, figures: Iterable[Metric]) -> None:
        self._figures = list(figures)

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from self._figures


def metrics_endpoint_with(
    figures: ScrapeFigures,
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        collected = _WithFigures(await figures(request))
        return Response(generate_latest(collected), media_type=CONTENT_TYPE_LATEST)

    return endpoint


# -- the worker's listener ---------------------------------------------------------------------


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(host: str, port: int) -> MetricsServer | None:
    """prometheus_client's own threaded server (any path answers with the metrics).

    A port that is taken is logged, not fatal: a worker without metrics still does its work."""
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics listener not started on %s:%d: %s", host, port, exc)
        return None
    out = MetricsServer(server, thread)
    log.info("metrics on http://%s:%d/metrics", host, out.port)
    return out


__all__ = [
    "CONSUMED",
    "EVENT_AGE",
    "EXTERNAL_DURATION",
    "EXTERNAL_REQUESTS",
    "HANDLER_DURATION",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "JOBS",
    "LOOP_DURATION",
    "LOOP_RUNS",
    "OUTBOX_BACKLOG",
    "OUTBOX_FAILED",
    "OUTBOX_PUBLISHED",
    "RETRY_AFTER",
    "THROTTLED",
    "HttpMetrics",
    "MetricsServer",
    "ScrapeFigures",
    "metrics_endpoint",
    "metrics_endpoint_with",
    "record_external",
    "record_throttled",
    "route_template",
    "serve_metrics",
    "status_class",
]
