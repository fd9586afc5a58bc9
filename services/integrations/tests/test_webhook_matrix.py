"""The issue's delivery matrix, case by case: the HTTP answer, the stored row (verified, status,
duplicate) the runbook promises, and what the processor then does with it — it processes
exactly the verified, readable, first-seen deliveries and nothing else.

Deliveries are signed by the sandbox's signer (written apart from our verifier), against the
real receiver and PostgreSQL; the last cases go through the fake iCIMS's own sender.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.settings import Settings
from integrations_service.webhooks.process import Delivery, process_batch
from scheduler_contracts import Envelope
from scheduler_sandbox.icims import create_app as create_icims
from scheduler_sandbox.icims_signing import sign_headers
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import unit_of_work
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import WEBHOOK_SECRET, state

HOST = "hooks.example.com"
PATH = "/api/webhooks/icims"


def _payload() -> dict[str, object]:
    return {
        "customerId": "1234",
        "eventType": "WorkFlowStatusChangeEvent",
        "systemId": f"W{uuid.uuid4().hex[:10]}",
        "newStatus": {"id": "C51218"},
        "oldStatus": {"id": "C100"},
    }


def _body() -> bytes:
    return json.dumps(_payload()).encode()


def _whole_second(moment: datetime, *, up: bool) -> datetime:
    # The signer writes whole seconds; round the right way so the skew is never under-shot.
    seconds = moment.timestamp()
    return datetime.fromtimestamp(math.ceil(seconds) if up else math.floor(seconds), UTC)


@dataclass(frozen=True)
class Sent:
    raw: bytes
    headers: dict[str, str]


def delivery(
    body: bytes | None = None,
    *,
    gzip_it: bool = True,
    secret: str = WEBHOOK_SECRET,
    date: datetime | None = None,
    signed_host: str = HOST,
    hash_over_raw: bool = False,
    raw: bytes | None = None,
    drop: Sequence[str] = (),
    encoding: str | None = None,
) -> Sent:
    """One delivery as iCIMS sends it, with the given departure from it."""
    body = _body() if body is None else body
    packed = gzip.compress(body) if gzip_it else body
    sent = packed if raw is None else raw
    hashed = packed if hash_over_raw else body
    headers = sign_headers(
        secret=secret,
        method="POST",
        host=signed_host,
        path=PATH,
        query="",
        body_sha256=hashlib.sha256(hashed).hexdigest(),
        date=date,
    )
    headers["Host"] = HOST
    if gzip_it:
        headers["Content-Encoding"] = "gzip"
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    for name in drop:
        headers.pop(name)
    return Sent(sent, headers)


@dataclass(frozen=True)
class Expect:
    http: int
    stored: tuple[bool, str, bool] | None  # verified, status, duplicate; None: not stored
    reason: str | None = None  # verification_error, or the error code of a refusal
    processed: bool = False  # the processor hands this delivery to the translation


@dataclass(frozen=True)
class Case:
    id: str
    send: Callable[[], Sent]
    expect: Expect
    # Deliveries sent first, each with whether the processor should process it.
    before: Sequence[tuple[Callable[[], Sent], bool]] = ()
    # Move the earlier deliveries 25 hours into the past before sending this one.
    age_earlier: bool = False


VERIFIED = Expect(200, (True, "received", False), None, processed=True)


def _unverified(reason: str) -> Expect:
    return Expect(200, (False, "received", False), reason)


_DUP_BODY: dict[str, bytes] = {}


def _dup_body(key: str) -> bytes:
    # The same decoded body for a case's earlier and later delivery.
    return _DUP_BODY.setdefault(key, _body())


_MADE_UP = [f"x-made-up-header-{i:03d}" for i in range(40)]


def _many_signed_names() -> Sent:
    """Signs (claims to) 44 headers, 40 of them absent: the reason must still fit its column
    and event (it once made the receiver answer 500 and store nothing)."""
    sent = delivery()
    names = ";".join(["content-type", "host", "x-icims-content-sha256", "x-icims-date", *_MADE_UP])
    auth = sent.headers["Authorization"]
    start = auth.index("signedheaders=") + len("signedheaders=")
    sent.headers["Authorization"] = auth[:start] + names + auth[auth.index(",", start) :]
    return sent


def _bomb() -> Sent:
    return delivery(b'{"pad": "' + b"0" * 1_000_000 + b'"}')  # ~1 MB decoded, ~1 KB sent


CASES = [
    Case("valid gzip, hash over the decoded body", lambda: delivery(), VERIFIED),
    Case("valid gzip, hash over the gzip bytes", lambda: delivery(hash_over_raw=True), VERIFIED),
    Case("valid plain body", lambda: delivery(gzip_it=False), VERIFIED),
    Case(
        "wrong secret",
        lambda: delivery(secret="somebody-elses-secret-0123456789abcdef"),
        _unverified("signature mismatch"),
    ),
    Case(
        "body altered after signing",
        lambda: delivery(raw=gzip.compress(_body())),
        _unverified("body does not match x-icims-content-sha256"),
    ),
    Case(
        "Authorization header missing",
        lambda: delivery(drop=["Authorization"]),
        _unverified("missing or malformed Authorization header"),
    ),
    Case(
        "x-icims-date header missing",
        lambda: delivery(drop=["x-icims-date"]),
        _unverified("signed headers absent: x-icims-date"),
    ),
    Case(
        "x-icims-content-sha256 header missing",
        lambda: delivery(drop=["x-icims-content-sha256"]),
        _unverified("signed headers absent: x-icims-content-sha256"),
    ),
    Case(
        "Content-Type header missing",
        lambda: delivery(drop=["Content-Type"]),
        _unverified("signed headers absent: content-type"),
    ),
    Case(
        "40 signed headers absent",
        _many_signed_names,
        _unverified(f"signed headers absent: {', '.join(_MADE_UP)}"[:200]),
    ),
    Case(
        "date 5 min 1 s ahead",
        lambda: delivery(
            date=_whole_second(datetime.now(UTC), up=True) + timedelta(minutes=5, seconds=1)
        ),
        _unverified("x-icims-date more than 5 minutes from receipt"),
    ),
    Case(
        "date 5 min 1 s behind",
        lambda: delivery(
            date=_whole_second(datetime.now(UTC), up=False) - timedelta(minutes=5, seconds=1)
        ),
        _unverified("x-icims-date more than 5 minutes from receipt"),
    ),
    Case(
        "date 4 min 59 s ahead",
        lambda: delivery(
            date=_whole_second(datetime.now(UTC), up=False) + timedelta(minutes=4, seconds=59)
        ),
        VERIFIED,
    ),
    Case(
        "date 4 min 59 s behind",
        lambda: delivery(
            date=_whole_second(datetime.now(UTC), up=True) - timedelta(minutes=4, seconds=59)
        ),
        VERIFIED,
    ),
    Case(
        "signature for another host",
        lambda: delivery(signed_host="hooks.other-tenant.example"),
        _unverified("signature mismatch"),
    ),
    Case(
        "duplicate: the same body again, plain this time",
        lambda: delivery(_dup_body("dup"), gzip_it=False),
        Expect(200, (True, "processed", True)),
        before=[(lambda: delivery(_dup_body("dup")), True)],
    ),
    Case(
        "the same body after an unsigned copy is not a duplicate",
        lambda: delivery(_dup_body("forged")),
        VERIFIED,
        before=[(lambda: delivery(_dup_body("forged"), drop=["Authorization"]), False)],
    ),
    Case(
        "the same body more than 24 h later is not a duplicate",
        lambda: delivery(_dup_body("late")),
        VERIFIED,
        before=[(lambda: delivery(_dup_body("late")), True)],
        age_earlier=True,
    ),
    Case(
        "oversized body",
        lambda: delivery(json.dumps({**_payload(), "pad": "x" * 70_000}).encode(), gzip_it=False),
        Expect(413, None, "payload_too_large"),
    ),
    Case("oversized once decoded (gzip bomb)", _bomb, Expect(413, None, "payload_too_large")),
    Case(
        "malformed: not JSON",
        lambda: delivery(b"{this is not json"),
        Expect(400, (True, "failed", False), "malformed_webhook"),
    ),
    Case(
        "malformed: JSON but not an object",
        lambda: delivery(b'["WorkFlowStatusChangeEvent"]'),
        Expect(400, (True, "failed", False), "malformed_webhook"),
    ),
    Case(
        "malformed: corrupt gzip",
        lambda: delivery(raw=gzip.compress(_body())[:12] + b"garbage-not-deflate"),
        Expect(400, (False, "failed", False), "malformed_webhook"),
    ),
    Case(
        "malformed: truncated gzip",
        lambda: delivery(raw=gzip.compress(_body())[:-6]),
        Expect(400, (False, "failed", False), "malformed_webhook"),
    ),
    Case(
        "malformed: unsupported content-encoding",
        lambda: delivery(gzip_it=False, encoding="br"),
        Expect(400, (True, "failed", False), "malformed_webhook"),
    ),
]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []

    async def __call__(self, session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        self.seen.append(delivery.id)
        return []


def _stored_id(r: httpx.Response) -> uuid.UUID | None:
    body = r.json()
    if r.status_code == 200:
        return uuid.UUID(body["id"])
    details = body.get("error", {}).get("details", {})
    return uuid.UUID(details["id"]) if "id" in details else None


async def _count(sessions) -> int:
    async with sessions() as s:
        return int((await s.execute(text("SELECT count(*) FROM webhook_events"))).scalar_one())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_delivery_matrix(case: Case, sessions, integrations) -> None:
    should_process: list[uuid.UUID] = []
    for make, processed in case.before:
        sent = make()
        earlier = await integrations.post(PATH, content=sent.raw, headers=sent.headers)
        assert earlier.status_code == 200, earlier.text
        if processed:
            should_process.append(uuid.UUID(earlier.json()["id"]))
    if case.age_earlier:
        async with unit_of_work(sessions) as s:
            await s.execute(
                text("UPDATE webhook_events SET received_at = received_at - interval '25 hours'")
            )
    rows_before = await _count(sessions)

    sent = case.send()
    r = await integrations.post(PATH, content=sent.raw, headers=sent.headers)

    expect = case.expect
    assert r.status_code == expect.http, r.text
    webhook_id = _stored_id(r)
    if expect.stored is None:
        assert webhook_id is None and await _count(sessions) == rows_before
        assert r.json()["error"]["code"] == expect.reason
    else:
        assert webhook_id is not None
        row = await state(sessions, webhook_id)
        assert (row.verified, row.status, row.duplicate_of is not None) == expect.stored
        assert row.raw_body == sent.raw  # kept exactly as it came
        if expect.http == 200:
            answer = r.json()
            assert (answer["verified"], answer["duplicate"]) == (
                expect.stored[0],
                expect.stored[2],
            )
            assert row.verification_error == expect.reason
        else:
            assert r.json()["error"]["code"] == expect.reason
            assert row.last_error.startswith("unreadable delivery")
        if expect.stored[2]:
            assert row.duplicate_of == should_process[0]
        if expect.processed:
            should_process.append(webhook_id)

    recorder = Recorder()
    await process_batch(sessions, recorder, batch_size=50)
    assert sorted(recorder.seen) == sorted(should_process)
    if webhook_id is not None:
        after = await state(sessions, webhook_id)
        assert after.status == ("processed" if expect.processed else expect.stored[1])


# --- the fake iCIMS's own sender, to a real HTTP server ----------------------------------------


@pytest.fixture(scope="module")
def icims_url() -> Iterator[str]:
    with serve_in_thread(create_icims()) as url:
        yield url


@pytest.fixture(scope="module")
def receiver(integrations_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(integrations_settings), lifespan="on") as url:
        yield url


async def _send(icims_url: str, receiver: str, payload: dict[str, object], secret: str) -> dict:
    async with httpx.AsyncClient(base_url=icims_url, timeout=10) as control:
        sent = await control.post(
            "/_sandbox/send-webhook",
            json={"url": f"{receiver}{PATH}", "secret": secret, "payload": payload},
        )
    assert sent.status_code == 200, sent.text
    return dict(sent.json())


@pytest.mark.parametrize(
    ("secret", "verified"),
    [(WEBHOOK_SECRET, True), ("not-the-configured-secret-0123456789abcd", False)],
    ids=["right secret", "wrong secret"],
)
async def test_fake_icims_sender_delivery_is_stored_and_processed_once(
    secret: str, verified: bool, sessions, icims_url: str, receiver: str
) -> None:
    payload = _payload()
    first = await _send(icims_url, receiver, payload, secret)
    again = await _send(icims_url, receiver, payload, secret)  # iCIMS delivers it twice
    assert (first["status"], again["status"]) == (200, 200)
    first_id = uuid.UUID(json.loads(first["body"])["id"])
    again_id = uuid.UUID(json.loads(again["body"])["id"])
    row, copy = await state(sessions, first_id), await state(sessions, again_id)
    assert (row.verified, row.status, row.duplicate_of) == (verified, "received", None)
    # An unverified copy is never a duplicate (nor an original): both wait for re-verification.
    assert copy.verified is verified
    assert copy.duplicate_of == (first_id if verified else None)
    assert row.headers["content-encoding"] == "gzip"

    recorder = Recorder()
    await process_batch(sessions, recorder, batch_size=50)
    assert recorder.seen == ([first_id] if verified else [])
