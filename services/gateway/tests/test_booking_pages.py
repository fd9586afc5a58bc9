"""`/book/{token}`: the candidate's page, through the gateway, against the real scheduling
service (in process), the real integrations API and the fake Graph (both on ports, as
scheduling reaches them over HTTP). What a candidate sees: times in their zone, a hold to
confirm, a booking to reschedule or cancel, and a readable page with the right status for
every refusal."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from gateway_service.settings import Settings
from gateway_service.web import booking_forms
from pydantic import SecretStr
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.server import serve_in_thread
from servicekit.testing.helpers import user_headers
from servicekit.testing.plugin import MakeDatabase
from sqlalchemy import text

from .conftest import GatewayFactory, gateway_settings

BASE = "http://gw.example"
ORGANIZER = "scheduling@example.com"
BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


# -- the world: fake Graph and integrations on ports, scheduling in process ------------------


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="module")
async def integrations_url(make_database: MakeDatabase, graph_url: str) -> AsyncIterator[str]:
    from integrations_service.app import create_app as create_integrations
    from integrations_service.settings import Settings as IntegrationsSettings

    db = await make_database("book_integrations", "integrations_service:migrations")
    settings = IntegrationsSettings(
        env="test",
        database_url=db,
        graph_base_url=graph_url,
        graph_static_token=SecretStr("sandbox-token"),
        graph_organizer_mailbox=ORGANIZER,
        graph_max_retries=0,  # a faulted Graph answers at once
    )
    with serve_in_thread(create_integrations(settings), lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
async def scheduling(make_database: MakeDatabase, integrations_url: str) -> AsyncIterator[FastAPI]:
    from scheduling_service.app import create_app as create_scheduling
    from scheduling_service.settings import Settings as SchedulingSettings

    url = await make_database("book_scheduling", "scheduling_service:migrations")
    app = create_scheduling(
        SchedulingSettings(
            env="test", database_url=url, integrations_url=integrations_url, public_base_url=BASE
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def api(scheduling: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Scheduling's own API, for what a coordinator does (create, cancel) and for checks."""
    transport = httpx.ASGITransport(app=scheduling)
    async with httpx.AsyncClient(transport=transport, base_url="http://scheduling") as c:
        yield c


@pytest.fixture
async def pages(gateway: GatewayFactory, scheduling: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(scheduling=scheduling) as client:
        yield client


@pytest.fixture
def settings(gateway_db: str, oidc_issuer: str) -> Settings:
    """The gateway's settings as the pages use them (its session secret signs the forms)."""
    return gateway_settings(gateway_db, oidc_issuer, BASE)


@dataclass
class Interview:
    token: str
    id: str
    company: str
    org_id: uuid.UUID
    admin: dict[str, str]

    @property
    def url(self) -> str:
        return f"/book/{self.token}"


async def open_interview(
    api: httpx.AsyncClient,
    seed: Any,
    *,
    like: Interview | None = None,
    interviewers: list[dict[str, str]] | None = None,
    **overrides: Any,
) -> Interview:
    """A request in a gateway org (named "Org <email>"), interviewers free around the clock."""
    if like is None:
        member = await seed(new_org=True)
        org_id, company = member.org_id, f"Org {member.email}"
        admin = user_headers(org_id=org_id, role="admin", email=member.email)
        r = await api.put(
            "/api/scheduling/settings",
            headers=admin,
            json={"timeZone": "UTC", "workingHours": ALL_DAY},
        )
        assert r.status_code == 200, r.text
    else:
        org_id, company, admin = like.org_id, like.company, like.admin
    today = datetime.now(UTC).date()
    tag = uuid.uuid4().hex[:6]
    body: dict[str, Any] = {
        "candidate": {
            "name": "Ada Lovelace",
            "email": "ada@candidates.example.com",
            "timeZone": "Europe/Berlin",
        },
        "title": "Backend engineer interview",
        "interviewers": interviewers
        or [
            {"email": f"grace-{tag}@example.com", "name": "Grace Hopper"},
            {"email": f"alan-{tag}@example.com", "name": "Alan Turing"},
        ],
        "durationMinutes": 60,
        "windowStart": today.isoformat(),
        "windowEnd": (today + timedelta(days=13)).isoformat(),
        "minimumNoticeMinutes": 60,
        "cancelCutoffMinutes": 0,
    }
    body.update(overrides)
    r = await api.post("/api/scheduling/requests", headers=admin, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["bookingUrl"].rsplit("/", 1)[-1]
    return Interview(token, created["id"], company, org_id, admin)


# -- reading pages as a browser would ---------------------------------------------------------


def seen(r: httpx.Response) -> str:
    assert "text/html" in r.headers["content-type"], r.text
    assert "Traceback" not in r.text
    return unescape(r.text)


def plain(html: str) -> str:
    """The page's text, as read: no tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def assert_private(r: httpx.Response) -> None:
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in r.headers["x-robots-tag"]


def starts(html: str) -> list[str]:
    return [unescape(v) for v in re.findall(r'name="start" value="([^"]+)"', html)]


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name}"
    return unescape(found.group(1))


def local(value: str, tz: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(value).astimezone(tz)


def spoken(value: str, minutes: int = 60, tz: ZoneInfo = BERLIN) -> str:
    s = local(value, tz)
    e = s + timedelta(minutes=minutes)
    return f"{s:%a} {s.day} {s:%b}, {s:%H:%M}\u2013{e:%H:%M}"


async def choose(client: httpx.AsyncClient, token: str, page: str, start: str) -> httpx.Response:
    """Press a time's button on a page that lists times (posts the form that holds it)."""
    form = {"form_token": field(page, "form_token"), "tz": field(page, "tz"), "start": start}
    return await client.post(f"/book/{token}/hold", data=form)


async def confirm(client: httpx.AsyncClient, token: str, page: str) -> httpx.Response:
    form = {k: field(page, k) for k in ("form_token", "tz", "start", "hold_id")}
    return await client.post(f"/book/{token}/confirm", data=form)


async def book(client: httpx.AsyncClient, interview: Interview, index: int = 0) -> str:
    """The whole booking path; returns the start that was booked."""
    page = seen(await client.get(interview.url))
    start = starts(page)[index]
    held = await choose(client, interview.token, page, start)
    assert held.status_code == 200, held.text
    done = await confirm(client, interview.token, seen(held))
    assert done.status_code == 303, done.text
    return start


async def scheduling_sql(app: FastAPI, sql: str, **params: Any) -> list[Any]:
    async with app.state.sessions() as s, s.begin():
        result = await s.execute(text(sql), params)
        return list(result.all()) if result.returns_rows else []


# -- viewing -----------------------------------------------------------------------------------


async def test_candidate_sees_the_interview_and_a_week_of_times_by_day_in_their_zone(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any
) -> None:
    interview = await open_interview(api, seed)
    r = await pages.get(interview.url)
    assert r.status_code == 200
    assert_private(r)
    page = seen(r)
    assert f"Interview with {interview.company}" in page
    assert "Backend engineer interview" in page and "1 hour" in page
    assert "Grace and Alan" in page and "hopper" not in page.lower()  # first names only
    assert "grace-" not in page and "alan-" not in page  # no interviewer addresses
    assert '<option value="Europe/Berlin" selected>' in page

    offered = starts(page)
    assert offered, "around-the-clock interviewers have time this week"
    week = date.fromisoformat(field(page, "week"))
    assert week == datetime.now(BERLIN).date()  # from today, in the candidate's zone
    first_day = local(offered[0]).date()
    assert all(week <= local(s).date() < week + timedelta(days=7) for s in offered)
    for value in offered:  # each time in Berlin's offset, under its own day's heading
        assert local(value).utcoffset() == datetime.fromisoformat(value).utcoffset()
    for block in page.split('<h3 id="day-')[1:]:
        day = date.fromisoformat(block[:10])
        assert {local(s).date() for s in starts(block)} == {day}
    assert f"{first_day:%A} {first_day.day} {first_day:%B}" in page

    later = re.search(r'href="([^"]+)" rel="next"', r.text)
    assert later, "a two-week window has a next week"
    nxt = seen(await pages.get(unescape(later.group(1))))
    assert 'rel="prev"' in nxt
    assert field(nxt, "week") == (week + timedelta(days=7)).isoformat()
    assert all(local(s).date() >= week + timedelta(days=7) for s in starts(nxt))


async def test_changing_the_zone_shows_the_times_there(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any
) -> None:
    interview = await open_interview(api, seed)
    r = await pages.get(interview.url, params={"tz": "America/New_York"})
    page = seen(r)
    assert r.status_code == 200
    assert '<option value="America/New_York" selected>' in page
    new_york = ZoneInfo("America/New_York")
    offered = starts(page)
    assert offered
    assert all(
        datetime.fromisoformat(s).utcoffset() == local(s, new_york).utcoffset() for s in offered
    )
    assert field(page, "tz") == "America/New_York"  # carried into the hold

    bad = await pages.get(interview.url, params={"tz": "Mars/Olympus"})
    assert bad.status_code == 400 and "time zone is not known" in seen(bad)


# -- booking -----------------------------------------------------------------------------------


async def test_choose_hold_confirm_and_see_the_booking(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any, scheduling: FastAPI
) -> None:
    interview = await open_interview(api, seed)
    page = seen(await pages.get(interview.url))
    start = starts(page)[1]
    held = await choose(pages, interview.token, page, start)
    assert held.status_code == 200
    assert_private(held)
    review = seen(held)
    assert f"You are about to book {spoken(start)} (Europe/Berlin)" in plain(review)
    assert "the hold expires in 5 min" in review
    assert "Confirm booking" in review and "Choose another time" in review

    done = await confirm(pages, interview.token, review)
    assert done.status_code == 303
    assert_private(done)
    assert done.headers["location"] == (
        f"{interview.url}?{urlencode({'tz': 'Europe/Berlin', 'done': 'booked'})}"
    )
    booked = seen(await pages.get(done.headers["location"]))
    assert "You are booked" in booked and "Your interview is booked" in booked
    when = local(start)
    assert f"{when:%A} {when.day} {when:%B}" in booked
    assert "invitation email will follow" in booked  # no Teams link yet
    assert "calendar file (.ics)" in booked
    assert f'href="{interview.url}/reschedule?tz=Europe%2FBerlin"' in booked
    assert f'href="{interview.url}/cancel?tz=Europe%2FBerlin"' in booked

    stored = (
        await api.get(f"/api/scheduling/requests/{interview.id}", headers=interview.admin)
    ).json()
    assert stored["status"] == "booked"
    assert datetime.fromisoformat(stored["booking"]["start"]) == datetime.fromisoformat(start)

    # Once integrations has made the Teams meeting, the page links it.
    await scheduling_sql(
        scheduling,
        "UPDATE bookings SET teams_join_url = 'https://teams.example/l/meetup-join/abc' "
        "WHERE request_id = :r",
        r=uuid.UUID(interview.id),
    )
    later = seen(await pages.get(interview.url))
    assert 'href="https://teams.example/l/meetup-join/abc"' in later
    assert "Join on Microsoft Teams" in later


async def test_time_taken_between_choosing_and_confirming_gets_409_with_fresh_times(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any, scheduling: FastAPI
) -> None:
    shared = {"email": f"shared-{uuid.uuid4().hex[:6]}@example.com", "name": "Barbara Liskov"}
    first = await open_interview(api, seed, interviewers=[shared])
    second = await open_interview(api, seed, like=first, interviewers=[shared])

    page = seen(await pages.get(first.url))
    start = starts(page)[0]
    review = seen(await choose(pages, first.token, page, start))
    # The hold runs out while the first candidate hesitates, and the second one books the time.
    await scheduling_sql(
        scheduling,
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE hold_id = :h",
        h=uuid.UUID(field(review, "hold_id")),
    )
    other = seen(await pages.get(second.url))
    assert start in starts(other)
    other_review = seen(await choose(pages, second.token, other, start))
    assert (await confirm(pages, second.token, other_review)).status_code == 303

    r = await confirm(pages, first.token, review)
    assert r.status_code == 409
    assert_private(r)
    taken = seen(r)
    assert "That time was just taken" in taken
    fresh = starts(taken)
    assert fresh and datetime.fromisoformat(start) not in {datetime.fromisoformat(s) for s in fresh}
    assert all(local(s).utcoffset() == datetime.fromisoformat(s).utcoffset() for s in fresh)
    assert f'action="{first.url}/hold"' in taken

    # Picking one of the fresh times books it.
    held = await choose(pages, first.token, taken, fresh[0])
    assert held.status_code == 200
    assert (await confirm(pages, first.token, seen(held))).status_code == 303
    assert "Your interview is booked" in seen(await pages.get(first.url))


# -- changing a booking ------------------------------------------------------------------------


async def test_reschedule_round_trip_with_a_reason(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any, scheduling: FastAPI
) -> None:
    interview = await open_interview(api, seed)
    old = await book(pages, interview)

    r = await pages.get(f"{interview.url}/reschedule", params={"tz": "Europe/Berlin"})
    assert r.status_code == 200
    picker = seen(r)
    assert "Choose a new time" in picker and "Your current time" in picker
    assert f'action="{interview.url}/reschedule/confirm"' in picker
    offered = [datetime.fromisoformat(s) for s in starts(picker)]
    assert datetime.fromisoformat(old) not in offered  # the booked time is not offered again
    new = starts(picker)[3]

    # The picker is a GET form: the review page, nothing changed yet.
    review_r = await pages.get(
        f"{interview.url}/reschedule/confirm", params={"tz": "Europe/Berlin", "start": new}
    )
    assert review_r.status_code == 200
    assert_private(review_r)
    review = seen(review_r)
    assert spoken(new) in review and spoken(old) in review
    assert '<textarea id="reason" name="reason"' in review
    form = {k: field(review, k) for k in ("form_token", "tz", "start")}
    done = await pages.post(
        f"{interview.url}/reschedule", data={**form, "reason": "A clash with an exam"}
    )
    assert done.status_code == 303 and "done=rescheduled" in done.headers["location"]
    moved = seen(await pages.get(done.headers["location"]))
    assert "Your interview has been moved" in moved
    assert local(new).strftime("%H:%M") in moved

    stored = (
        await api.get(f"/api/scheduling/requests/{interview.id}", headers=interview.admin)
    ).json()
    assert datetime.fromisoformat(stored["booking"]["start"]) == datetime.fromisoformat(new)
    assert stored["booking"]["revision"] == 2
    rows = await scheduling_sql(
        scheduling,
        "SELECT body->'data'->>'reason' FROM outbox WHERE body->>'subject' = :r "
        "AND type = 'scheduling.booking.rescheduled.v1'",
        r=interview.id,
    )
    assert [reason for (reason,) in rows] == ["A clash with an exam"]


async def test_cancel_round_trip_returns_to_choosing(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any
) -> None:
    interview = await open_interview(api, seed)
    await book(pages, interview)
    r = await pages.get(f"{interview.url}/cancel", params={"tz": "Europe/Berlin"})
    assert r.status_code == 200
    page = seen(r)
    assert "Cancel your interview?" in page and "Keep my interview" in page
    form = {k: field(page, k) for k in ("form_token", "tz")}
    done = await pages.post(
        f"{interview.url}/cancel", data={**form, "reason": "I accepted another offer"}
    )
    assert done.status_code == 303 and "done=cancelled" in done.headers["location"]
    after = seen(await pages.get(done.headers["location"]))
    assert "Your interview is cancelled" in after and "Choose a time" in after
    assert starts(after)

    stored = (
        await api.get(f"/api/scheduling/requests/{interview.id}", headers=interview.admin)
    ).json()
    assert stored["status"] == "open" and stored["booking"]["status"] == "cancelled"
    assert stored["booking"]["cancelReason"] == "I accepted another offer"


async def test_inside_the_cutoff_changes_are_refused_with_an_explanation(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any, settings: Settings
) -> None:
    interview = await open_interview(api, seed, cancelCutoffMinutes=10080)
    await book(pages, interview)
    booked = seen(await pages.get(interview.url))
    assert "Changes online closed at" in booked and "contact the coordinator" in booked
    assert f"{interview.url}/cancel" not in booked
    assert f"{interview.url}/reschedule" not in booked

    r = await pages.get(f"{interview.url}/cancel")
    assert r.status_code == 409 and "too close to the interview" in seen(r)
    # A form from before the cutoff is refused by scheduling, and said so.
    token = booking_forms.issue(settings, interview.token)
    for action, data in [
        ("cancel", {"form_token": token}),
        ("reschedule", {"form_token": token, "start": datetime.now(UTC).isoformat()}),
    ]:
        refused = await pages.post(f"{interview.url}/{action}", data=data)
        assert refused.status_code == 409, action
        assert_private(refused)
        text_ = seen(refused)
        assert "too close to the interview" in text_ and "contact the coordinator" in text_


async def test_after_the_last_reschedule_only_cancel_is_offered(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any, settings: Settings
) -> None:
    interview = await open_interview(api, seed, maxReschedules=0)
    await book(pages, interview)
    booked = seen(await pages.get(interview.url))
    assert "used the reschedules allowed online" in booked
    assert f"{interview.url}/cancel" in booked and f"{interview.url}/reschedule" not in booked
    r = await pages.get(f"{interview.url}/reschedule")
    assert r.status_code == 409 and "You cannot reschedule again online" in seen(r)
    token = booking_forms.issue(settings, interview.token)
    start = datetime.now(UTC) + timedelta(days=2)
    refused = await pages.post(
        f"{interview.url}/reschedule", data={"form_token": token, "start": start.isoformat()}
    )
    assert refused.status_code == 409 and "rescheduled as often as allowed" in seen(refused)


# -- links that do not work --------------------------------------------------------------------


async def test_unknown_expired_and_cancelled_links_get_clear_pages(
    pages: httpx.AsyncClient,
    api: httpx.AsyncClient,
    seed: Any,
    scheduling: FastAPI,
    settings: Settings,
) -> None:
    for path in ("A" * 43, "short", "bad.token!", f"{'A' * 43}/elsewhere", f"{'A' * 43}/hold"):
        r = await pages.get(f"/book/{path}")
        assert r.status_code == 404, path
        assert_private(r)
        assert "This link does not work" in seen(r)

    cancelled = await open_interview(api, seed)
    r = await api.post(
        f"/api/scheduling/requests/{cancelled.id}/cancel",
        headers=cancelled.admin,
        json={"reason": "role closed"},
    )
    assert r.status_code == 200, r.text
    gone = await pages.get(cancelled.url)
    assert gone.status_code == 410 and "This interview was cancelled" in seen(gone)
    assert_private(gone)

    expired = await open_interview(api, seed)
    await scheduling_sql(
        scheduling,
        "UPDATE scheduling_requests SET status = 'expired' WHERE id = :r",
        r=uuid.UUID(expired.id),
    )
    late = await pages.get(expired.url)
    assert late.status_code == 410 and "This booking link has expired" in seen(late)
    token = booking_forms.issue(settings, expired.token)
    start = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    held = await pages.post(f"{expired.url}/hold", data={"form_token": token, "start": start})
    assert held.status_code == 410


async def test_calendars_unavailable_is_a_503_page_to_retry(
    pages: httpx.AsyncClient, api: httpx.AsyncClient, seed: Any, graph_url: str
) -> None:
    interview = await open_interview(api, seed)  # new interviewers: nothing cached
    async with httpx.AsyncClient(base_url=graph_url) as graph:
        await graph.post("/_sandbox/faults", json={"status": 503, "path": "getSchedule"})
        try:
            r = await pages.get(interview.url)
        finally:
            await graph.post("/_sandbox/faults", json={"clear": True})
    assert r.status_code == 503
    assert_private(r)
    page = seen(r)
    assert "cannot see the interviewers' calendars" in page and "try again in a minute" in page
    assert r.headers["retry-after"] == "60"
    assert (await pages.get(interview.url)).status_code == 200


# -- form protection, rate limit ---------------------------------------------------------------


async def test_forms_without_or_with_a_bad_token_are_refused_and_change_nothing(
    pages: httpx.AsyncClient,
    api: httpx.AsyncClient,
    seed: Any,
    scheduling: FastAPI,
    settings: Settings,
) -> None:
    interview = await open_interview(api, seed)
    other = await open_interview(api, seed)
    page = seen(await pages.get(interview.url))
    start = starts(page)[0]
    valid = field(page, "form_token")
    expiry, mac = valid.split(".")
    for token, why in [
        (None, "could not confirm"),
        ("", "could not confirm"),
        ("garbage", "could not confirm"),
        (f"{int(expiry) + 3600}.{mac}", "could not confirm"),  # a longer life, same MAC
        (booking_forms.issue(settings, other.token), "could not confirm"),  # another link's
        (booking_forms.issue(settings, interview.token, now=time.time() - 7200), "too long"),
    ]:
        data = {"start": start, "tz": "Europe/Berlin"}
        if token is not None:
            data["form_token"] = token
        r = await pages.post(f"{interview.url}/hold", data=data)
        assert r.status_code == 403, token
        assert_private(r)
        assert why in seen(r)
    held = await scheduling_sql(
        scheduling,
        "SELECT count(*) FROM reservations WHERE request_id = :r",
        r=uuid.UUID(interview.id),
    )
    assert held == [(0,)]

    await book(pages, interview)
    refused = await pages.post(f"{interview.url}/cancel", data={"reason": "no token"})
    assert refused.status_code == 403
    json_body = await pages.post(f"{interview.url}/cancel", json={"form_token": valid})
    assert json_body.status_code == 400
    stored = (
        await api.get(f"/api/scheduling/requests/{interview.id}", headers=interview.admin)
    ).json()
    assert stored["status"] == "booked"


async def test_booking_pages_share_the_public_rate_limit(gateway: GatewayFactory) -> None:
    async with gateway(public_rate_burst=2, public_rate_per_minute=1) as client:
        answers = [await client.get("/book/nope") for _ in range(2)]
        assert [a.status_code for a in answers] == [404, 404]
        limited = await client.get("/book/nope")
        api = await client.get("/api/public/bookings/nope")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert_private(limited)
    assert "Too many requests" in seen(limited)
    assert api.status_code == 429  # one bucket for the pages and the API
