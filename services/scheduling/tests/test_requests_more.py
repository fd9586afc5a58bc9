"""The coordinator's list filters, availability preview, a request's audit trail and erasing a
candidate's personal data; against the real integrations API and the fake Graph where slots are
needed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from scheduling_service.app import create_app
from servicekit.testing.helpers import app_client, user_headers
from sqlalchemy import event, text

from .conftest import World
from .test_bookings import create, open_org, people, request_body, slots, token_of

BASE = "/api/scheduling/requests"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def person_email(prefix: str) -> str:
    return people(prefix, 1)[0]


async def ids(api: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    r = await api.get(BASE, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def flag(world: World, request_id: str) -> None:
    async with world.sessions() as s, s.begin():
        await s.execute(
            text(
                "UPDATE scheduling_requests SET needs_attention = true, "
                "attention_reason = 'iCIMS sync failed after 3 attempts' WHERE id = :id"
            ),
            {"id": request_id},
        )


def candidate(name: str, email: str, zone: str = "UTC") -> dict[str, str]:
    return {"name": name, "email": email, "timeZone": zone}


# -- list filters ---------------------------------------------------------------------------


async def test_list_filters_by_status_attention_interviewer_and_search(world: World) -> None:
    org, admin = await open_org(world.api)
    grace, linus = people("grace", 1)[0], people("linus", 1)[0]
    app = f"APP-{uuid.uuid4().hex[:8]}"
    ada = await create(
        world,
        admin,
        request_body(
            [grace],
            candidate=candidate("Ada Lovelace", "ada.l@candidates.example.com"),
            title="Pay 100% remote",
            icimsApplicationId=app,
        ),
    )
    bob = await create(
        world,
        admin,
        request_body(
            [linus.upper()],
            candidate=candidate("Bob_Builder", "bob@candidates.example.com"),
            title="Pay 1000 remote",
        ),
    )
    cy = await create(
        world,
        admin,
        request_body([grace, linus], candidate=candidate("Cy Young", "cy@other.example.com")),
    )
    offered = await slots(world.api, token_of(cy))
    booked = await world.api.post(
        f"{BASE}/{cy['id']}/book", headers=admin, json={"start": offered[0]["start"]}
    )
    assert booked.status_code == 200, booked.text
    await flag(world, bob["id"])

    assert await ids(world.api, admin) == [cy["id"], bob["id"], ada["id"]]
    assert await ids(world.api, admin, status="booked") == [cy["id"]]
    # Comma-separated, or repeated as a form's checkboxes send it.
    assert await ids(world.api, admin, status="open,booked") == [cy["id"], bob["id"], ada["id"]]
    r = await world.api.get(f"{BASE}?status=open&status=booked", headers=admin)
    assert len(r.json()["items"]) == 3
    assert await ids(world.api, admin, needsAttention="true") == [bob["id"]]
    assert await ids(world.api, admin, needsAttention="false") == [cy["id"], ada["id"]]
    assert await ids(world.api, admin, interviewer=grace.upper()) == [cy["id"], ada["id"]]
    assert await ids(world.api, admin, interviewer=linus) == [cy["id"], bob["id"]]
    assert await ids(world.api, admin, status="open", interviewer=grace) == [ada["id"]]

    # Search: candidate name or email, title, iCIMS application id; case-insensitive.
    assert await ids(world.api, admin, q="lovelace") == [ada["id"]]
    assert await ids(world.api, admin, q="OTHER.example") == [cy["id"]]
    assert await ids(world.api, admin, q=app.lower()) == [ada["id"]]
    assert await ids(world.api, admin, q="pay 10") == [bob["id"], ada["id"]]
    # % and _ are themselves, not wildcards.
    assert await ids(world.api, admin, q="100%") == [ada["id"]]
    assert await ids(world.api, admin, q="bo_") == []
    assert await ids(world.api, admin, q="_") == [bob["id"]]
    assert await ids(world.api, admin, q="%") == [ada["id"]]

    # Each item carries its booking, as the detail does.
    items = {i["id"]: i for i in (await world.api.get(BASE, headers=admin)).json()["items"]}
    assert items[cy["id"]]["booking"]["status"] == "confirmed"
    assert items[cy["id"]]["booking"]["start"][:16] == offered[0]["start"][:16]
    assert items[ada["id"]]["booking"] is None
    assert items[bob["id"]]["needsAttention"] is True

    # Still org-scoped and role-scoped.
    stranger = user_headers(org_id=uuid.uuid4(), role="admin")
    assert await ids(world.api, stranger, q="lovelace") == []
    member = user_headers(org_id=org, role="member", email=grace)
    # She sits on Ada's and Cy's panels, and only Ada's title matches.
    assert await ids(world.api, member, q="pay") == [ada["id"]]


async def test_date_filter_uses_the_booked_day_or_else_the_window(world: World) -> None:
    _org, admin = await open_org(world.api)
    today = datetime.now(UTC).date()
    soon = await create(world, admin, request_body(people("d", 1)))  # today .. +6
    later = await create(
        world,
        admin,
        request_body(
            people("d", 1),
            windowStart=(today + timedelta(days=20)).isoformat(),
            windowEnd=(today + timedelta(days=25)).isoformat(),
        ),
    )
    booked = await create(world, admin, request_body(people("d", 1)))
    offered = await slots(world.api, token_of(booked))
    day_after = [s for s in offered if s["start"][:10] == (today + timedelta(days=2)).isoformat()]
    r = await world.api.post(
        f"{BASE}/{booked['id']}/book", headers=admin, json={"start": day_after[0]["start"]}
    )
    assert r.status_code == 200, r.text

    def span(a: date, b: date) -> dict[str, str]:
        return {"from": a.isoformat(), "to": b.isoformat()}

    two = today + timedelta(days=2)
    # The booked one matches on its interview's day only, even though its window is wider.
    assert await ids(world.api, admin, **span(two, two)) == [booked["id"], soon["id"]]
    assert await ids(world.api, admin, **span(today, today)) == [soon["id"]]
    far = span(today + timedelta(days=24), today + timedelta(days=40))
    assert await ids(world.api, admin, **far) == [later["id"]]
    assert await ids(world.api, admin, **{"from": (today + timedelta(days=7)).isoformat()}) == [
        later["id"]
    ]
    assert await ids(world.api, admin, to=(today + timedelta(days=1)).isoformat()) == [soon["id"]]


@pytest.mark.parametrize(
    "query",
    [
        "needsAttention=yes",
        "needs_attention=true",
        "from=2030-13-01",
        "from=20300101",
        "to=tomorrow",
        "from=2030-01-05&to=2030-01-01",
        "interviewer=not-an-email",
        "status=open,bogus",
        "q=" + "x" * 201,
        "sort=title",
    ],
)
async def test_unknown_or_malformed_filters_are_a_400_naming_them(
    client: httpx.AsyncClient, query: str
) -> None:
    r = await client.get(f"{BASE}?{query}", headers=user_headers(org_id=uuid.uuid4()))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_filter"
    assert error["details"]["parameter"] in query


async def test_filtered_list_pages_by_cursor_within_the_filter(world: World) -> None:
    _org, admin = await open_org(world.api)
    tag = uuid.uuid4().hex[:6]
    made = [
        (await create(world, admin, request_body(people("p", 1), title=f"Round {tag} {n}")))["id"]
        for n in range(3)
    ]
    await create(world, admin, request_body(people("p", 1), title="Unrelated"))
    first = (await world.api.get(BASE, headers=admin, params={"q": tag, "limit": 2})).json()
    assert first["nextCursor"]
    second = (
        await world.api.get(
            BASE, headers=admin, params={"q": tag, "limit": 2, "cursor": first["nextCursor"]}
        )
    ).json()
    assert second["nextCursor"] is None
    assert [i["id"] for i in first["items"] + second["items"]] == list(reversed(made))


async def test_list_reads_bookings_in_one_query_whatever_the_page_size(world: World) -> None:
    _org, admin = await open_org(world.api)
    for _ in range(4):
        made = await create(world, admin, request_body(people("n", 1)))
        offered = await slots(world.api, token_of(made))
        r = await world.api.post(
            f"{BASE}/{made['id']}/book", headers=admin, json={"start": offered[0]["start"]}
        )
        assert r.status_code == 200, r.text
    app = create_app(world.settings)
    async with app_client(app) as api:
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
        sizes = {}
        for limit in (1, 4):
            statements.clear()
            r = await api.get(BASE, headers=admin, params={"limit": limit})
            assert all(i["booking"] for i in r.json()["items"])
            sizes[limit] = len(statements)
    assert sizes[1] == sizes[4]


# -- preview --------------------------------------------------------------------------------


async def outbox_count(world: World) -> int:
    async with world.sessions() as s:
        return int((await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one())


async def test_preview_shows_the_slots_a_request_would_offer_and_creates_nothing(
    world: World,
) -> None:
    _org, admin = await open_org(world.api)
    panel = people("pv", 2)
    body = request_body(panel, candidate=candidate("Ada", "ada@c.example.com", "Asia/Tokyo"))
    before = await outbox_count(world)
    r = await world.api.post(f"{BASE}/preview", headers=admin, json=body)
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["slotCount"] > 10 and len(preview["firstSlots"]) == 10
    assert preview["timeZone"] == "Asia/Tokyo"
    assert all(s["start"].endswith("+09:00") for s in preview["firstSlots"])
    assert preview["firstSlots"][0]["interviewers"] == panel
    assert preview["unavailableMailboxes"] == []
    d = preview["diagnostics"]
    assert d["candidatesConsidered"] == preview["slotCount"] + sum(
        d[k]
        for k in (
            "outsideWindowOrNotice",
            "mailboxUnavailable",
            "outsideWorkingHours",
            "capReached",
            "busy",
        )
    )
    assert f"{preview['slotCount']} start times can be offered" in preview["explanation"]
    assert await outbox_count(world) == before
    assert await ids(world.api, admin) == []

    # The same times the candidate would see once it exists.
    made = await create(world, admin, body)
    offered = await slots(world.api, token_of(made))
    assert [s["start"] for s in offered[:10]] == [s["start"] for s in preview["firstSlots"]]


async def test_preview_counts_other_requests_bookings_and_graph_busy_time(world: World) -> None:
    _org, admin = await open_org(world.api)
    (person,) = people("pb", 1)
    first = await create(world, admin, request_body([person]))
    offered = await slots(world.api, token_of(first))
    taken = offered[0]["start"]
    await world.api.post(f"{BASE}/{first['id']}/book", headers=admin, json={"start": taken})
    r = await world.api.post(f"{BASE}/preview", headers=admin, json=request_body([person]))
    assert taken not in [s["start"] for s in r.json()["firstSlots"]]
    assert r.json()["diagnostics"]["busy"] >= 1

    # A calendar blocked for the whole window: nothing, and the reason says so.
    (busy,) = people("allbusy", 1)
    today = datetime.now(UTC).date()
    await world.graph.post(
        "/_sandbox/busy",
        json={
            "mailbox": busy,
            "start": f"{today.isoformat()}T00:00:00+00:00",
            "end": f"{(today + timedelta(days=8)).isoformat()}T00:00:00+00:00",
        },
    )
    r = await world.api.post(f"{BASE}/preview", headers=admin, json=request_body([busy]))
    assert r.json()["slotCount"] == 0
    assert r.json()["explanation"].startswith("No time can be offered.")
    assert "clash with calendar events" in r.json()["explanation"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"minimumNoticeMinutes": 43200}, "minimum notice"),
        (
            {
                "interviewers": [
                    {
                        "email": "early-bird@example.com",
                        "timeZone": "UTC",
                        "workingHours": {"mon": [{"start": "09:00", "end": "09:30"}]},
                    }
                ]
            },
            "working hours",
        ),
        ({"interviewers": [{"email": "nobody@elsewhere.example.org"}]}, "could not be read"),
    ],
)
async def test_preview_explains_why_nothing_can_be_offered(
    world: World, overrides: dict[str, Any], words: str
) -> None:
    _org, admin = await open_org(world.api)
    body = {**request_body(people("why", 1)), **overrides}
    r = await world.api.post(f"{BASE}/preview", headers=admin, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["slotCount"] == 0
    assert words in r.json()["explanation"], r.json()["explanation"]
    if "could not be read" in words:
        assert r.json()["unavailableMailboxes"] == ["nobody@elsewhere.example.org"]


async def test_preview_takes_hours_that_end_at_midnight(world: World) -> None:
    _org, admin = await open_org(world.api)
    late = {
        "email": person_email("night"),
        "timeZone": "UTC",
        "workingHours": {d: [{"start": "20:00", "end": "24:00"}] for d in WEEKDAYS},
    }
    body = {**request_body([]), "interviewers": [late]}
    r = await world.api.post(f"{BASE}/preview", headers=admin, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["slotCount"] > 0
    assert {s["start"][11:16] for s in r.json()["firstSlots"]} <= {
        "20:00",
        "21:00",
        "22:00",
        "23:00",
    }


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"interviewers": []}, 422, "validation_error"),
        ({"mode": "pool"}, 422, "validation_error"),
        ({"windowStart": "2020-01-01", "windowEnd": "2020-01-03"}, 400, "window_in_past"),
        ({"unexpected": 1}, 422, "validation_error"),
    ],
)
async def test_preview_validates_the_body_as_create_does(
    client: httpx.AsyncClient, overrides: dict[str, Any], status: int, code: str
) -> None:
    body = {**request_body(["x@example.com"]), **overrides}
    r = await client.post(f"{BASE}/preview", headers=user_headers(org_id=uuid.uuid4()), json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


# -- audit ----------------------------------------------------------------------------------


async def test_audit_lists_who_did_what_newest_first_to_those_who_may_see_it(
    world: World,
) -> None:
    org, admin = await open_org(world.api)
    coordinator_email = f"coord-{uuid.uuid4().hex[:6]}@example.com"
    coordinator = user_headers(org_id=org, role="member", email=coordinator_email)
    (interviewer,) = people("au", 1)
    made = await create(world, coordinator, request_body([interviewer]))
    base = f"{BASE}/{made['id']}"
    offered = await slots(world.api, token_of(made))
    await world.api.post(f"{base}/book", headers=coordinator, json={"start": offered[0]["start"]})
    await world.api.post(
        f"{base}/reschedule",
        headers=coordinator,
        json={"start": offered[2]["start"], "reason": "panel clash"},
    )
    await world.api.post(f"{base}/cancel", headers=admin, json={"reason": "role filled"})

    r = await world.api.get(f"{base}/audit", headers=coordinator)
    assert r.status_code == 200, r.text
    entries = r.json()["items"]
    assert [(e["action"], e["fromStatus"], e["toStatus"]) for e in entries] == [
        ("status_changed", "booked", "cancelled"),
        ("rescheduled", None, None),
        ("status_changed", "open", "booked"),
        ("created", None, "open"),
    ]
    assert entries[0]["actorEmail"] == admin_email(org)
    assert entries[0]["reason"] == "role filled"
    assert entries[1]["actorEmail"] == coordinator_email and entries[1]["reason"] == "panel clash"
    assert entries[3]["actorKind"] == "user"
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)

    page = (await world.api.get(f"{base}/audit", headers=admin, params={"limit": 3})).json()
    assert len(page["items"]) == 3 and page["nextCursor"]
    rest = (
        await world.api.get(
            f"{base}/audit", headers=admin, params={"limit": 3, "cursor": page["nextCursor"]}
        )
    ).json()
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in entries]

    # Same visibility as the request: its interviewer reads it; others do not see it at all.
    sitting = user_headers(org_id=org, role="member", email=interviewer)
    assert (await world.api.get(f"{base}/audit", headers=sitting)).status_code == 200
    for outsider in (
        user_headers(org_id=org, role="member"),
        user_headers(org_id=uuid.uuid4(), role="admin"),
    ):
        r = await world.api.get(f"{base}/audit", headers=outsider)
        assert r.status_code == 404 and r.json()["error"]["code"] == "request_not_found"


def admin_email(org: uuid.UUID) -> str:
    """The email open_org signs its admin with."""
    return f"coord-{org.hex[:6]}@example.com"


# -- erase ----------------------------------------------------------------------------------


async def test_admin_erases_a_cancelled_requests_candidate_and_the_link_dies(
    world: World,
) -> None:
    org, admin = await open_org(world.api)
    made = await create(
        world,
        admin,
        request_body(people("er", 1), candidate=candidate("Eve Secret", "eve@c.example.com")),
    )
    rid, token = made["id"], token_of(made)
    base = f"{BASE}/{rid}"
    offered = await slots(world.api, token)
    await world.api.post(f"{base}/book", headers=admin, json={"start": offered[0]["start"]})

    member = user_headers(org_id=org, role="member")
    refused = await world.api.post(f"{base}/erase", headers=member)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "org_admin_required"
    booked = await world.api.post(f"{base}/erase", headers=admin)
    assert booked.status_code == 409 and booked.json()["error"]["code"] == "request_booked"
    assert (await world.api.get(f"/api/public/bookings/{token}")).status_code == 200

    await world.api.post(f"{base}/cancel", headers=admin, json={"reason": "Eve withdrew"})
    r = await world.api.post(f"{base}/erase", headers=admin)
    assert r.status_code == 200, r.text
    erased = r.json()
    assert erased["erased"] is True and erased["status"] == "cancelled"
    assert erased["candidate"]["name"] == "Erased candidate"
    assert erased["candidate"]["email"] == f"erased+{rid}@invalid"
    detail = (await world.api.get(base, headers=admin)).text
    assert "Eve Secret" not in detail and "eve@c.example.com" not in detail
    assert (await world.api.get(f"/api/public/bookings/{token}")).status_code == 404
    assert (await world.api.get(f"/api/public/bookings/{token}/slots")).status_code == 404
    assert await ids(world.api, admin, q="Eve Secret") == []

    audit = (await world.api.get(f"{base}/audit", headers=admin)).json()["items"]
    assert audit[0]["action"] == "erased"
    assert audit[0]["actorEmail"] == admin_email(org)
    assert "Eve withdrew" in [e["reason"] for e in audit]  # free text reasons are kept

    again = await world.api.post(f"{base}/erase", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "request_erased"
    reopen = await world.api.post(f"{base}/reopen", headers=admin, json={})
    assert reopen.status_code == 409 and reopen.json()["error"]["code"] == "request_erased"


async def test_erasing_an_open_request_cancels_it_and_frees_its_application(
    world: World,
) -> None:
    _org, admin = await open_org(world.api)
    app = f"APP-{uuid.uuid4().hex[:8]}"
    made = await create(world, admin, request_body(people("eo", 1), icimsApplicationId=app))
    r = await world.api.post(f"{BASE}/{made['id']}/erase", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["erased"] is True
    again = await world.api.post(
        BASE, headers=admin, json=request_body(people("eo", 1), icimsApplicationId=app)
    )
    assert again.status_code == 201, again.text


# -- another org ----------------------------------------------------------------------------


async def test_another_orgs_user_gets_404_on_every_new_route(world: World) -> None:
    _org, admin = await open_org(world.api)
    made = await create(world, admin, request_body(people("iso", 1)))
    base = f"{BASE}/{made['id']}"
    for role in ("admin", "member"):
        stranger = user_headers(org_id=uuid.uuid4(), role=role)  # type: ignore[arg-type]
        audit = await world.api.get(f"{base}/audit", headers=stranger)
        assert audit.status_code == 404, audit.text
        assert audit.json()["error"]["code"] == "request_not_found"
    # Erase is for admins: another org's admin is told it does not exist.
    stranger_admin = user_headers(org_id=uuid.uuid4(), role="admin")
    erase = await world.api.post(f"{base}/erase", headers=stranger_admin)
    assert erase.status_code == 404 and erase.json()["error"]["code"] == "request_not_found"
    assert (await world.api.get(base, headers=admin)).json()["erased"] is False
