"""One trace across the system: gateway → scheduling → outbox → broker → ops consumer."""

from __future__ import annotations

import asyncio

import aio_pika
import httpx
from gateway_service.app import create_app as create_gateway
from gateway_service.auth import service as signin
from gateway_service.auth import sessions as session_store
from gateway_service.auth.context import Auth
from gateway_service.orgs import service as orgs
from gateway_service.settings import Settings as GatewaySettings
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from ops_service.timeline.handlers import record_event
from scheduler_contracts.topology import TOPOLOGY, Topology
from scheduling_service.app import create_app as create_scheduling
from scheduling_service.settings import Settings as SchedulingSettings
from servicekit.consumer import Consumer
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.relay import OutboxRelay
from servicekit.telemetry import add_span_processor, tracer_provider
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase

REQUEST = {
    "candidate": {"name": "Ada", "email": "ada@example.com", "timeZone": "America/New_York"},
    "title": "Phone screen",
    "interviewers": [{"email": "grace@example.com"}],
    "durationMinutes": 30,
    "windowStart": "2031-05-05",
    "windowEnd": "2031-05-09",
}


async def _signed_in_admin(settings: GatewaySettings) -> tuple[dict[str, str], str]:
    """A user with an org and a live session, made the way sign-in makes them."""
    engine = create_engine(settings.sqlalchemy_url)
    async with unit_of_work(create_sessionmaker(engine)) as db:
        user_id = await signin.upsert_user(db, sub="trace", email="trace@example.com", name=None)
        auth = Auth(
            user_id=user_id, email="trace@example.com", name=None, superadmin=False, session=None
        )
        org_id = await orgs.create_org(db, auth, name="Trace", time_zone="UTC", ip=None)
        token, record = await session_store.create(
            db, settings, user_id=user_id, active_org_id=org_id, ip=None, user_agent=None
        )
    await engine.dispose()
    return {settings.session_cookie: token}, record.csrf_token


async def test_request_through_gateway_is_one_trace_to_the_consumer(
    make_database: MakeDatabase, broker: BrokerUnderTest
) -> None:
    exporter = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(exporter))
    scheduling_db = await make_database("trace_scheduling", "scheduling_service:migrations")
    ops_db = await make_database("trace_ops", "ops_service:migrations")
    topology = Topology(queues=TOPOLOGY.queues, prefix=broker.prefix + "trace.")

    gateway_db = await make_database("trace_gateway", "gateway_service:migrations")
    gateway_settings = GatewaySettings(env="test", database_url=gateway_db)
    cookies, csrf = await _signed_in_admin(gateway_settings)

    scheduling = create_scheduling(SchedulingSettings(env="test", database_url=scheduling_db))
    async with scheduling.router.lifespan_context(scheduling):
        gateway = create_gateway(
            gateway_settings, transports={"scheduling": httpx.ASGITransport(app=scheduling)}
        )
        async with app_client(gateway) as client:
            client.cookies.update(cookies)
            r = await client.post(
                "/api/scheduling/requests", json=REQUEST, headers={"X-CSRF-Token": csrf}
            )
    assert r.status_code == 201, r.text

    ops_engine = create_engine(ops_db)
    consumer = Consumer(
        queue="ops.events",
        name="trace-test",
        sessions=create_sessionmaker(ops_engine),
        default_handler=record_event,
        topology=topology,
        tracer=tracer_provider("ops").get_tracer("servicekit.consumer"),
    )
    connection = await aio_pika.connect_robust(broker.url)
    await consumer.start(connection)
    relay = OutboxRelay(
        dsn=SchedulingSettings(env="test", database_url=scheduling_db).asyncpg_dsn,
        amqp_url=broker.url,
        topology=topology,
        tracer=tracer_provider("scheduling").get_tracer("servicekit.relay"),
    )
    try:
        assert await relay.drain() == 1
        for _ in range(200):
            if consumer.stats.handled:
                break
            await asyncio.sleep(0.05)
        assert consumer.stats.handled == 1
    finally:
        await relay.close()
        await consumer.stop()
        await connection.close()
        await ops_engine.dispose()

    spans = exporter.get_finished_spans()
    root = next(
        s
        for s in spans
        if s.resource.attributes["service.name"] == "gateway"
        and s.kind == SpanKind.SERVER
        and "/api/scheduling/requests" in s.name
    )
    trace_id = root.context.trace_id
    in_trace = {
        (s.resource.attributes["service.name"], s.kind)
        for s in spans
        if s.context.trace_id == trace_id
    }
    assert ("gateway", SpanKind.SERVER) in in_trace
    assert ("gateway", SpanKind.CLIENT) in in_trace  # the proxied call
    # In one process the ASGI instrumentation sees the gateway's span as an in-process parent
    # and marks scheduling's request span INTERNAL; across processes it is SERVER.
    assert any(
        s.resource.attributes["service.name"] == "scheduling"
        and s.context.trace_id == trace_id
        and s.name == "POST /api/scheduling/requests"
        and s.parent is not None
        for s in spans
    )
    assert (
        "scheduling",
        SpanKind.PRODUCER,
    ) in in_trace  # the relay's publish, restored from the outbox
    assert ("ops", SpanKind.CONSUMER) in in_trace
    consumer_span = next(
        s for s in spans if s.kind == SpanKind.CONSUMER and s.context.trace_id == trace_id
    )
    assert consumer_span.name == "scheduling.request.created.v1 process"
