"""`scheduler-reconcile --once` against the real broker: one run detects and sends the repair
command to integrations' queue; the owner's answer, published on the bus, is applied by the
next run, which completes the job."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import aio_pika
from reconciler_service.jobs.service import JobService
from reconciler_service.settings import Settings
from reconciler_service.worker import runtime
from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import CalendarEventCreated
from scheduler_contracts.topology import EVENTS_EXCHANGE
from servicekit.broker import make_message
from servicekit.testing.plugin import BrokerUnderTest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .drift import World


async def take_command(broker: BrokerUnderTest, job_id: uuid.UUID) -> Envelope | None:
    """The command for this job from integrations' command queue (others are put back)."""
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(broker.topology.name("integrations.commands"))
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            envelope = Envelope.model_validate_json(message.body)
            if envelope.data.get("job_id") == str(job_id):
                await message.ack()
                return envelope
            await message.nack(requeue=True)
        return None
    finally:
        await connection.close()


async def publish(broker: BrokerUnderTest, envelope: Envelope) -> None:
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(broker.topology.name(EVENTS_EXCHANGE))
        message = make_message(
            json.dumps(envelope.model_dump(mode="json")).encode(),
            message_id=str(envelope.id),
            type_name=envelope.type,
        )
        await exchange.publish(message, routing_key=envelope.type, mandatory=True)
    finally:
        await connection.close()


async def test_once_runs_detect_and_repair_and_a_later_run_applies_the_answer(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    reconciler_settings: Settings,
    broker: BrokerUnderTest,
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=timedelta(days=2), application=None)
    booking_id = await world.book(request_id, ago=timedelta(days=2), application=None)

    assert await runtime(reconciler_settings).run_once() == 0

    [job] = await world.jobs_of(request_id)
    assert job.status == "processing" and job.attempts == 1
    command = await take_command(broker, job.id)
    assert command is not None and command.type == "integrations.calendar_event.ensure.v1"
    assert command.id == job.command_id and command.data["booking_id"] == str(booking_id)

    answer = Envelope.build(
        CalendarEventCreated(
            booking_id=booking_id,
            request_id=request_id,
            graph_event_id="AAMk-repaired",
            organizer_mailbox="scheduling@example.com",
            revision=1,
        ),
        source="integrations",
        org_id=world.org,
        causation=command,
    )
    await publish(broker, answer)

    assert await runtime(reconciler_settings).run_once() == 0

    done = await world.job(job.id)
    assert (done.status, done.resolution) == ("completed", "repaired")
    heartbeats = await world.published("reconciler.worker.heartbeat")
    last = heartbeats[-1]["data"]
    assert last["mode"] == "once" and last["last_run_ok"] is True
    assert "events:" in last["last_run_summary"] and "repair:" in last["last_run_summary"]
