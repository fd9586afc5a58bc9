"""One service at a time, as its worker runs it: its own migrated database, its consumers built by
its worker's own factory, and a few rows for generated messages to point at (so handlers go past
"unknown request, ignored" into the code that uses the fields).

Which consumer takes a type comes from the topology: the queue of the service that binds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts.topology import TOPOLOGY, Topology
from servicekit.consumer import Consumer
from servicekit.db import create_sessionmaker, unit_of_work
from servicekit.settings import KitSettings
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from servicekit.worker import WorkerContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SERVICES = ("scheduling", "integrations", "reconciler", "ops")


def _ids(n: int) -> tuple[uuid.UUID, ...]:
    return tuple(uuid.uuid4() for _ in range(n))


# Ids generated messages are pointed at: the first ones exist in the seeded worlds, the last of
# each kind exists nowhere. Shared by all services, so events about one booking meet each other.
ORGS = _ids(2)
REQUESTS = _ids(4)
BOOKINGS = _ids(3)
JOBS = _ids(3)
WEBHOOKS = _ids(3)
ID_POOLS: dict[str, tuple[uuid.UUID, ...]] = {
    "org_id": ORGS,
    "request_id": REQUESTS,
    "booking_id": BOOKINGS,
    "job_id": JOBS,
    "sync_job_id": JOBS,
    "webhook_id": WEBHOOKS,
}


@dataclass(frozen=True)
class Binding:
    service: str
    queue: str
    type_name: str


def bindings(types: dict[str, str]) -> list[Binding]:
    """(service, queue, type) for every type (name → kind) a service's queues bind."""
    out: list[Binding] = []
    for name, kind in sorted(types.items()):
        if kind == "command":
            try:
                queues: Sequence[Any] = (TOPOLOGY.command_queue_for(name),)
            except KeyError:
                queues = ()
        else:
            queues = TOPOLOGY.queues_for_event(name)
        out.extend(Binding(q.owner, q.name, name) for q in queues if q.owner in SERVICES)
    return out


@dataclass
class World:
    service: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    consumers: dict[str, Consumer] = field(default_factory=dict)  # queue name → consumer


ConsumerFactory = Callable[[WorkerContext], Sequence[Consumer]]


async def build(service: str, make_database: MakeDatabase, broker: BrokerUnderTest) -> World:
    database = await make_database(f"compat_{service}", f"{service}_service:migrations")
    settings, factory = _wiring(service, database, broker)
    # As the worker's engine, but commits do not wait for the disk: thousands of messages.
    engine = create_async_engine(
        settings.sqlalchemy_url,
        pool_size=2,
        connect_args={"server_settings": {"synchronous_commit": "off"}},
    )
    sessions = create_sessionmaker(engine)
    topology = Topology(queues=TOPOLOGY.queues, prefix=broker.prefix)
    built = factory(WorkerContext(settings, engine, sessions, topology))
    world = World(service, engine, sessions, {c.queue: c for c in built})
    async with unit_of_work(sessions) as session:
        await SEEDS[service](session)
    return world


def _wiring(
    service: str, database: str, broker: BrokerUnderTest
) -> tuple[KitSettings, ConsumerFactory]:
    common: dict[str, Any] = {
        "env": "test",
        "database_url": database,
        "amqp_url": broker.url,
        "broker_prefix": broker.prefix,
    }
    if service == "scheduling":
        from scheduling_service import worker as scheduling
        from scheduling_service.settings import Settings as SchedulingSettings

        settings: KitSettings = SchedulingSettings(
            **common, public_base_url="https://book.example.test"
        )
        return settings, scheduling.consumers
    if service == "integrations":
        from integrations_service import worker as integrations
        from integrations_service.settings import Settings as IntegrationsSettings

        settings = IntegrationsSettings(
            **common, icims_webhook_secret="compat-webhook-secret-0123456789abcdef"
        )
        return settings, integrations.consumers
    if service == "reconciler":
        from reconciler_service import worker as reconciler
        from reconciler_service.settings import Settings as ReconcilerSettings

        def events(ctx: WorkerContext) -> Sequence[Consumer]:
            assert isinstance(ctx.settings, ReconcilerSettings)
            jobs = reconciler.job_service(ctx.settings, "contract-compat")
            return [reconciler.events_consumer(ctx, jobs)]

        return ReconcilerSettings(**common), events
    if service == "ops":
        from ops_service import worker as ops
        from ops_service.settings import Settings as OpsSettings

        return OpsSettings(**common), ops.consumers
    raise KeyError(service)


# --- seeds: rows the pooled ids name ---------------------------------------------------------


async def _seed_scheduling(session: AsyncSession) -> None:
    org = ORGS[0]
    await session.execute(
        text(
            "INSERT INTO org_settings (org_id, time_zone, working_hours, auto_request)"
            " VALUES (:org, 'Europe/Berlin', '{}'::jsonb, CAST(:template AS jsonb))"
        ),
        {
            "org": org,
            "template": '{"interviewers": [{"email": "grace@example.com"}],'
            ' "durationMinutes": 45, "windowDays": 10, "mode": "panel"}',
        },
    )
    day = datetime.now(UTC).date() + timedelta(days=3)
    for request_id, status in zip(REQUESTS[:3], ("open", "booked", "cancelled"), strict=True):
        await session.execute(
            text(
                "INSERT INTO scheduling_requests (id, org_id, status, title, candidate_name,"
                " candidate_email, candidate_time_zone, mode, duration_minutes, window_start,"
                " window_end, coordinator_email, booking_token, needs_attention,"
                " attention_reasons) VALUES (:id, :org, :status, 'Interview', 'Ada',"
                " 'ada@example.com', 'UTC', 'panel', 60, :day, :day, 'coord@example.com',"
                " :token, true, CAST(:reasons AS jsonb))"
            ),
            {
                "id": request_id,
                "org": org,
                "status": status,
                "day": day,
                "token": uuid.uuid4().hex,
                "reasons": '[{"reason": "Reconciliation failed", "source": "reconciliation"}]',
            },
        )
    start = datetime.now(UTC) + timedelta(days=3)
    for booking_id, request_id, status in (
        (BOOKINGS[0], REQUESTS[1], "confirmed"),
        (BOOKINGS[1], REQUESTS[2], "cancelled"),
    ):
        await session.execute(
            text(
                "INSERT INTO bookings (id, org_id, request_id, status, start_at, end_at,"
                " interviewers, booked_by) VALUES (:id, :org, :request, :status, :start, :end,"
                " '[\"grace@example.com\"]'::jsonb, 'candidate')"
            ),
            {
                "id": booking_id,
                "org": org,
                "request": request_id,
                "status": status,
                "start": start,
                "end": start + timedelta(hours=1),
            },
        )


async def _seed_integrations(session: AsyncSession) -> None:
    now = datetime.now(UTC)
    # One delivery that never verified (a retry re-verifies it), one that failed for good.
    for webhook_id, verified, status in (
        (WEBHOOKS[0], False, "received"),
        (WEBHOOKS[1], True, "failed"),
    ):
        await session.execute(
            text(
                "INSERT INTO webhook_events (id, provider, status, verified, event_type,"
                " customer_id, method, path, query, headers, raw_body, payload, attempts,"
                " last_error, received_at, next_attempt_at, body_sha256) VALUES (:id, 'icims',"
                " :status, :verified, 'application.status_changed', '1234', 'POST',"
                " '/api/webhooks/icims', '', '{}'::jsonb, :raw, CAST(:payload AS jsonb),"
                " :attempts, :error, :now, :now, :sha)"
            ),
            {
                "id": webhook_id,
                "status": status,
                "verified": verified,
                "raw": b'{"customerId": "1234"}',
                "payload": '{"customerId": "1234"}',
                "attempts": 3 if status == "failed" else 0,
                "error": "iCIMS answered 503" if status == "failed" else None,
                "now": now,
                "sha": uuid.uuid4().hex * 2,
            },
        )


async def _seed_reconciler(session: AsyncSession) -> None:
    now = datetime.now(UTC)
    jobs = (
        (JOBS[0], "failed", "calendar_event_missing"),
        (JOBS[1], "pending", "icims_note_missing"),
    )
    for job_id, status, job_type in jobs:
        await session.execute(
            text(
                "INSERT INTO jobs (id, job_type, status, org_id, request_id, booking_id,"
                " description, attempts, max_attempts, next_attempt_at, correlation_id)"
                " VALUES (:id, :type, :status, :org, :request, :booking,"
                " 'no calendar event', 3, 3, :now, :correlation)"
            ),
            {
                "id": job_id,
                "status": status,
                "type": job_type,
                "org": ORGS[0],
                "request": REQUESTS[1],
                "booking": BOOKINGS[0],
                "now": now,
                "correlation": uuid.uuid4(),
            },
        )


async def _seed_nothing(session: AsyncSession) -> None:
    return None  # ops' read models are made from the events themselves


SEEDS = {
    "scheduling": _seed_scheduling,
    "integrations": _seed_integrations,
    "reconciler": _seed_reconciler,
    "ops": _seed_nothing,
}
