"""Booking side effects end to end against the sandbox servers: the real msgraph-sdk adapter
talking to the fake Graph, the real iCIMS adapter talking to the fake iCIMS, real PostgreSQL.

The handlers run as the consumer runs them (in a unit of work); the job runners as the workers
run them. What is asserted is what a person would see: the Outlook event, the mails in the
candidate's inbox, the note on the iCIMS application, the events ops and scheduling receive.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from integrations_service.clients import Clients
from integrations_service.connections.service import ConnectionResolver
from integrations_service.kinds.deps import Deps
from integrations_service.settings import Settings
from integrations_service.worker import limits
from pydantic import SecretStr
from scheduler_contracts.events.commands import EnsureCalendarEvent, EnsureIcimsNote
from scheduler_contracts.events.common import ATTENTION_ICIMS_SYNC_FAILED
from scheduler_contracts.events.scheduling import (
    BookingCancelled,
    BookingRescheduled,
    RequestCreated,
)
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.icims import create_app as create_icims
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from sqlalchemy import text

from .side_effects import (
    CUSTOMER,
    NOTE_FIELD,
    ORGANIZER,
    SCHEDULED_STATUS,
    confirmed,
    deliver,
    envelope,
    handlers,
    job_rows,
    make_due,
    published,
    slot,
    work,
)

ORG = uuid.uuid4()


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="module")
def icims_url() -> Iterator[str]:
    with serve_in_thread(create_icims()) as url:
        yield url


@pytest.fixture
async def graph(graph_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=graph_url, timeout=10) as control:
        await control.post("/_sandbox/reset")
        yield control


@pytest.fixture
async def icims(icims_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=icims_url, timeout=10) as control:
        await control.post("/_sandbox/reset")
        await control.post(
            "/_sandbox/seed",
            json={"customerId": CUSTOMER, "workflows": [{"id": "W1", "status": {"id": "C51218"}}]},
        )
        yield control


@pytest.fixture
def settings(integrations_settings: Settings, graph_url: str, icims_url: str) -> Settings:
    return integrations_settings.model_copy(
        update={
            "graph_base_url": graph_url,
            "graph_static_token": SecretStr("sandbox-token"),
            "graph_organizer_mailbox": ORGANIZER,
            "graph_max_retries": 0,
            "icims_base_url": icims_url,
            "icims_customer_id": CUSTOMER,
            "icims_client_id": "scheduler",
            "icims_client_secret": SecretStr("icims-secret"),
            "icims_note_field": NOTE_FIELD,
            "icims_scheduled_status_id": SCHEDULED_STATUS,
        }
    )


@pytest.fixture
async def deps(settings: Settings, integrations_db: str) -> AsyncIterator[Deps]:
    engine = create_engine(integrations_db, pool_size=10)
    sessions = create_sessionmaker(engine)
    async with unit_of_work(sessions) as s:
        for table in (
            "jobs",
            "bookings",
            "calendar_events",
            "icims_notes",
            "outbox",
            "icims_usage",
        ):
            await s.execute(text(f"DELETE FROM {table}"))
    clients = Clients(settings, engine)
    yield Deps(sessions, ConnectionResolver(settings), clients, limits(settings))
    await clients.aclose()
    await engine.dispose()


async def graph_state(graph: httpx.AsyncClient) -> dict[str, Any]:
    return (await graph.get("/_sandbox/state")).json()


def organizer_events(state: dict[str, Any]) -> list[dict[str, Any]]:
    return state["events"].get(ORGANIZER, [])


def inbox(state: dict[str, Any], mailbox: str) -> list[dict[str, Any]]:
    return state["mail"].get(mailbox, {}).get("inbox", [])


async def notes(icims: httpx.AsyncClient) -> list[dict[str, Any]]:
    workflows = (await icims.get("/_sandbox/state")).json()["workflows"]
    w1 = next(w for w in workflows if w["id"] == "W1")
    return w1.get(NOTE_FIELD, [])


def body_text(message: dict[str, Any]) -> str:
    return str(message.get("body", {}).get("content", ""))


async def test_confirmed_booking_becomes_event_mails_note_and_status_move(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed()
    await deliver(deps.sessions, handlers(deps).booking_confirmed, envelope(data, ORG))
    await work(deps)

    state = await graph_state(graph)
    (event,) = organizer_events(state)
    assert event["transactionId"] == str(data.booking_id)
    join_url = event["onlineMeeting"]["joinUrl"]
    assert join_url and event["isOnlineMeeting"]
    assert {a["emailAddress"]["address"] for a in event["attendees"]} == {
        "grace@example.com",
        "alan@example.com",
    }
    # The candidate's confirmation carries the Teams link and a calendar file.
    (mail,) = [m for m in inbox(state, "ada@candidates.test") if "Confirmed" in m["subject"]]
    assert join_url in body_text(mail)
    (ics,) = mail["attachments"]
    calendar = base64.b64decode(ics["contentBytes"]).decode()
    assert "BEGIN:VEVENT" in calendar and data.slot.start.strftime("%Y%m%dT%H%M%SZ") in calendar
    assert any("booked" in m["subject"] for m in inbox(state, "coordinator@example.com"))
    # One note on the application, with our marker; the workflow moved to "scheduled".
    (note,) = await notes(icims)
    assert "Interview booked" in note["note"] and str(data.booking_id) in note["note"]
    workflow = next(
        w for w in (await icims.get("/_sandbox/state")).json()["workflows"] if w["id"] == "W1"
    )
    assert workflow["status"]["id"] == SCHEDULED_STATUS
    types = [t for t, _ in await published(deps.sessions, "integrations.")]
    assert "integrations.calendar_event.created.v1" in types
    assert "integrations.icims_note.created.v1" in types
    created = dict(await published(deps.sessions, "integrations.calendar_event"))
    assert created["integrations.calendar_event.created.v1"]["teams_join_url"] == join_url


async def test_the_same_booking_told_twice_makes_one_event_one_note_one_mail(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed()
    h = handlers(deps)
    await deliver(deps.sessions, h.booking_confirmed, envelope(data, ORG))
    await work(deps)
    # A second publication of the same fact (another envelope id, same revision): stale.
    await deliver(deps.sessions, h.booking_confirmed, envelope(data, ORG))
    await work(deps)
    state = await graph_state(graph)
    assert len(organizer_events(state)) == 1
    assert len([m for m in inbox(state, "ada@candidates.test") if "Confirmed" in m["subject"]]) == 1
    assert len(await notes(icims)) == 1


async def test_reschedule_moves_the_same_event_and_keeps_the_teams_link(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed()
    h = handlers(deps)
    await deliver(deps.sessions, h.booking_confirmed, envelope(data, ORG))
    await work(deps)
    (before,) = organizer_events(await graph_state(graph))
    later = slot(hours_from_now=72)
    moved = BookingRescheduled(
        booking_id=data.booking_id,
        request_id=data.request_id,
        previous_slot=data.slot,
        new_slot=later,
        rescheduled_by="candidate",
        revision=2,
    )
    await deliver(deps.sessions, h.booking_rescheduled, envelope(moved, ORG))
    await work(deps)
    state = await graph_state(graph)
    (after,) = organizer_events(state)
    assert after["id"] == before["id"]
    assert after["onlineMeeting"]["joinUrl"] == before["onlineMeeting"]["joinUrl"]
    assert before["onlineMeeting"]["joinUrl"] in after["body"]["content"]
    assert after["start"]["dateTime"].startswith(later.start.strftime("%Y-%m-%dT%H:%M"))
    assert any("Rescheduled" in m["subject"] for m in inbox(state, "ada@candidates.test"))
    kinds = [n["note"] for n in await notes(icims)]
    assert len(kinds) == 2 and "Interview rescheduled" in kinds[1]
    assert ("integrations.calendar_event.updated.v1") in [
        t for t, _ in await published(deps.sessions, "integrations.calendar_event")
    ]


async def test_cancel_cancels_the_event_and_tells_the_candidate(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed()
    h = handlers(deps)
    await deliver(deps.sessions, h.booking_confirmed, envelope(data, ORG))
    await work(deps)
    cancel = BookingCancelled(
        booking_id=data.booking_id,
        request_id=data.request_id,
        cancelled_by="coordinator",
        reason="Position filled",
        revision=2,
    )
    await deliver(deps.sessions, h.booking_cancelled, envelope(cancel, ORG))
    await work(deps)
    state = await graph_state(graph)
    (event,) = organizer_events(state)
    assert event["isCancelled"] is True
    assert event["_sandbox"]["cancellationComment"] == "Position filled"
    assert any("Cancelled" in m["subject"] for m in inbox(state, "ada@candidates.test"))
    assert "Interview cancelled" in (await notes(icims))[-1]["note"]


async def test_reschedule_seen_before_the_confirmation_wins(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed()
    later = slot(hours_from_now=96)
    moved = BookingRescheduled(
        booking_id=data.booking_id,
        request_id=data.request_id,
        previous_slot=data.slot,
        new_slot=later,
        title=data.title,
        candidate=data.candidate,
        interviewers=data.interviewers,
        icims_application_id="W1",
        revision=2,
    )
    h = handlers(deps)
    await deliver(deps.sessions, h.booking_rescheduled, envelope(moved, ORG))
    await deliver(deps.sessions, h.booking_confirmed, envelope(data, ORG))  # older: ignored
    await work(deps)
    (event,) = organizer_events(await graph_state(graph))
    assert event["start"]["dateTime"].startswith(later.start.strftime("%Y-%m-%dT%H:%M"))


async def test_icims_down_for_the_whole_run_flags_attention_then_ensure_writes_one_note(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    await icims.post("/_sandbox/faults", json={"status": 503})
    data = confirmed()
    await deliver(deps.sessions, handlers(deps).booking_confirmed, envelope(data, ORG))
    for _ in range(4):
        await work(deps)
        await make_due(deps.sessions)
    note_job = next(j for j in await job_rows(deps.sessions) if j.kind == "icims.note")
    assert note_job.status == "failed" and note_job.attempts == 3
    assert "503" in note_job.last_error
    failures = [d for t, d in await published(deps.sessions, "integrations.icims_sync.failed")]
    assert [f["final"] for f in failures if f["note_kind"]] == [False, False, True]
    flags = [d for _, d in await published(deps.sessions, "integrations.attention.flagged")]
    assert [f["reason"] for f in flags if f["source"] == "icims_sync"][:1] == [
        ATTENTION_ICIMS_SYNC_FAILED
    ]
    assert await notes(icims) == []
    # The calendar side did not wait for iCIMS.
    assert len(organizer_events(await graph_state(graph))) == 1

    await icims.post("/_sandbox/faults", json={"clear": True})
    ensure = EnsureIcimsNote(
        idempotency_key=f"repair:{uuid.uuid4()}",
        request_id=data.request_id,
        booking_id=data.booking_id,
        icims_application_id="W1",
        note_kind="booking_confirmed",
    )
    for _ in range(2):  # a redelivered command is harmless
        await deliver(deps.sessions, handlers(deps).ensure_icims_note, envelope(ensure, ORG))
        await work(deps)
    assert len(await notes(icims)) == 1
    answers = [d for _, d in await published(deps.sessions, "integrations.icims_note.created")]
    assert len(answers) == 1 and answers[0]["booking_id"] == str(data.booking_id)


async def test_ensure_recreates_an_event_deleted_in_outlook(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient, graph_url: str
) -> None:
    data = confirmed(application=None)
    await deliver(deps.sessions, handlers(deps).booking_confirmed, envelope(data, ORG))
    await work(deps)
    (event,) = organizer_events(await graph_state(graph))
    deleted = await graph.delete(
        f"/v1.0/users/{ORGANIZER}/events/{event['id']}",
        headers={"Authorization": "Bearer someone"},
    )
    assert deleted.status_code == 204
    ensure = EnsureCalendarEvent(
        idempotency_key=f"repair:{uuid.uuid4()}",
        request_id=data.request_id,
        booking_id=data.booking_id,
    )
    await deliver(deps.sessions, handlers(deps).ensure_calendar_event, envelope(ensure, ORG))
    await work(deps)
    (again,) = organizer_events(await graph_state(graph))
    assert again["id"] != event["id"] and again["onlineMeeting"]["joinUrl"]
    created = [d for t, d in await published(deps.sessions, "integrations.calendar_event.created")]
    assert [c["graph_event_id"] for c in created] == [event["id"], again["id"]]
    # An ensure of a healthy event is answered without touching Graph's calendar.
    await deliver(
        deps.sessions,
        handlers(deps).ensure_calendar_event,
        envelope(
            EnsureCalendarEvent(
                idempotency_key=f"repair:{uuid.uuid4()}",
                request_id=data.request_id,
                booking_id=data.booking_id,
            ),
            ORG,
        ),
    )
    await work(deps)
    assert len(organizer_events(await graph_state(graph))) == 1
    created = [d for t, d in await published(deps.sessions, "integrations.calendar_event.created")]
    assert len(created) == 3 and created[-1]["graph_event_id"] == again["id"]


def cancellations(state: dict[str, Any], mailbox: str) -> list[dict[str, Any]]:
    return [m for m in inbox(state, mailbox) if "cancelled" in m["subject"].lower()]


async def test_ensure_cancels_the_event_of_a_booking_whose_cancel_never_arrived(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed(application=None)
    await deliver(deps.sessions, handlers(deps).booking_confirmed, envelope(data, ORG))
    await work(deps)
    # booking.cancelled (revision 2) never reached integrations; the reconciler's ensure says it.
    ensure = EnsureCalendarEvent(
        idempotency_key=f"repair:{uuid.uuid4()}",
        request_id=data.request_id,
        booking_id=data.booking_id,
        slot=data.slot,
        title=data.title,
        candidate=data.candidate,
        interviewers=data.interviewers,
        revision=2,
        booking_status="cancelled",
    )
    await deliver(deps.sessions, handlers(deps).ensure_calendar_event, envelope(ensure, ORG))
    await work(deps)

    state = await graph_state(graph)
    (event,) = organizer_events(state)
    assert event["isCancelled"] is True
    assert len(cancellations(state, "ada@candidates.test")) == 1
    answers = [d for _, d in await published(deps.sessions, "integrations.calendar_event.cancel")]
    assert [(a["graph_event_id"], a["revision"]) for a in answers] == [(event["id"], 2)]
    # The cancel itself, arriving late, is already applied: nothing happens twice.
    cancel = BookingCancelled(
        booking_id=data.booking_id,
        request_id=data.request_id,
        cancelled_by="coordinator",
        revision=2,
    )
    await deliver(deps.sessions, handlers(deps).booking_cancelled, envelope(cancel, ORG))
    await work(deps)
    assert len(cancellations(await graph_state(graph), "ada@candidates.test")) == 1


async def test_a_cancel_graph_refused_for_good_is_repaired_by_an_ensure_telling_people_once(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    data = confirmed(application=None)
    h = handlers(deps)
    await deliver(deps.sessions, h.booking_confirmed, envelope(data, ORG))
    await work(deps)
    await graph.post("/_sandbox/faults", json={"status": 503, "path": "/cancel"})
    cancel = BookingCancelled(
        booking_id=data.booking_id,
        request_id=data.request_id,
        cancelled_by="coordinator",
        revision=2,
    )
    await deliver(deps.sessions, h.booking_cancelled, envelope(cancel, ORG))
    for _ in range(deps.limits.graph_attempts + 1):
        await work(deps, rounds=1)
        await make_due(deps.sessions)
    await work(deps)
    failed = [d for _, d in await published(deps.sessions, "integrations.calendar_event.failed")]
    assert (failed[-1]["operation"], failed[-1]["final"]) == ("cancel", True)
    state = await graph_state(graph)
    (event,) = organizer_events(state)
    assert event["isCancelled"] is False  # the interviewers still hold the invitation
    assert len(cancellations(state, "ada@candidates.test")) == 1  # told without waiting

    await graph.post("/_sandbox/faults", json={"clear": True})
    ensure = EnsureCalendarEvent(
        idempotency_key=f"repair:{uuid.uuid4()}",
        request_id=data.request_id,
        booking_id=data.booking_id,
        revision=2,
        booking_status="cancelled",
    )
    await deliver(deps.sessions, h.ensure_calendar_event, envelope(ensure, ORG))
    await work(deps)

    state = await graph_state(graph)
    (event,) = organizer_events(state)
    assert event["isCancelled"] is True
    assert len(cancellations(state, "ada@candidates.test")) == 1
    assert len(cancellations(state, "coordinator@example.com")) == 1
    [answer] = [d for _, d in await published(deps.sessions, "integrations.calendar_event.cancel")]
    assert answer["graph_event_id"] == event["id"]


async def test_graph_down_fails_the_calendar_job_and_flags_the_request(
    deps: Deps, graph: httpx.AsyncClient, icims: httpx.AsyncClient
) -> None:
    await graph.post("/_sandbox/faults", json={"status": 503})
    data = confirmed(application=None)
    await deliver(deps.sessions, handlers(deps).booking_confirmed, envelope(data, ORG))
    for _ in range(6):
        await work(deps, rounds=1)
        await make_due(deps.sessions)
    job = next(j for j in await job_rows(deps.sessions) if j.kind == "calendar.sync")
    assert job.status == "failed" and job.attempts == deps.limits.graph_attempts
    failed = [d for _, d in await published(deps.sessions, "integrations.calendar_event.failed")]
    assert failed[-1]["final"] is True and failed[-1]["operation"] == "create"
    flags = [d["reason"] for _, d in await published(deps.sessions, "integrations.attention")]
    assert "Calendar event creation failed" in flags


async def test_request_created_mails_the_booking_link(deps: Deps, graph: httpx.AsyncClient) -> None:
    data = confirmed()
    created = RequestCreated(
        request_id=data.request_id,
        title=data.title,
        candidate=data.candidate,
        mode="panel",
        interviewers=data.interviewers,
        duration_minutes=45,
        window_start=data.slot.start.date(),
        window_end=data.slot.end.date(),
        booking_url="http://localhost:8000/book/tok_abc123",
    )
    env = envelope(created, ORG)
    await deliver(deps.sessions, handlers(deps).request_created, env)
    await deliver(deps.sessions, handlers(deps).request_created, env)  # redelivered: one mail
    await work(deps)
    (mail,) = inbox(await graph_state(graph), "ada@candidates.test")
    assert "Choose a time" in mail["subject"] and "/book/tok_abc123" in body_text(mail)


async def test_a_burst_of_fifty_bookings_never_exceeds_four_requests_per_mailbox(
    deps: Deps, graph: httpx.AsyncClient
) -> None:
    await graph.post("/_sandbox/faults", json={"latencyMs": 30})
    h = handlers(deps)
    for _ in range(50):
        await deliver(
            deps.sessions, h.booking_confirmed, envelope(confirmed(application=None), ORG)
        )
    await work(deps, rounds=10)
    state = await graph_state(graph)
    assert len(organizer_events(state)) == 50
    assert state["maxConcurrent"][ORGANIZER] <= 4
    assert not state["throttled"].get(ORGANIZER)
