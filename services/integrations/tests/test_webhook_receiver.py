"""`POST /api/webhooks/icims`: every delivery stored with the outcome the runbook promises."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integrations_service.webhooks.verify import sign
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import WEBHOOK_SECRET

SIGNED = ["content-type", "host", "x-icims-content-sha256", "x-icims-date"]


def status_change(**extra: object) -> bytes:
    payload = {
        "customerId": "1234",
        "eventType": "WorkFlowStatusChangeEvent",
        "systemId": f"W{uuid.uuid4().hex[:8]}",
        "newStatus": {"id": "C51218"},
        "oldStatus": {"id": "C100"},
        "personId": "P1",
        "jobId": "J1",
        "userId": "U1",
        "links": [],
        **extra,
    }
    return json.dumps(payload).encode()


def signed(
    body: bytes,
    *,
    gzip_it: bool = True,
    secret: str = WEBHOOK_SECRET,
    date: datetime | None = None,
    host: str = "hooks.example.com",
) -> tuple[bytes, dict[str, str]]:
    raw = gzip.compress(body) if gzip_it else body
    headers = {
        "content-type": "application/json",
        "host": host,
        "x-icims-date": (date or datetime.now(UTC)).isoformat(),
        "x-icims-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if gzip_it:
        headers["content-encoding"] = "gzip"
    signature = sign(secret, "POST", "/api/webhooks/icims", "", headers, SIGNED)
    headers["authorization"] = (
        f"x-icims-v1-hmac-sha256 user=icims,signedheaders={';'.join(SIGNED)},signature={signature}"
    )
    return raw, headers


async def row(db: str, webhook_id: str) -> dict:
    engine = create_async_engine(db)
    async with engine.connect() as conn:
        r = (
            (
                await conn.execute(
                    text("SELECT * FROM webhook_events WHERE id = :i"), {"i": uuid.UUID(webhook_id)}
                )
            )
            .mappings()
            .one()
        )
        events = (
            (
                await conn.execute(
                    text("SELECT body FROM outbox WHERE body->>'subject' = :i"), {"i": webhook_id}
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    return {**r, "events": events}


async def count(db: str, where: str = "true") -> int:
    engine = create_async_engine(db)
    async with engine.connect() as conn:
        n = (
            await conn.execute(text(f"SELECT count(*) FROM webhook_events WHERE {where}"))
        ).scalar_one()
    await engine.dispose()
    return int(n)


async def test_signed_gzip_delivery_is_stored_verified_and_left_for_processing(
    integrations, integrations_db
) -> None:
    raw, headers = signed(status_change())
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True and r.json()["duplicate"] is False
    stored = await row(integrations_db, r.json()["id"])
    assert stored["status"] == "received" and stored["verified"] is True
    assert stored["event_type"] == "application.status_changed"
    assert stored["customer_id"] == "1234" and stored["raw_body"] == raw
    assert stored["headers"]["x-icims-date"] == headers["x-icims-date"]
    assert [e["type"] for e in stored["events"]] == ["integrations.webhook.received.v1"]
    assert stored["events"][0]["data"]["verified"] is True


async def test_plain_body_verifies_too(integrations) -> None:
    raw, headers = signed(status_change(), gzip_it=False)
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["verified"] is True


async def test_wrong_secret_is_stored_unverified_and_never_queued(
    integrations, integrations_db
) -> None:
    raw, headers = signed(status_change(), secret="somebody-elses-secret-0123456789abcdef")
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["verified"] is False
    stored = await row(integrations_db, r.json()["id"])
    assert stored["verification_error"] == "signature mismatch"
    assert stored["events"][0]["data"]["verification_error"] == "signature mismatch"


async def test_stale_date_is_stored_unverified(integrations, integrations_db) -> None:
    raw, headers = signed(status_change(), date=datetime.now(UTC) - timedelta(minutes=5, seconds=5))
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    stored = await row(integrations_db, r.json()["id"])
    assert stored["verified"] is False and "5 minutes" in stored["verification_error"]


async def test_signature_for_another_host_is_unverified(integrations) -> None:
    raw, headers = signed(status_change(), host="hooks.other.example")
    headers["host"] = "hooks.example.com"
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.json()["verified"] is False


async def test_duplicate_delivery_is_recorded_and_not_processed_twice(
    integrations, integrations_db
) -> None:
    body = status_change()
    first = await integrations.post(
        "/api/webhooks/icims", content=signed(body)[0], headers=signed(body)[1]
    )
    raw, headers = signed(body, gzip_it=False)  # the same decoded body, sent differently
    second = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert second.status_code == 200 and second.json()["duplicate"] is True
    dup = await row(integrations_db, second.json()["id"])
    assert str(dup["duplicate_of"]) == first.json()["id"] and dup["status"] == "processed"
    assert dup["events"][0]["data"]["duplicate"] is True


async def test_concurrent_copies_leave_exactly_one_to_process(
    integrations, integrations_db
) -> None:
    body = status_change()
    answers = await asyncio.gather(
        *(
            integrations.post(
                "/api/webhooks/icims", content=signed(body)[0], headers=signed(body)[1]
            )
            for _ in range(10)
        )
    )
    assert all(a.status_code == 200 for a in answers)
    assert sum(1 for a in answers if not a.json()["duplicate"]) == 1
    digest = hashlib.sha256(body).hexdigest()
    assert await count(integrations_db, f"body_sha256 = '{digest}' AND duplicate_of IS NULL") == 1


async def test_unparseable_body_is_stored_failed_and_answered_400(
    integrations, integrations_db
) -> None:
    raw, headers = signed(b"{this is not json")
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_webhook"
    stored = await row(integrations_db, r.json()["error"]["details"]["id"])
    assert stored["status"] == "failed" and stored["raw_body"] == raw
    assert stored["last_error"].startswith("unreadable delivery: not JSON")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "not JSON"),  # was a RecursionError: 500
        (status_change(note="a\u0000b"), "U+0000"),  # jsonb cannot hold it: was a 500
    ],
)
async def test_unstorable_json_is_stored_failed_and_answered_400(
    integrations, integrations_db, body: bytes, why: str
) -> None:
    raw, headers = signed(body)
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_webhook"
    stored = await row(integrations_db, r.json()["error"]["details"]["id"])
    assert stored["status"] == "failed" and stored["raw_body"] == raw
    assert why in stored["last_error"]


async def test_corrupt_gzip_is_stored_failed(integrations) -> None:
    raw, headers = signed(status_change())
    r = await integrations.post(
        "/api/webhooks/icims", content=raw[:20] + b"garbage", headers=headers
    )
    assert r.status_code == 400


async def test_oversized_body_is_413_and_not_stored(integrations, integrations_db) -> None:
    before = await count(integrations_db)
    raw, headers = signed(status_change(pad="x" * 70_000), gzip_it=False)
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert await count(integrations_db) == before


async def test_gzip_bomb_is_refused_without_inflating_it_all(integrations, integrations_db) -> None:
    before = await count(integrations_db)
    bomb = b'{"pad": "' + b"0" * 10_000_000 + b'"}'  # 10 MB of zeros: ~10 KB compressed
    raw, headers = signed(bomb)
    assert len(raw) < 64 * 1024
    r = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert r.status_code == 413
    assert await count(integrations_db) == before


async def test_receiver_answers_fast_even_unsigned(integrations: httpx.AsyncClient) -> None:
    r = await integrations.post(
        "/api/webhooks/icims", content=status_change(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200 and r.json()["verified"] is False


async def test_unsigned_copy_posted_first_cannot_swallow_the_genuine_delivery(
    integrations, integrations_db
) -> None:
    body = status_change()
    forged = await integrations.post(
        "/api/webhooks/icims",
        content=gzip.compress(body),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert forged.json()["verified"] is False
    raw, headers = signed(body)
    genuine = await integrations.post("/api/webhooks/icims", content=raw, headers=headers)
    assert genuine.json() == {"id": genuine.json()["id"], "verified": True, "duplicate": False}
    assert (await row(integrations_db, genuine.json()["id"]))["status"] == "received"
