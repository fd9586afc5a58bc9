"""The fake Microsoft Graph, driven with plain httpx the way Graph clients talk to Graph."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from scheduler_sandbox.graph import create_app
from scheduler_sandbox.server import serve_in_thread

AUTH = {"Authorization": "Bearer sandbox-token"}
AVERY = "avery.chen@example.com"
BLAKE = "blake.okafor@example.com"


@pytest.fixture
async def graph() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://graph.test", headers=AUTH
    ) as client:
        yield client


def event_body(**extra: Any) -> dict[str, Any]:
    return {
        "subject": "Interview — Jo",
        "body": {"contentType": "html", "content": "<p>Interview with Jo</p>"},
        "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
        "attendees": [
            {"emailAddress": {"address": BLAKE, "name": "Blake"}, "type": "required"},
            {"emailAddress": {"address": "jo@candidate.test", "name": "Jo"}, "type": "required"},
        ],
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        **extra,
    }


def schedule_body(
    schedules: list[str], start: str, end: str, interval: int | None = 30, pascal: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedules": schedules,
        "startTime": {"dateTime": start, "timeZone": "UTC"},
        "endTime": {"dateTime": end, "timeZone": "UTC"},
    }
    if interval is not None:
        body["availabilityViewInterval"] = interval
    if pascal:
        body = {k[0].upper() + k[1:]: v for k, v in body.items()}
    return body


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/_sandbox/state")).json()


def assert_odata_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


async def test_retried_post_with_same_transaction_id_returns_the_original_event(graph):
    first = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/events", json=event_body(transactionId="tx-1")
    )
    again = await graph.post(f"/v1.0/users/{AVERY}/events", json=event_body(transactionId="tx-1"))
    other = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/events", json=event_body(transactionId="tx-2")
    )
    assert first.status_code == again.status_code == other.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    ids = [e["id"] for e in (await state(graph))["events"][AVERY]]
    assert sorted(ids) == sorted([first.json()["id"], other.json()["id"]])


async def test_created_event_has_graph_fields_and_a_teams_link_in_body(graph):
    r = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/events",
        json=event_body(
            start={"dateTime": "2030-01-07T11:00:00", "timeZone": "Europe/Berlin"},
            end={"dateTime": "2030-01-07T12:00:00", "timeZone": "Europe/Berlin"},
        ),
    )
    event = r.json()
    for name in ("id", "iCalUId", "webLink", "createdDateTime", "lastModifiedDateTime"):
        assert event[name]
    assert event["start"] == {"dateTime": "2030-01-07T10:00:00.0000000", "timeZone": "UTC"}
    assert event["organizer"]["emailAddress"]["address"] == AVERY
    join_url = event["onlineMeeting"]["joinUrl"]
    assert join_url in event["body"]["content"]
    assert "Interview with Jo" in event["body"]["content"]
    assert event["isCancelled"] is False and event["showAs"] == "busy"


async def test_double_slash_after_version_is_tolerated(graph):
    r = await graph.post(f"/v1.0//users/{AVERY}/calendar/events", json=event_body())
    assert r.status_code == 201
    got = await graph.get(f"/v1.0//users/{AVERY}/events/{r.json()['id']}")
    assert got.status_code == 200 and got.json()["id"] == r.json()["id"]


async def test_prefer_outlook_timezone_changes_the_answer_zone(graph):
    r = await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body())
    got = await graph.get(
        f"/v1.0/users/{AVERY}/calendar/events/{r.json()['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert got.json()["start"] == {
        "dateTime": "2030-01-07T02:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }


async def test_errors_are_odata_shaped(graph):
    assert_odata_error(
        await graph.get(f"/v1.0/users/{AVERY}/events", headers={"Authorization": ""}),
        401,
        "InvalidAuthenticationToken",
    )
    assert_odata_error(
        await graph.get(f"/v1.0/users/{AVERY}/events/AAMkAGnope="), 404, "ErrorItemNotFound"
    )
    assert_odata_error(
        await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json={"subject": "no times"}),
        400,
        "ErrorInvalidRequest",
    )
    assert_odata_error(await graph.get("/v1.0/users/not-an-id/events"), 404, "ErrorInvalidUser")


async def test_a_specific_token_is_enforced_when_configured():
    app = create_app(token="right")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://graph.test"
    ) as client:
        wrong = await client.get("/v1.0/users", headers={"Authorization": "Bearer wrong"})
        right = await client.get("/v1.0/users", headers={"Authorization": "Bearer right"})
    assert_odata_error(wrong, 401, "InvalidAuthenticationToken")
    assert right.status_code == 200


async def test_more_than_500_attendees_is_refused(graph):
    attendees = [{"emailAddress": {"address": f"p{i}@example.org"}} for i in range(501)]
    r = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/events", json=event_body(attendees=attendees)
    )
    assert_odata_error(r, 400, "ErrorInvalidRequest")


async def test_list_events_filters_by_transaction_id_and_pages_with_top(graph):
    for n in range(3):
        await graph.post(
            f"/v1.0/users/{AVERY}/calendar/events", json=event_body(transactionId=f"t{n}")
        )
    found = await graph.get(
        f"/v1.0/users/{AVERY}/events", params={"$filter": "transactionId eq 't1'"}
    )
    assert [e["transactionId"] for e in found.json()["value"]] == ["t1"]
    page = await graph.get(f"/v1.0/users/{AVERY}/calendar/events", params={"$top": "2"})
    assert len(page.json()["value"]) == 2 and "@odata.nextLink" in page.json()


async def test_patch_merges_and_a_new_body_drops_the_teams_blob(graph):
    created = (await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body())).json()
    url = f"/v1.0/users/{AVERY}/events/{created['id']}"
    moved = await graph.patch(
        url,
        json={
            "start": {"dateTime": "2030-01-08T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-08T11:00:00", "timeZone": "UTC"},
        },
    )
    assert moved.status_code == 200
    assert moved.json()["subject"] == created["subject"]
    assert moved.json()["body"] == created["body"]
    assert moved.json()["changeKey"] != created["changeKey"]
    rewritten = await graph.patch(url, json={"body": {"contentType": "html", "content": "<p>x"}})
    assert created["onlineMeeting"]["joinUrl"] not in rewritten.json()["body"]["content"]
    refused = await graph.patch(url, json={"transactionId": "another"})
    assert_odata_error(refused, 400, "ErrorInvalidPropertyUpdateSentToServer")


async def test_get_schedule_accepts_camel_and_pascal_case_keys(graph):
    for pascal in (False, True):
        r = await graph.post(
            f"/v1.0/users/{AVERY}/calendar/getSchedule",
            json=schedule_body([BLAKE], "2030-01-07T08:00:00", "2030-01-07T12:00:00", 60, pascal),
        )
        assert r.status_code == 200, r.text
        assert r.json()["value"][0]["availabilityView"] == "0000"


async def test_get_schedule_enforces_graphs_limits(graph):
    url = f"/v1.0/users/{AVERY}/calendar/getSchedule"
    many = [f"p{i}@example.com" for i in range(21)]
    day = ("2030-01-07T00:00:00", "2030-01-08T00:00:00")
    assert_odata_error(
        await graph.post(url, json=schedule_body(many, *day)), 400, "ErrorInvalidRequest"
    )
    long = schedule_body([BLAKE], "2030-01-01T00:00:00", "2030-02-12T00:00:00")  # 42 days
    assert_odata_error(await graph.post(url, json=long), 400, "ErrorInvalidRequest")
    for interval in (4, 1441):
        body = schedule_body([BLAKE], *day, interval)
        assert_odata_error(await graph.post(url, json=body), 400, "ErrorInvalidRequest")
    default = await graph.post(url, json=schedule_body([BLAKE], *day, interval=None))
    assert len(default.json()["value"][0]["availabilityView"]) == 48  # 30-minute default


async def test_availability_view_comes_from_stored_events_and_seeded_busy(graph):
    await graph.post(f"/v1.0/users/{BLAKE}/calendar/events", json=event_body(attendees=[]))
    await graph.post(
        f"/v1.0/users/{BLAKE}/calendar/events",
        json=event_body(
            attendees=[],
            showAs="tentative",
            start={"dateTime": "2030-01-07T13:00:00", "timeZone": "UTC"},
            end={"dateTime": "2030-01-07T13:30:00", "timeZone": "UTC"},
        ),
    )
    seeded = await graph.post(
        "/_sandbox/busy",
        json={
            "mailbox": BLAKE.upper(),
            "start": "2030-01-07T15:00:00+00:00",
            "end": "2030-01-07T16:00:00+00:00",
            "showAs": "oof",
            "subject": "Dentist",
        },
    )
    assert seeded.status_code == 200
    r = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/getSchedule",
        json=schedule_body([BLAKE], "2030-01-07T09:00:00", "2030-01-07T17:00:00", 60),
    )
    info = r.json()["value"][0]
    #                                09 10 11 12 13 14 15 16
    assert info["availabilityView"] == "02001030"
    assert [i["status"] for i in info["scheduleItems"]] == ["busy", "tentative", "oof"]
    assert info["scheduleItems"][0]["start"]["dateTime"] == "2030-01-07T10:00:00.0000000"
    assert info["workingHours"]["daysOfWeek"][0] == "monday"


async def test_internal_attendees_see_the_meeting_as_tentative(graph):
    await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body())
    r = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/getSchedule",
        json=schedule_body([BLAKE], "2030-01-07T09:00:00", "2030-01-07T12:00:00", 60),
    )
    assert r.json()["value"][0]["availabilityView"] == "010"


async def test_unknown_schedule_mailbox_gets_an_error_entry(graph):
    r = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/getSchedule",
        json=schedule_body(
            [BLAKE, "ghost@elsewhere.example.org"], "2030-01-07T09:00:00", "2030-01-07T10:00:00"
        ),
    )
    ghost = r.json()["value"][1]
    assert ghost["scheduleId"] == "ghost@elsewhere.example.org"
    assert ghost["error"]["responseCode"] == "ErrorMailboxNotFound"
    assert "error" not in r.json()["value"][0]


async def test_cancel_marks_the_event_cancelled_and_frees_the_time(graph):
    created = (
        await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body(attendees=[]))
    ).json()
    r = await graph.post(
        f"/v1.0/users/{AVERY}/events/{created['id']}/cancel", json={"Comment": "Role filled"}
    )
    assert r.status_code == 202 and r.content == b""
    got = (await graph.get(f"/v1.0/users/{AVERY}/events/{created['id']}")).json()
    assert got["isCancelled"] is True
    stored = (await state(graph))["events"][AVERY][0]
    assert stored["_sandbox"]["cancellationComment"] == "Role filled"
    free = await graph.post(
        f"/v1.0/users/{BLAKE}/calendar/getSchedule",
        json=schedule_body([AVERY], "2030-01-07T10:00:00", "2030-01-07T11:00:00", 60),
    )
    assert free.json()["value"][0]["availabilityView"] == "0"


async def test_only_the_organizer_can_cancel(graph):
    await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body())
    copy = (await state(graph))["events"][BLAKE][0]
    r = await graph.post(f"/v1.0/users/{BLAKE}/events/{copy['id']}/cancel", json={"comment": "x"})
    assert_odata_error(r, 400, "ErrorAccessDenied")


async def test_delete_answers_204_and_the_event_is_gone(graph):
    created = (await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body())).json()
    url = f"/v1.0/users/{AVERY}/events/{created['id']}"
    assert (await graph.delete(url)).status_code == 204
    assert_odata_error(await graph.get(url), 404, "ErrorItemNotFound")


async def test_send_mail_lands_in_inboxes_and_sent_items_with_attachments(graph):
    ics = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    message = {
        "subject": "Pick your interview time",
        "body": {"contentType": "HTML", "content": "<a href='http://book/x'>Book</a>"},
        "toRecipients": [{"emailAddress": {"address": "jo@candidate.test", "name": "Jo"}}],
        "ccRecipients": [{"emailAddress": {"address": BLAKE}}],
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "invite.ics",
                "contentType": "text/calendar",
                "contentBytes": base64.b64encode(ics).decode(),
            }
        ],
    }
    r = await graph.post(
        f"/v1.0/users/{AVERY}/sendMail", json={"Message": message, "SaveToSentItems": True}
    )
    assert r.status_code == 202 and r.content == b""
    mail = (await state(graph))["mail"]
    got = mail["jo@candidate.test"]["inbox"][0]
    assert got["subject"] == "Pick your interview time"
    assert got["from"]["emailAddress"]["address"] == AVERY
    assert base64.b64decode(got["attachments"][0]["contentBytes"]) == ics
    assert mail[BLAKE]["inbox"][0]["id"] == got["id"]
    assert mail[AVERY]["sent"][0]["id"] == got["id"]
    assert_odata_error(
        await graph.post(f"/v1.0/users/{AVERY}/sendMail", json={"saveToSentItems": True}),
        400,
        "ErrorInvalidRequest",
    )
    assert_odata_error(
        await graph.post(
            f"/v1.0/users/{AVERY}/sendMail",
            json={"message": {**message, "toRecipients": [], "ccRecipients": []}},
        ),
        400,
        "ErrorInvalidRecipients",
    )


async def test_directory_filter_search_top_and_select(graph):
    r = await graph.get(
        "/v1.0/users",
        params={
            "$filter": "startswith(displayName,'av') or startswith(mail,'HANA') "
            "or startswith(userPrincipalName,'gab')",
            "$select": "displayName,mail,jobTitle",
        },
    )
    people = r.json()["value"]
    assert [p["displayName"] for p in people] == ["Avery Chen", "Gabriel Moreau", "Hana Suzuki"]
    assert set(people[0]) == {"id", "displayName", "mail", "jobTitle"}
    exact = await graph.get("/v1.0/users", params={"$filter": f"mail eq '{BLAKE.upper()}'"})
    assert [p["mail"] for p in exact.json()["value"]] == [BLAKE]
    quoted = await graph.post(
        "/_sandbox/users", json={"mail": "k.o@example.com", "displayName": "Kim O'Neil"}
    )
    assert quoted.status_code == 200
    r = await graph.get("/v1.0/users", params={"$filter": "startswith(displayName,'kim o''n')"})
    assert [p["displayName"] for p in r.json()["value"]] == ["Kim O'Neil"]
    search = {"$search": '"displayName:suzu"'}
    assert_odata_error(
        await graph.get("/v1.0/users", params=search), 400, "Request_UnsupportedQuery"
    )
    found = await graph.get("/v1.0/users", params=search, headers={"ConsistencyLevel": "eventual"})
    assert [p["displayName"] for p in found.json()["value"]] == ["Hana Suzuki"]
    assert len((await graph.get("/v1.0/users", params={"$top": "2"})).json()["value"]) == 2
    assert (await graph.get("/v1.0/users", params={"$top": "1000"})).status_code == 400


async def test_faults_answer_429_with_retry_after_for_the_next_n_requests(graph):
    await graph.post(
        "/_sandbox/faults", json={"status": 429, "retryAfter": "1", "count": 2, "key": AVERY}
    )
    url = f"/v1.0/users/{AVERY}/calendar/events"
    first, second, third = [await graph.post(url, json=event_body()) for _ in range(3)]
    assert_odata_error(first, 429, "TooManyRequests")
    assert first.headers["Retry-After"] == "1" and second.status_code == 429
    assert third.status_code == 201
    other = await graph.post(f"/v1.0/users/{BLAKE}/calendar/events", json=event_body())
    assert other.status_code == 201  # the fault was keyed to one mailbox
    await graph.post("/_sandbox/faults", json={"status": 503})
    assert_odata_error(await graph.get("/v1.0/users"), 503, "ServiceUnavailable")
    await graph.post("/_sandbox/faults", json={"clear": True})
    assert (await graph.get("/v1.0/users")).status_code == 200


async def test_a_rate_fault_hits_about_that_share_of_requests(graph):
    await graph.post("/_sandbox/faults", json={"status": 429, "retryAfter": "1", "rate": 0.15})
    await graph.post("/_sandbox/faults", json={"status": 503, "rate": 0.15 / 0.85})
    codes = [(await graph.get("/v1.0/users", params={"$top": "1"})).status_code for _ in range(400)]
    await graph.post("/_sandbox/faults", json={"clear": True})
    # 30 % in all, half of each kind: binomial(400, 0.3) is 120 ± 9.2; far outside is a bug.
    refused = codes.count(429) + codes.count(503)
    assert 80 <= refused <= 160, codes
    assert codes.count(429) > 20 and codes.count(503) > 20
    assert set(codes) == {200, 429, 503}


async def test_a_response_phase_fault_keeps_the_change_but_loses_the_answer(graph):
    await graph.post("/_sandbox/faults", json={"status": 504, "count": 1, "phase": "response"})
    lost = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/events", json=event_body(transactionId="lost")
    )
    assert lost.status_code == 504
    again = await graph.post(
        f"/v1.0/users/{AVERY}/calendar/events", json=event_body(transactionId="lost")
    )
    assert again.status_code == 201
    assert [e["id"] for e in (await state(graph))["events"][AVERY]] == [again.json()["id"]]


async def test_concurrency_is_counted_per_mailbox_and_the_fifth_is_throttled(graph):
    await graph.post("/_sandbox/faults", json={"latencyMs": 200, "key": AVERY})
    url = f"/v1.0/users/{AVERY.upper()}/events"
    answers = await asyncio.gather(*(graph.get(url) for _ in range(6)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 200, 200, 429, 429]
    throttled = next(r for r in answers if r.status_code == 429)
    assert_odata_error(throttled, 429, "ApplicationThrottled")
    assert throttled.headers["Retry-After"]
    s = await state(graph)
    assert s["maxConcurrent"][AVERY] >= 5  # the throttled ones were seen too
    assert s["throttled"][AVERY] == 2
    assert s["requestCounts"][AVERY] == 6
    assert {(e["method"], e["mailbox"]) for e in s["requests"]} == {("GET", AVERY)}


async def test_request_log_records_mailbox_and_transaction_id(graph):
    await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body(transactionId="t9"))
    entry = (await state(graph))["requests"][-1]
    assert entry == {
        "method": "POST",
        "path": f"/v1.0/users/{AVERY}/calendar/events",
        "mailbox": AVERY,
        "transactionId": "t9",
        "status": 201,
    }


async def test_reset_restores_the_seeded_directory(graph):
    await graph.post("/_sandbox/users", json={"users": [{"mail": "new.person@example.com"}]})
    await graph.post(f"/v1.0/users/{AVERY}/calendar/events", json=event_body())
    await graph.post("/_sandbox/reset")
    s = await state(graph)
    assert s["events"] == {} and s["requests"] == []
    mails = {u["mail"] for u in s["directory"]}
    assert AVERY in mails and "new.person@example.com" not in mails and len(mails) >= 8


async def test_pages_list_mailboxes_and_render_the_message_for_a_person(graph):
    await graph.post(
        "/_sandbox/users",
        json={"mail": "x@example.com", "displayName": "<script>alert(1)</script>"},
    )
    message = {
        "subject": "<b>Book</b> now",
        "body": {"contentType": "html", "content": "<a href='http://book.test/t/abc'>Book</a>"},
        "toRecipients": [{"emailAddress": {"address": "jo@candidate.test"}}],
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "invite.ics",
                "contentType": "text/calendar",
                "contentBytes": base64.b64encode(b"BEGIN:VCALENDAR").decode(),
            }
        ],
    }
    await graph.post(f"/v1.0/users/{AVERY}/sendMail", json={"message": message})
    index = (await graph.get("/")).text
    assert "jo@candidate.test" in index and "<script>alert" not in index
    inbox = (await graph.get("/mailboxes/jo@candidate.test")).text
    assert "&lt;b&gt;Book&lt;/b&gt; now" in inbox
    msg_id = (await state(graph))["mail"]["jo@candidate.test"]["inbox"][0]["id"]
    page = await graph.get(f"/mailboxes/jo@candidate.test/messages/{msg_id}")
    assert page.status_code == 200
    assert "srcdoc=" in page.text and "http://book.test/t/abc" in page.text
    link = re.search(r"href='([^']*/attachments/[^']*)'", page.text)
    assert link is not None
    download = await graph.get(link.group(1))
    assert download.content == b"BEGIN:VCALENDAR"
    assert download.headers["content-type"].startswith("text/calendar")


def test_served_over_a_real_socket():
    with serve_in_thread(create_app()) as base:
        r = httpx.get(f"{base}/v1.0//users/{AVERY}", headers=AUTH)
    assert r.status_code == 200 and r.json()["mail"] == AVERY
