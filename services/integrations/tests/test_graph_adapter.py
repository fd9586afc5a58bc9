"""GraphAdapter: real msgraph-sdk against the sandbox's fake Graph on a real port, and the
mailbox limiter on real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from integrations_service.graph.adapter import (
    Attachment,
    EventSpec,
    GraphAdapter,
    MailSpec,
    teams_part,
)
from integrations_service.graph.client import build_graph_client
from integrations_service.graph.errors import GraphError
from integrations_service.graph.limiter import MailboxLimiter
from scheduler_sandbox.graph import create_app
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine
from sqlalchemy.ext.asyncio import AsyncEngine

ORGANIZER = "scheduling@example.com"
AVERY = "avery.chen@example.com"
START = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with serve_in_thread(create_app()) as base:
        yield base


@pytest.fixture
async def sandbox(fake: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake, timeout=10) as control:
        await control.post("/_sandbox/reset")
        yield control
        await control.post("/_sandbox/faults", json={"clear": True})
        await control.post("/_sandbox/config", json={"token": None})


@pytest.fixture
async def engine(integrations_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(integrations_db, pool_size=5, application_name="graph-tests")
    yield engine
    await engine.dispose()


def make_adapter(
    base: str, engine: AsyncEngine, *, timeout: float = 10.0, retries: int = 3, **kw: Any
) -> GraphAdapter:
    client = build_graph_client(
        base_url=base, static_token="sandbox", timeout_seconds=timeout, max_retries=retries
    )
    return GraphAdapter(client, MailboxLimiter(engine), **kw)


@pytest.fixture
async def graph(fake: str, engine: AsyncEngine, sandbox: httpx.AsyncClient):
    adapter = make_adapter(fake, engine)
    yield adapter
    await adapter.aclose()


def spec(subject: str = "Interview — Jo", start: datetime = START) -> EventSpec:
    return EventSpec(
        subject=subject,
        body_html="<p>Interview with Jo</p>",
        start=start,
        end=start + timedelta(hours=1),
        attendees=[(AVERY, "Avery Chen"), ("jo@candidate.test", None)],
    )


async def events(sandbox: httpx.AsyncClient, mailbox: str = ORGANIZER) -> list[dict[str, Any]]:
    return (await sandbox.get("/_sandbox/state")).json()["events"].get(mailbox, [])


async def test_create_update_and_cancel_keep_the_teams_link(graph, sandbox):
    created = await graph.create_event(ORGANIZER, spec(), "booking-1")
    assert created.join_url and created.ical_uid and created.web_link
    assert created.start == START and not created.is_cancelled
    assert created.join_url in (created.body_html or "")
    stored = (await events(sandbox))[0]
    assert stored["transactionId"] == "booking-1" and stored["isOnlineMeeting"]
    assert stored["onlineMeetingProvider"] == "teamsForBusiness"
    assert stored["start"] == {"dateTime": "2030-01-07T10:00:00.0000000", "timeZone": "UTC"}

    later = START + timedelta(days=1)
    moved = EventSpec(
        subject="Moved interview",
        body_html="<p>Now on Tuesday</p>",
        start=later,
        end=later + timedelta(hours=1),
        attendees=[(AVERY, "Avery Chen")],
    )
    updated = await graph.update_event(ORGANIZER, created.id, moved)
    assert updated.start == later and updated.join_url == created.join_url
    body = (await events(sandbox))[0]["body"]["content"]
    assert "Now on Tuesday" in body and created.join_url in body
    assert "Interview with Jo" not in body

    assert await graph.cancel_event(ORGANIZER, created.id, "Position filled") is True
    again = await graph.get_event(ORGANIZER, created.id)
    assert again is not None and again.is_cancelled
    assert (await events(sandbox))[0]["_sandbox"]["cancellationComment"] == "Position filled"
    assert await graph.cancel_event(ORGANIZER, "AAMkAGgone=", "x") is False
    assert await graph.get_event(ORGANIZER, "AAMkAGgone=") is None


def test_teams_part_is_cut_at_the_separator_before_the_join_link():
    url = "https://teams.example/l/meetup-join/1?a=1&b=2"
    body = (
        "<html><body><p>Hi</p><div><span>________________________________</span></div>"
        f"<div><a href='{url.replace('&', '&amp;')}'>Join</a></div></body></html>"
    )
    assert teams_part(body, url) == (
        "<div><span>________________________________</span></div>"
        f"<div><a href='{url.replace('&', '&amp;')}'>Join</a></div>"
    )
    assert teams_part("<p>no meeting here</p>", url) is None


async def test_a_create_retried_after_a_client_timeout_makes_one_event(fake, engine, sandbox):
    impatient = make_adapter(fake, engine, timeout=0.5)
    try:
        # The fake stores the event, then answers too late: the response is lost.
        await sandbox.post(
            "/_sandbox/faults",
            json={"latencyMs": 1500, "count": 1, "phase": "response", "key": ORGANIZER},
        )
        with pytest.raises(GraphError) as caught:
            await impatient.create_event(ORGANIZER, spec(), "booking-2")
        assert caught.value.code == "timeout" and caught.value.retryable
        retried = await impatient.create_event(ORGANIZER, spec(), "booking-2")
    finally:
        await impatient.aclose()
    assert [e["id"] for e in await events(sandbox)] == [retried.id]


async def test_a_429_with_retry_after_is_waited_out(graph, sandbox):
    await sandbox.post(
        "/_sandbox/faults", json={"status": 429, "retryAfter": "1", "count": 1, "key": ORGANIZER}
    )
    began = time.monotonic()
    created = await graph.create_event(ORGANIZER, spec(), "booking-3")
    assert time.monotonic() - began >= 1.0
    log = (await sandbox.get("/_sandbox/state")).json()["requests"]
    assert [r["status"] for r in log if r["mailbox"] == ORGANIZER] == [429, 201]
    assert [e["id"] for e in await events(sandbox)] == [created.id]


async def test_errors_become_graph_errors(fake, engine, sandbox):
    once = make_adapter(fake, engine, retries=0)
    try:
        await sandbox.post("/_sandbox/faults", json={"status": 503, "count": 1})
        with pytest.raises(GraphError) as unavailable:
            await once.get_event(ORGANIZER, "AAMkAGx=")
        assert (unavailable.value.status, unavailable.value.code) == (503, "ServiceUnavailable")
        assert unavailable.value.retryable
        await sandbox.post("/_sandbox/config", json={"token": "another"})
        with pytest.raises(GraphError) as refused:
            await once.get_event(ORGANIZER, "AAMkAGx=")
        assert refused.value.status == 401 and not refused.value.retryable
        assert refused.value.code == "InvalidAuthenticationToken"
    finally:
        await once.aclose()
    nowhere = make_adapter("http://127.0.0.1:9", engine, retries=0)
    try:
        with pytest.raises(GraphError) as unreachable:
            await nowhere.search_users("a")
        assert unreachable.value.code == "unreachable" and unreachable.value.retryable
    finally:
        await nowhere.aclose()


async def test_a_burst_through_two_replicas_never_exceeds_four_per_mailbox(
    fake, integrations_db, sandbox
):
    engines = [create_engine(integrations_db, pool_size=5) for _ in range(2)]
    replicas = [make_adapter(fake, e) for e in engines]
    try:
        await sandbox.post("/_sandbox/faults", json={"latencyMs": 60, "key": ORGANIZER})
        await asyncio.gather(
            *(
                replicas[n % 2].create_event(ORGANIZER, spec(f"Interview {n}"), f"burst-{n}")
                for n in range(50)
            )
        )
    finally:
        for adapter in replicas:
            await adapter.aclose()
        for engine in engines:
            await engine.dispose()
    state = (await sandbox.get("/_sandbox/state")).json()
    assert state["maxConcurrent"][ORGANIZER] == 4
    assert state["throttled"].get(ORGANIZER, 0) == 0
    assert len(state["events"][ORGANIZER]) == 50


async def test_get_schedule_chunks_45_mailboxes_over_60_days_and_merges(graph, sandbox):
    people = [f"person{n:02d}@example.com" for n in range(45)]
    await sandbox.post("/_sandbox/users", json={"users": [{"mail": m} for m in people]})
    start = datetime(2030, 3, 1, tzinfo=UTC)
    blocks = [
        {
            "mailbox": m,
            "start": (start + timedelta(days=n, hours=9)).isoformat(),
            "end": (start + timedelta(days=n, hours=10)).isoformat(),
            "showAs": "tentative" if n % 2 else "busy",
        }
        for n, m in enumerate(people)
    ]
    # Spans the boundary between the first and second window (41 days in).
    boundary = start + timedelta(days=41)
    blocks.append(
        {
            "mailbox": people[0],
            "start": (boundary - timedelta(hours=1)).isoformat(),
            "end": (boundary + timedelta(hours=1)).isoformat(),
            "showAs": "oof",
        }
    )
    await sandbox.post("/_sandbox/busy", json={"blocks": blocks})
    asked = [m.upper() for m in people] + ["ghost@elsewhere.example.org"]
    result = await graph.get_schedule(
        asked, start, start + timedelta(days=60), organizer_mailbox=ORGANIZER
    )
    assert result.errors == {"ghost@elsewhere.example.org": "ErrorMailboxNotFound"}
    assert sorted(result.busy) == people
    for n, m in enumerate(people[1:], start=1):
        [only] = result.busy[m]
        assert only.start == start + timedelta(days=n, hours=9)
        assert only.status == ("tentative" if n % 2 else "busy")
    assert [(b.start, b.status) for b in result.busy[people[0]]] == [
        (start + timedelta(hours=9), "busy"),
        (boundary - timedelta(hours=1), "oof"),  # once, though both windows returned it
    ]
    calls = [
        r
        for r in (await sandbox.get("/_sandbox/state")).json()["requests"]
        if r["path"].endswith("getSchedule")
    ]
    assert len(calls) == 6  # 3 groups of up to 20 mailboxes, 2 windows each
    assert {r["status"] for r in calls} == {200} and {r["mailbox"] for r in calls} == {ORGANIZER}
    again = await graph.get_schedule(
        asked, start, start + timedelta(days=60), organizer_mailbox=ORGANIZER
    )
    assert again == result
    state = (await sandbox.get("/_sandbox/state")).json()
    assert sum(r["path"].endswith("getSchedule") for r in state["requests"]) == 6  # cached


async def test_send_mail_with_an_ics_attachment_reaches_the_inbox(graph, sandbox):
    ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    await graph.send_mail(
        ORGANIZER,
        MailSpec(
            to=[("jo@candidate.test", "Jo")],
            cc=[(AVERY, None)],
            subject="Your interview",
            body_html="<p>See you <a href='http://book.test/x'>then</a></p>",
            attachments=[Attachment("interview.ics", "text/calendar; charset=utf-8", ics)],
        ),
    )
    mail = (await sandbox.get("/_sandbox/state")).json()["mail"]
    [got] = mail["jo@candidate.test"]["inbox"]
    assert got["subject"] == "Your interview"
    assert "book.test/x" in got["body"]["content"]
    [attached] = got["attachments"]
    assert attached["name"] == "interview.ics"
    assert base64.b64decode(attached["contentBytes"]) == ics
    assert mail[AVERY]["inbox"][0]["id"] == got["id"]
    assert mail[ORGANIZER]["sent"][0]["id"] == got["id"]


async def test_search_users_finds_seeded_people(graph, sandbox):
    await sandbox.post(
        "/_sandbox/users", json={"mail": "kim.oneil@example.com", "displayName": "Kim O'Neil"}
    )
    [avery] = await graph.search_users("Aver")
    assert (avery.display_name, avery.mail) == ("Avery Chen", AVERY)
    assert avery.job_title and avery.id
    assert [u.display_name for u in await graph.search_users("kim o'n")] == ["Kim O'Neil"]
    assert [u.mail for u in await graph.search_users("suzuki")] == ["hana.suzuki@example.com"]
    assert len(await graph.search_users("", limit=3)) == 3
    assert await graph.search_users("zzz-nobody") == []
