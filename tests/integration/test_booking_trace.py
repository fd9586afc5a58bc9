"""One booking is one trace: the candidate's POST through the gateway → scheduling → its outbox
→ the broker → integrations' consumer → the calendar.sync job (run later, from its table) → the
Graph call that creates the Outlook event.

In process, like test_one_trace.py: the gateway routes to scheduling over ASGI; integrations'
API (free/busy, which the booking checks) and the sandbox's fake Graph run on real ports; the
consumers, the job runner and the Graph adapter are the ones `integrations-worker` builds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from gateway_service.app import create_app as create_gateway
from gateway_service.settings import Settings as GatewaySettings
from integrations_service import worker
from integrations_service.app import create_app as create_integrations
from integrations_service.settings import Settings as IntegrationsSettings
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from scheduler_contracts.topology import TOPOLOGY, Topology
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.server import serve_in_thread
from scheduling_service.app import create_app as create_scheduling
from scheduling_service.settings import Settings as SchedulingSettings
from servicekit.db import create_engine, create_sessionmaker
from servicekit.relay import OutboxRelay
from servicekit.telemetry import add_span_processor, tracer_provider
from servicekit.testing.helpers import app_client, user_headers
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from servicekit.worker import WorkerContext
from sqlalchemy import text

ORGANIZER = "scheduling@example.com"
BOOK_ROUTE = "/api/public/bookings/{token}"
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


def _request() -> dict[str, object]:
    today = datetime.now(UTC).date()
    return {
        "candidate": {"name": "Ada", "email": "ada@candidates.example.com", "timeZone": "UTC"},
        "title": "Technical interview",
        "interviewers": [{"email": f"grace-{uuid.uuid4().hex[:6]}@example.com"}],
        "durationMinutes": 30,
        "windowStart": today.isoformat(),
        "windowEnd": (today + timedelta(days=6)).isoformat(),
        "minimumNoticeMinutes": 60,
    }


async def _open_request(scheduling: httpx.AsyncClient) -> str:
    """A coordinator's request (straight to scheduling: not the trace under test); its token."""
    admin = user_headers(org_id=uuid.uuid4(), role="admin", email="coordinator@example.com")
    r = await scheduling.put(
        "/api/scheduling/settings", headers=admin, json={"timeZone": "UTC", "workingHours": ALL_DAY}
    )
    assert r.status_code == 200, r.text
    r = await scheduling.post("/api/scheduling/requests", headers=admin, json=_request())
    assert r.status_code == 201, r.text
    return str(r.json()["bookingUrl"]).rsplit("/", 1)[-1]


def _one(spans: Sequence[ReadableSpan], service: str, name: str, kind: SpanKind) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.resource.attributes["service.name"] == service and s.name == name and s.kind == kind
    ]
    assert len(found) == 1, f"{service} {name} {kind}: {[s.name for s in spans]}"
    return found[0]


def _child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    assert span.parent is not None and span.context is not None and parent.context is not None
    return (
        span.context.trace_id == parent.context.trace_id
        and span.parent.span_id == parent.context.span_id
    )


async def test_a_booking_is_one_trace_from_the_gateway_to_the_graph_call(
    make_database: MakeDatabase, broker: BrokerUnderTest, graph_url: str
) -> None:
    exporter = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(exporter))
    topology = Topology(queues=TOPOLOGY.queues, prefix=broker.prefix + "booking-trace.")
    integrations = IntegrationsSettings(
        env="test",
        database_url=await make_database("btrace_integrations", "integrations_service:migrations"),
        amqp_url=broker.url,
        broker_prefix=topology.prefix,
        graph_base_url=graph_url,
        graph_static_token="sandbox-token",
        graph_organizer_mailbox=ORGANIZER,
        graph_max_retries=0,
    )
    scheduling_db = await make_database("btrace_scheduling", "scheduling_service:migrations")
    gateway_db = await make_database("btrace_gateway", "gateway_service:migrations")

    # -- the candidate books through the gateway --------------------------------------------
    with serve_in_thread(create_integrations(integrations), lifespan="on") as integrations_url:
        scheduling_settings = SchedulingSettings(
            env="test", database_url=scheduling_db, integrations_url=integrations_url
        )
        scheduling = create_scheduling(scheduling_settings)
        async with app_client(scheduling) as coordinator:
            token = await _open_request(coordinator)
            gateway = create_gateway(
                GatewaySettings(env="test", database_url=gateway_db),
                transports={"scheduling": httpx.ASGITransport(app=scheduling)},
            )
            async with app_client(gateway) as candidate:
                offered = await candidate.get(f"/api/public/bookings/{token}/slots")
                assert offered.status_code == 200, offered.text
                start = offered.json()["slots"][0]["start"]
                booked = await candidate.post(
                    f"/api/public/bookings/{token}", json={"start": start}
                )
    assert booked.status_code == 201, booked.text
    assert booked.json()["status"] == "booked"

    # -- scheduling's relay → the broker → integrations' consumers → the Graph job ------------
    engine = create_engine(integrations.sqlalchemy_url)
    ctx = WorkerContext(integrations, engine, create_sessionmaker(engine), topology)
    consumers = worker.consumers(ctx)
    for consumer in consumers:  # as WorkerRuntime.run gives them the service's tracer
        consumer.tracer = tracer_provider("integrations").get_tracer("servicekit.consumer")
    deps = worker.deps(ctx)
    jobs = worker.runner(ctx, "graph", deps, batch=10)
    connection = await aio_pika.connect_robust(broker.url)
    relay = OutboxRelay(
        dsn=scheduling_settings.asyncpg_dsn,
        amqp_url=broker.url,
        topology=topology,
        tracer=tracer_provider("scheduling").get_tracer("servicekit.relay"),
    )
    try:
        for consumer in consumers:
            await consumer.start(connection)
        assert await relay.drain() >= 1
        for _ in range(200):
            async with ctx.sessions() as s:
                queued = await s.scalar(
                    text("SELECT count(*) FROM jobs WHERE kind = 'calendar.sync'")
                )
            if queued:
                break
            await asyncio.sleep(0.05)
        assert queued == 1
        for _ in range(5):  # the calendar event, then the mails that follow it
            if not (await jobs.run_once()).claimed:
                break
        async with ctx.sessions() as s:
            event = (await s.execute(text("SELECT graph_event_id FROM calendar_events"))).one()
        assert event.graph_event_id
    finally:
        await relay.close()
        for consumer in consumers:
            await consumer.stop()
        await connection.close()
        await deps.clients.aclose()
        await engine.dispose()

    # -- one trace, each hop a child of the one before ------------------------------------------
    spans = exporter.get_finished_spans()
    request = _one(spans, "gateway", f"POST {BOOK_ROUTE}", SpanKind.SERVER)
    assert request.parent is None and request.context is not None
    trace_id = request.context.trace_id
    mine = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]

    proxied = _one(mine, "gateway", "POST", SpanKind.CLIENT)
    # In one process the ASGI instrumentation sees the gateway's client span as an in-process
    # parent and marks scheduling's request span INTERNAL; across processes it is SERVER.
    booking = _one(mine, "scheduling", f"POST {BOOK_ROUTE}", SpanKind.INTERNAL)
    publish = _one(mine, "scheduling", "scheduling.booking.confirmed.v1 publish", SpanKind.PRODUCER)
    consume = _one(
        mine, "integrations", "scheduling.booking.confirmed.v1 process", SpanKind.CONSUMER
    )
    job = _one(mine, "integrations", "calendar.sync run", SpanKind.INTERNAL)
    create = _one(
        [s for s in mine if s.parent and s.parent.span_id == job.context.span_id],
        "integrations",
        "POST",
        SpanKind.CLIENT,
    )

    assert _child_of(proxied, request)
    assert _child_of(booking, proxied)
    assert _child_of(publish, booking)  # restored from the outbox row by the relay
    assert _child_of(consume, publish)  # across the broker: traceparent in the AMQP headers
    assert _child_of(job, consume)  # across the jobs table: the trace kept with the job
    assert _child_of(create, job)
    assert job.attributes is not None and job.attributes["job.outcome"] == "done"
    assert create.attributes is not None
    assert str(create.attributes["http.url"]).startswith(f"{graph_url}/v1.0/users/")
    assert str(create.attributes["http.url"]).endswith("/calendar/events")
    assert create.attributes["http.status_code"] == 201
    # The mails the calendar work enqueued continue the same trace.
    notice = _one(mine, "integrations", "mail.candidate_notice run", SpanKind.INTERNAL)
    assert _child_of(notice, job)
