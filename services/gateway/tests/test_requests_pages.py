"""`/requests`, `/requests/new`, `/requests/{id}`: the coordinator's pages, driven through the
gateway against the real scheduling service (in process), the real integrations API on a port
and the fake Graph behind it (directory search, free/busy). Plain forms, no JavaScript."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from gateway_service.app import create_app
from gateway_service.web import requests_view
from pydantic import SecretStr
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import MakeDatabase
from sqlalchemy import text

from .conftest import Member, echo_service, gateway_settings

BASE = "http://gw.example"
ORGANIZER = "scheduling@example.com"
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="module")
async def integrations_url(make_database: MakeDatabase, graph_url: str) -> AsyncIterator[str]:
    """The real integrations API on a port: scheduling asks it for free/busy over HTTP."""
    from integrations_service.app import create_app as create_integrations
    from integrations_service.settings import Settings as IntegrationsSettings

    url = await make_database("gateway_requests_integrations", "integrations_service:migrations")
    settings = IntegrationsSettings(
        env="test",
        database_url=url,
        graph_base_url=graph_url,
        graph_static_token=SecretStr("sandbox-token"),
        graph_organizer_mailbox=ORGANIZER,
    )
    with serve_in_thread(create_integrations(settings), lifespan="on") as served:
        yield served


@pytest.fixture(scope="module")
async def scheduling_db(make_database: MakeDatabase) -> str:
    return await make_database("gateway_requests_scheduling", "scheduling_service:migrations")


@pytest.fixture(scope="module")
async def scheduling(scheduling_db: str, integrations_url: str) -> AsyncIterator[FastAPI]:
    from scheduling_service.app import create_app as create_scheduling
    from scheduling_service.settings import Settings as SchedulingSettings

    app = create_scheduling(
        SchedulingSettings(
            env="test",
            database_url=scheduling_db,
            integrations_url=integrations_url,
            public_base_url=BASE,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


Client = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(
    gateway_db: str, oidc_issuer: str, scheduling: FastAPI, integrations_url: str
) -> Client:
    @asynccontextmanager
    async def make() -> AsyncIterator[httpx.AsyncClient]:
        settings = gateway_settings(
            gateway_db, oidc_issuer, BASE, integrations_url=integrations_url
        )
        echo = httpx.ASGITransport(app=echo_service())
        transports: dict[str, httpx.AsyncBaseTransport] = {
            s: echo for s in settings.service_urls() if s != "integrations"
        }
        transports["scheduling"] = httpx.ASGITransport(app=scheduling)
        async with app_client(create_app(settings, transports=transports), base_url=BASE) as c:
            yield c

    return make


async def sql(scheduling_db: str, statement: str, **params: Any) -> None:
    engine = create_engine(scheduling_db)
    async with engine.begin() as conn:
        await conn.execute(text(statement), params)
    await engine.dispose()


def _as(client: httpx.AsyncClient, who: Member) -> None:
    client.cookies.clear()
    client.cookies.update(who.cookies)


def person(prefix: str) -> str:
    # @example.com: the fake Graph's tenant (the organizer's domain) has every such mailbox.
    return f"{prefix}-{uuid.uuid4().hex[:6]}@example.com"


def api_body(interviewers: list[str], **overrides: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    body: dict[str, Any] = {
        "candidate": {"name": "Ada Lovelace", "email": "ada@candidates.example", "timeZone": "UTC"},
        "title": "Technical interview",
        "interviewers": [{"email": e} for e in interviewers],
        "durationMinutes": 60,
        "windowStart": today.isoformat(),
        "windowEnd": (today + timedelta(days=6)).isoformat(),
        "minimumNoticeMinutes": 60,
    }
    body.update(overrides)
    return body


async def open_org(client: httpx.AsyncClient, seed: Any) -> Member:
    """A new org, its admin signed in, interviewers working around the clock."""
    admin: Member = await seed(new_org=True)
    _as(client, admin)
    r = await client.put(
        "/api/scheduling/settings",
        json={"timeZone": "UTC", "workingHours": ALL_DAY},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    return admin


async def create(client: httpx.AsyncClient, who: Member, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/scheduling/requests", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()


class _Inputs(HTMLParser):
    """The named inputs, selects and buttons of one form, as a browser sees them."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside = action, False
        self.fields: list[tuple[str, str]] = []
        self.options: dict[str, list[str]] = {}
        self.selected: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action", "").split("#")[0] == self.action
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self.options[a["name"]] = []
        elif tag == "option" and self._select:
            self.options[self._select].append(a.get("value", ""))
            if "selected" in a:
                self.selected[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None


def form_of(html: str, action: str) -> _Inputs:
    parser = _Inputs(action)
    parser.feed(html)
    return parser


def new_form(html: str, **values: str) -> list[tuple[str, str]]:
    """The create form as shown, with `values` typed in (selects as a browser submits them)."""
    parsed = form_of(html, "/requests/new")
    fields = [(k, v) for k, v in parsed.fields if k not in values]
    fields += [(k, v) for k, v in values.items()]
    for name, options in parsed.options.items():
        if name not in values and options:
            fields.append((name, parsed.selected.get(name, options[0])))
    return fields


async def post_form(
    client: httpx.AsyncClient, url: str, fields: list[tuple[str, str]]
) -> httpx.Response:
    """A form post with repeated fields (the chosen interviewers), as a browser sends it."""
    return await client.post(
        url,
        content=urlencode(fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def error_of(html: str, name: str) -> str:
    match = re.search(rf'id="{name}-error">([^<]*)<', html)
    return unescape(match.group(1)) if match else ""


# -- pages need a signed-in org member ------------------------------------------------------


@pytest.mark.parametrize("path", ["/requests", "/requests/new", f"/requests/{uuid.uuid4()}"])
async def test_anonymous_visitors_are_sent_to_sign_in(gateway: Client, path: str) -> None:
    async with gateway() as client:
        r = await client.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/login"


# -- create ---------------------------------------------------------------------------------


async def test_coordinator_picks_interviewers_previews_and_creates_a_request(
    gateway: Client, seed
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        home = await client.get("/")
        assert 'href="/requests"' in home.text
        page = await client.get("/requests/new")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert 'href="/requests"' in page.text  # the header's nav

        typed = {
            "candidate_name": "Grace Hopper",
            "candidate_email": "grace@candidates.example",
            "candidate_tz": "Asia/Tokyo",
            "title": "Compiler interview",
            "minimum_notice_minutes": "60",
            "window_start": datetime.now(UTC).date().isoformat(),
        }
        # Search the directory (the fake Graph's people); everything typed comes back.
        searched = await post_form(
            client, "/requests/new", new_form(page.text, **typed, q="avery", action="search")
        )
        assert searched.status_code == 200
        assert "Avery Chen (avery.chen@example.com)" in unescape(searched.text)
        assert 'value="Grace Hopper"' in searched.text
        add = re.search(r'name="add" value="([^"]+)"', searched.text)
        assert add is not None
        added = await post_form(
            client, "/requests/new", [*new_form(searched.text), ("add", unescape(add.group(1)))]
        )
        assert 'name="interviewer" value="Avery Chen &lt;avery.chen@example.com&gt;"' in (
            added.text
        )
        # Another by address, then one removed again.
        more = await post_form(
            client,
            "/requests/new",
            new_form(added.text, add_email="blake.okafor@example.com", action="add_email"),
        )
        assert "blake.okafor@example.com" in more.text
        fewer = await post_form(
            client, "/requests/new", [*new_form(more.text), ("remove", "blake.okafor@example.com")]
        )
        assert "blake.okafor@example.com" not in fewer.text
        assert "avery.chen@example.com" in fewer.text

        preview = await post_form(client, "/requests/new", new_form(fewer.text, action="preview"))
        assert preview.status_code == 200, preview.text
        html = unescape(preview.text)
        assert "Availability now" in html and "(Asia/Tokyo)" in html
        assert re.search(r"\d+ start times can be offered", html)
        assert "JST" in html  # the first times, in the candidate's zone
        listed = await client.get("/api/scheduling/requests", headers=admin.headers)
        assert listed.json()["items"] == []  # a preview creates nothing

        created = await post_form(client, "/requests/new", new_form(preview.text, action="create"))
        assert created.status_code == 303, created.text
        location = created.headers["location"]
        assert re.fullmatch(r"/requests/[0-9a-f-]{36}\?notice=created", location)
        detail = await client.get(location)
    html = unescape(detail.text)
    assert detail.status_code == 200
    assert "The booking link was emailed to grace@candidates.example." in html
    assert "Grace Hopper" in html and "Compiler interview" in html and "Asia/Tokyo" in html
    assert "avery.chen@example.com" in html
    assert re.search(r'id="booking-link" type="text" readonly value="http://gw.example/book/', html)
    assert "created the request" in html


async def test_refusals_are_shown_beside_their_fields_and_nothing_is_created(
    gateway: Client, seed
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        page = (await client.get("/requests/new")).text
        today = datetime.now(UTC).date()
        r = await post_form(
            client,
            "/requests/new",
            new_form(
                page,
                candidate_name="Ada",
                candidate_email="not-an-email",
                title="Interview",
                duration_minutes="abc",
                action="create",
            ),
        )
        assert r.status_code == 422
        assert "Nothing was created." in r.text
        assert error_of(r.text, "candidate_email") == "Enter the candidate's email address."
        assert error_of(r.text, "interviewers") == "Add at least one interviewer."
        assert "integer" in error_of(r.text, "duration_minutes")
        assert 'value="Ada"' in r.text  # what was typed stays

        backwards = await post_form(
            client,
            "/requests/new",
            [
                *new_form(
                    page,
                    candidate_name="Ada",
                    candidate_email="ada@candidates.example",
                    title="Interview",
                    window_start=(today + timedelta(days=5)).isoformat(),
                    window_end=(today + timedelta(days=2)).isoformat(),
                    action="create",
                ),
                ("interviewer", person("w")),
            ],
        )
        assert backwards.status_code == 422
        assert error_of(backwards.text, "window_end") == "The last day is before the first day."

        zone = await post_form(
            client,
            "/requests/new",
            new_form(
                page,
                candidate_tz="other",
                candidate_tz_other="Mars/Olympus",
                action="preview",
            ),
        )
        assert zone.status_code == 400
        assert "is not a time zone" in error_of(zone.text, "candidate_tz")
        listed = await client.get("/api/scheduling/requests", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_a_second_request_for_one_application_links_to_the_first(
    gateway: Client, seed
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        app = f"APP-{uuid.uuid4().hex[:8]}"
        first = await create(client, admin, api_body([person("d")], icimsApplicationId=app))
        page = (await client.get("/requests/new")).text
        r = await post_form(
            client,
            "/requests/new",
            [
                *new_form(
                    page,
                    candidate_name="Ada",
                    candidate_email="ada@candidates.example",
                    title="Again",
                    icims_application_id=app,
                    action="create",
                ),
                ("interviewer", person("d")),
            ],
        )
    assert r.status_code == 409
    assert "already has an open or booked request" in error_of(r.text, "icims_application_id")
    assert f'href="/requests/{first["id"]}"' in r.text


# -- list -----------------------------------------------------------------------------------


async def test_list_filters_show_status_booked_time_and_attention(
    gateway: Client, seed, scheduling_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        shared = person("list")
        ada = await create(client, admin, api_body([shared]))
        bob = await create(
            client,
            admin,
            api_body(
                [person("other")],
                candidate={
                    "name": "Bob Byte",
                    "email": "bob@candidates.example",
                    "timeZone": "UTC",
                },
                title="Design review",
            ),
        )
        cy = await create(
            client,
            admin,
            api_body(
                [shared],
                candidate={
                    "name": "Cy Young",
                    "email": "cy@candidates.example",
                    "timeZone": "America/New_York",
                },
            ),
        )
        token = cy["bookingUrl"].rsplit("/", 1)[-1]
        slots = (await client.get(f"/api/public/bookings/{token}/slots")).json()["slots"]
        booked = await client.post(
            f"/api/scheduling/requests/{cy['id']}/book",
            json={"start": slots[0]["start"]},
            headers=admin.headers,
        )
        assert booked.status_code == 200, booked.text
        await sql(
            scheduling_db,
            "UPDATE scheduling_requests SET needs_attention = true, "
            "attention_reason = 'iCIMS sync failed after 3 attempts', "
            'attention_reasons = \'[{"reason": "iCIMS sync failed after 3 attempts"}]\' '
            "WHERE id = :id",
            id=bob["id"],
        )

        everything = unescape((await client.get("/requests")).text)
        assert all(n in everything for n in ("Ada Lovelace", "Bob Byte", "Cy Young"))
        start = datetime.fromisoformat(slots[0]["start"])
        assert f"{start:%a %d %b %Y, %H:%M}" in everything  # Cy's interview, in Cy's zone
        assert "EST" in everything or "EDT" in everything
        assert everything.count("Needs attention</span>") == 1

        async def names(query: str) -> set[str]:
            r = await client.get(f"/requests?{query}")
            assert r.status_code == 200, r.text
            html = unescape(r.text)
            return {n for n in ("Ada Lovelace", "Bob Byte", "Cy Young") if n in html}

        assert await names("status=booked") == {"Cy Young"}
        assert await names("status=open&status=booked") == {"Ada Lovelace", "Bob Byte", "Cy Young"}
        assert await names("attention=yes") == {"Bob Byte"}
        assert await names("attention=no") == {"Ada Lovelace", "Cy Young"}
        assert await names(f"interviewer={shared}") == {"Ada Lovelace", "Cy Young"}
        assert await names("q=design") == {"Bob Byte"}
        day = start.date().isoformat()
        assert "Cy Young" in await names(f"from={day}&to={day}")
        # The filters stay in the form.
        kept = (await client.get("/requests?status=booked&q=cy")).text
        assert 'value="booked" checked' in kept and 'value="cy"' in kept

        bad = await client.get("/requests?from=31-12-2030")
        assert bad.status_code == 400
        assert "from must be a date" in bad.text
        assert 'id="f-from" name="from" type="date" value="31-12-2030" aria-invalid="true"' in (
            bad.text
        )

        monkeypatch.setattr(requests_view, "PAGE_SIZE", 2)
        first = await client.get("/requests?status=open&status=booked")
        link = re.search(r'<a href="(/requests\?[^"]+)" rel="next">Next page</a>', first.text)
        assert link is not None
        second = await client.get(unescape(link.group(1)))
    assert "status=open&amp;status=booked" in link.group(1)
    assert "Ada Lovelace" in unescape(second.text)
    assert "Ada Lovelace" not in unescape(first.text)
    assert 'rel="next"' not in second.text
    _ = ada


# -- detail and actions -----------------------------------------------------------------------


def options(html: str, action: str) -> list[str]:
    return form_of(html, action).options.get("start", [])


async def test_detail_shows_the_booking_and_every_action_round_trips(
    gateway: Client, seed, scheduling_db: str
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        made = await create(client, admin, api_body([person("act")], icimsApplicationId="A-1"))
        rid = made["id"]
        base = f"/requests/{rid}"
        page = await client.get(base)
        assert page.status_code == 200 and "Not booked yet." in page.text
        starts = options(page.text, f"{base}/book")
        assert len(starts) > 3

        resent = await client.post(f"{base}/resend-link", data={"csrf_token": admin.csrf})
        assert resent.status_code == 303 and resent.headers["location"] == f"{base}?notice=resent"
        page = await client.get(resent.headers["location"])
        assert "The booking link was emailed to ada@candidates.example again." in page.text

        booked = await client.post(
            f"{base}/book", data={"csrf_token": admin.csrf, "start": starts[1]}
        )
        assert booked.status_code == 303 and booked.headers["location"] == f"{base}?notice=booked"
        page = await client.get(booked.headers["location"])
        html = unescape(page.text)
        assert 'id="status">Booked<' in html and "Booked. The calendar invitation" in html
        when = datetime.fromisoformat(starts[1])
        assert f"{when:%a %d %b %Y, %H:%M}" in html
        assert "Move to this time" in html and starts[1] not in options(html, f"{base}/reschedule")

        # What integrations reports back lands on the booking: the Teams link and failures.
        await sql(
            scheduling_db,
            "UPDATE bookings SET teams_join_url = 'https://teams.example/join/1', "
            "calendar_status = 'created', note_status = 'failed', "
            "note_error = 'iCIMS answered 503' WHERE request_id = :id",
            id=rid,
        )
        await sql(
            scheduling_db,
            "UPDATE scheduling_requests SET needs_attention = true, "
            'attention_reasons = \'[{"reason": "iCIMS sync failed after 3 attempts"}]\' '
            "WHERE id = :id",
            id=rid,
        )
        html = unescape((await client.get(base)).text)
        assert 'href="https://teams.example/join/1"' in html
        assert "invitation sent" in html
        assert "iCIMS answered 503" in html and "rq-state-failed" in html
        assert "Needs attention" in html and "iCIMS sync failed after 3 attempts" in html

        moved = await client.post(
            f"{base}/reschedule",
            data={"csrf_token": admin.csrf, "start": starts[3], "reason": "panel clash"},
        )
        assert moved.headers["location"] == f"{base}?notice=rescheduled"
        cancelled = await client.post(
            f"{base}/cancel", data={"csrf_token": admin.csrf, "reason": "role filled"}
        )
        assert cancelled.headers["location"] == f"{base}?notice=cancelled"
        page = await client.get(cancelled.headers["location"])
        assert 'id="status">Cancelled<' in page.text and "Reopen" in page.text
        reopened = await client.post(f"{base}/reopen", data={"csrf_token": admin.csrf})
        assert reopened.headers["location"] == f"{base}?notice=reopened"
        page = await client.get(reopened.headers["location"])
    html = unescape(page.text)
    assert 'id="status">Open<' in html
    timeline = re.sub(r"<[^>]+>", "", html[html.index('id="timeline"') :])
    for words in (
        "changed the status: cancelled → open",
        "changed the status: booked → cancelled — role filled",
        "rescheduled the interview — panel clash",
        "sent the booking link again",
        "created the request",
    ):
        assert words in timeline, words
    assert timeline.index("cancelled → open") < timeline.index("created the request")


async def test_a_taken_slot_or_bad_action_is_a_clear_page_never_a_500(
    gateway: Client, seed
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        shared = person("race")
        first = await create(client, admin, api_body([shared]))
        second = await create(client, admin, api_body([shared]))
        page = await client.get(f"/requests/{second['id']}")
        stale = options(page.text, f"/requests/{second['id']}/book")[0]
        taken = await client.post(
            f"/api/scheduling/requests/{first['id']}/book",
            json={"start": stale},
            headers=admin.headers,
        )
        assert taken.status_code == 200, taken.text

        r = await client.post(
            f"/requests/{second['id']}/book", data={"csrf_token": admin.csrf, "start": stale}
        )
        assert r.status_code == 409
        assert "no longer available" in r.text and "Choose another time" in r.text
        assert stale not in options(r.text, f"/requests/{second['id']}/book")  # a fresh list

        nothing = await client.post(
            f"/requests/{second['id']}/book", data={"csrf_token": admin.csrf}
        )
        assert nothing.status_code == 400 and "Choose a time first." in nothing.text
        garbage = await client.post(
            f"/requests/{second['id']}/book", data={"csrf_token": admin.csrf, "start": "soon"}
        )
        assert garbage.status_code == 422 and "Traceback" not in garbage.text
        wrong = await client.post(
            f"/requests/{second['id']}/reopen", data={"csrf_token": admin.csrf}
        )
        assert wrong.status_code == 409 and "open request cannot become open" in wrong.text
        forged = await client.post(f"/requests/{second['id']}/cancel", data={"reason": "x"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        still = await client.get(f"/api/scheduling/requests/{second['id']}", headers=admin.headers)
    assert still.json()["status"] == "open"


async def test_another_orgs_user_gets_the_404_page_everywhere(gateway: Client, seed) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        made = await create(client, admin, api_body([person("iso")]))
        base = f"/requests/{made['id']}"
        stranger = await open_org(client, seed)
        pages = [await client.get(base), await client.get(f"{base}/erase")]
        for action in ("resend-link", "book", "reschedule", "cancel", "reopen"):
            pages.append(
                await client.post(
                    f"{base}/{action}",
                    data={"csrf_token": stranger.csrf, "start": "2030-01-01T10:00:00+00:00"},
                )
            )
        pages.append(
            await client.post(f"{base}/erase", data={"csrf_token": stranger.csrf, "confirm": "yes"})
        )
        listed = await client.get("/requests")
        garbage = await client.get("/requests/not-an-id")
        _as(client, admin)
        untouched = await client.get(f"/api/scheduling/requests/{made['id']}")
    for p in [*pages, garbage]:
        assert p.status_code == 404, (p.url, p.text)
        assert "Not found" in p.text and "Ada Lovelace" not in p.text
    assert "Ada Lovelace" not in listed.text
    assert untouched.json()["status"] == "open"


async def test_members_cannot_erase_admins_confirm_first(gateway: Client, seed) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        member: Member = await seed(org_id=admin.org_id, role="member")
        _as(client, member)
        mine = await create(
            client,
            member,
            api_body(
                [person("er")],
                candidate={
                    "name": "Eve Private",
                    "email": "eve@candidates.example",
                    "timeZone": "UTC",
                },
            ),
        )
        base = f"/requests/{mine['id']}"
        page = await client.get(base)
        assert page.status_code == 200 and "Cancel the request" in page.text  # her own
        assert f"{base}/erase" not in page.text
        assert (await client.get(f"{base}/erase")).status_code == 403
        refused = await client.post(
            f"{base}/erase", data={"csrf_token": member.csrf, "confirm": "yes"}
        )
        assert refused.status_code == 403 and "Only an organization admin" in refused.text

        _as(client, admin)
        page = await client.get(base)
        assert f'href="{base}/erase"' in page.text
        confirm = await client.get(f"{base}/erase")
        assert confirm.status_code == 200 and "Erase permanently" in confirm.text
        unconfirmed = await client.post(f"{base}/erase", data={"csrf_token": admin.csrf})
        assert unconfirmed.status_code == 303 and unconfirmed.headers["location"] == f"{base}/erase"
        erased = await client.post(
            f"{base}/erase", data={"csrf_token": admin.csrf, "confirm": "yes"}
        )
        assert erased.status_code == 303 and erased.headers["location"] == f"{base}?notice=erased"
        page = await client.get(erased.headers["location"])
    html = unescape(page.text)
    assert "The candidate's personal data was erased." in html
    assert "Erased candidate" in html
    assert "Eve Private" not in html and "eve@candidates.example" not in html
    assert 'id="booking-link"' not in html and 'id="status">Cancelled<' in html
    assert "erased the candidate's personal data" in html


async def test_a_booked_request_must_be_cancelled_before_erasing(gateway: Client, seed) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        made = await create(client, admin, api_body([person("eb")]))
        base = f"/requests/{made['id']}"
        start = options((await client.get(base)).text, f"{base}/book")[0]
        await client.post(f"{base}/book", data={"csrf_token": admin.csrf, "start": start})
        page = await client.get(base)
        assert "cancel the interview first" in page.text and f'href="{base}/erase"' not in page.text
        assert "Cancel it first" in (await client.get(f"{base}/erase")).text
        r = await client.post(f"{base}/erase", data={"csrf_token": admin.csrf, "confirm": "yes"})
    assert r.status_code == 409 and "cancel it first" in r.text.lower()
    assert "Ada Lovelace" in r.text


async def test_an_interviewer_reads_the_request_but_gets_no_actions(gateway: Client, seed) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        interviewer: Member = await seed(person("sits"), org_id=admin.org_id, role="member")
        made = await create(client, admin, api_body([interviewer.email]))
        _as(client, interviewer)
        page = await client.get(f"/requests/{made['id']}")
        listed = await client.get("/requests")
    assert page.status_code == 200 and "Ada Lovelace" in page.text
    assert "Actions" not in page.text and "/cancel" not in page.text
    assert "Ada Lovelace" in listed.text


async def test_the_new_api_routes_answer_through_the_gateway_with_their_access(
    gateway: Client, seed
) -> None:
    async with gateway() as client:
        admin = await open_org(client, seed)
        body = api_body([person("gw")])
        preview = await client.post(
            "/api/scheduling/requests/preview", json=body, headers=admin.headers
        )
        assert preview.status_code == 200 and preview.json()["slotCount"] > 0
        made = await create(client, admin, body)
        audit = await client.get(f"/api/scheduling/requests/{made['id']}/audit")
        assert [e["action"] for e in audit.json()["items"]] == ["created"]
        listed = await client.get("/api/scheduling/requests", params={"q": "lovelace"})
        assert [i["id"] for i in listed.json()["items"]] == [made["id"]]
        member: Member = await seed(org_id=admin.org_id, role="member")
        _as(client, member)
        refused = await client.post(
            f"/api/scheduling/requests/{made['id']}/erase", headers=member.headers
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "org_admin_required"


def test_interviewer_names_in_any_script_survive_the_round_trip() -> None:
    from gateway_service.web.requests_form import person

    zoe = person("Zoë Ægir <ZOE@Example.com>")
    assert zoe is not None and (zoe.name, zoe.email) == ("Zoë Ægir", "zoe@example.com")
    assert person(zoe.token) == zoe
    assert person("not an address") is None and person("a b@example.com") is None
