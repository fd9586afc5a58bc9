"""Retrying stored deliveries: re-verification after the secret is fixed, fresh attempts for a
failed one. Against the real database, the real receiver and the real processor."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.settings import Settings
from integrations_service.webhooks.process import Delivery, process_batch
from integrations_service.webhooks.receive import store
from integrations_service.webhooks.reverify import (
    handle_webhook_retry_requested,
    retry_webhook,
    reverify,
)
from integrations_service.webhooks.verify import verify
from pydantic import SecretStr
from scheduler_contracts import Envelope
from scheduler_contracts.events.common import UserRef
from scheduler_contracts.events.ops import WebhookRetryRequested
from scheduler_sandbox.icims_signing import sign_headers
from servicekit.db import unit_of_work
from servicekit.testing.helpers import app_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import WEBHOOK_SECRET, due_now, events, state

HOST = "hooks.example.com"
PATH = "/api/webhooks/icims"
# What ICIMS_WEBHOOK_SECRET was set to before someone noticed it was not iCIMS's secret.
STALE_SECRET = "the-secret-before-it-was-fixed-0123456789"


def _body() -> bytes:
    return json.dumps(
        {
            "customerId": "1234",
            "eventType": "WorkFlowStatusChangeEvent",
            "systemId": f"W{uuid.uuid4().hex[:10]}",
            "newStatus": {"id": "C51218"},
        }
    ).encode()


def _signed(body: bytes, *, date: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """As iCIMS sends it: gzip'd, signed with iCIMS's secret (WEBHOOK_SECRET) by the sandbox's
    own signer (written apart from our verifier)."""
    headers = sign_headers(
        secret=WEBHOOK_SECRET,
        method="POST",
        host=HOST,
        path=PATH,
        query="",
        body_sha256=hashlib.sha256(body).hexdigest(),
        date=date,
    )
    return gzip.compress(body), {**headers, "Content-Encoding": "gzip"}


@pytest.fixture(scope="module")
async def misconfigured(integrations_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The receiver while ICIMS_WEBHOOK_SECRET was wrong."""
    settings = integrations_settings.model_copy(
        update={"icims_webhook_secret": SecretStr(STALE_SECRET)}
    )
    async with app_client(create_app(settings), base_url=f"http://{HOST}") as client:
        yield client


async def _post(client: httpx.AsyncClient, raw: bytes, headers: dict[str, str]) -> uuid.UUID:
    r = await client.post(PATH, content=raw, headers=headers)
    assert r.status_code == 200, r.text
    return uuid.UUID(r.json()["id"])


class Recorder:
    """A translation that records what the processor handed it and succeeds."""

    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []

    async def __call__(self, session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        self.seen.append(delivery.id)
        return []


async def _process(sessions) -> list[uuid.UUID]:
    recorder = Recorder()
    await process_batch(sessions, recorder, batch_size=50)
    return recorder.seen


async def _retry(sessions, webhook_id: uuid.UUID, secret: str = WEBHOOK_SECRET):
    async with unit_of_work(sessions) as session:
        return await retry_webhook(session, webhook_id, secret=secret)


async def test_wrong_secret_at_receipt_is_stored_unverified_and_not_processed(
    sessions, misconfigured
) -> None:
    webhook_id = await _post(misconfigured, *_signed(_body()))
    row = await state(sessions, webhook_id)
    assert (row.verified, row.status, row.verification_error) == (
        False,
        "received",
        "signature mismatch",
    )
    assert await _process(sessions) == []
    assert (await state(sessions, webhook_id)).status == "received"


async def test_after_the_secret_is_fixed_a_retry_verifies_it_and_it_is_processed(
    sessions, misconfigured
) -> None:
    webhook_id = await _post(misconfigured, *_signed(_body()))
    assert await _process(sessions) == []

    outcome = await _retry(sessions, webhook_id, secret=WEBHOOK_SECRET)

    assert (outcome.result, outcome.verified, outcome.status) == ("verified", True, "received")
    row = await state(sessions, webhook_id)
    assert (row.verified, row.verification_error, row.status, row.duplicate_of) == (
        True,
        None,
        "received",
        None,
    )
    announced = await events(sessions, webhook_id)
    assert [t for t, _ in announced] == ["integrations.webhook.received.v1"] * 2
    assert [d["verified"] for _, d in announced] == [False, True]
    assert announced[1][1]["received_at"] == announced[0][1]["received_at"]

    assert await _process(sessions) == [webhook_id]
    assert (await state(sessions, webhook_id)).status == "processed"


async def test_a_retry_with_the_still_wrong_secret_keeps_it_unverified(
    sessions, misconfigured
) -> None:
    webhook_id = await _post(misconfigured, *_signed(_body()))
    outcome = await _retry(sessions, webhook_id, secret="yet-another-wrong-secret-0123456789")
    assert (outcome.result, outcome.reason) == ("unverified", "signature mismatch")
    assert await _process(sessions) == []


async def test_a_delivery_received_long_ago_verifies_against_the_time_it_was_received(
    sessions, integrations_settings: Settings
) -> None:
    received_at = datetime.now(UTC) - timedelta(hours=3)
    raw, headers = _signed(_body(), date=received_at)  # dated when iCIMS sent it
    stale = integrations_settings.model_copy(
        update={"icims_webhook_secret": SecretStr(STALE_SECRET)}
    )
    async with unit_of_work(sessions) as session:
        stored = await store(
            session,
            stale,
            method="POST",
            path=PATH,
            query="",
            headers={k.lower(): v for k, v in headers.items()},
            raw=raw,
            received_at=received_at,
        )
    assert stored.verified is False
    # Checked against now, the date is hours off:
    now_verdict = verify(
        secret=WEBHOOK_SECRET,
        method="POST",
        path=PATH,
        query="",
        headers=headers,
        bodies=[raw, gzip.decompress(raw)],
        received_at=datetime.now(UTC),
    )
    assert now_verdict.reason == "x-icims-date more than 5 minutes from receipt"

    outcome = await _retry(sessions, stored.id)

    assert outcome.result == "verified"
    assert await _process(sessions) == [stored.id]


async def test_a_date_already_stale_at_receipt_stays_unverified(sessions, misconfigured) -> None:
    raw, headers = _signed(_body(), date=datetime.now(UTC) - timedelta(minutes=6))
    webhook_id = await _post(misconfigured, raw, headers)
    outcome = await _retry(sessions, webhook_id)
    assert (outcome.result, outcome.reason) == (
        "unverified",
        "x-icims-date more than 5 minutes from receipt",
    )
    row = await state(sessions, webhook_id)
    assert row.verified is False and row.verification_error == outcome.reason
    assert await _process(sessions) == []


async def test_a_tampered_body_stays_unverified(sessions, misconfigured) -> None:
    body = _body()
    _, headers = _signed(body)
    tampered = gzip.compress(body.replace(b"C51218", b"C99999"))
    webhook_id = await _post(misconfigured, tampered, headers)

    outcome = await _retry(sessions, webhook_id)

    assert (outcome.result, outcome.verified) == ("unverified", False)
    assert outcome.reason == "body does not match x-icims-content-sha256"
    row = await state(sessions, webhook_id)
    assert (row.verified, row.verification_error) == (False, outcome.reason)
    announced = await events(sessions, webhook_id)
    assert announced[-1][1]["verified"] is False
    assert announced[-1][1]["verification_error"] == outcome.reason
    assert await _process(sessions) == []


async def test_a_failed_delivery_retried_gets_fresh_attempts_and_is_processed(
    sessions, integrations
) -> None:
    webhook_id = await _post(integrations, *_signed(_body()))

    async def broken(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        raise RuntimeError(f"iCIMS down (attempt {delivery.attempts})")

    for _ in range(3):
        await process_batch(sessions, broken, batch_size=10)
        await due_now(sessions)
    failed = await state(sessions, webhook_id)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert await _process(sessions) == []  # failed for good until someone retries

    outcome = await _retry(sessions, webhook_id)

    assert (outcome.result, outcome.status) == ("requeued", "received")
    row = await state(sessions, webhook_id)
    assert (row.status, row.attempts) == ("received", 0)
    assert row.last_error == "RuntimeError: iCIMS down (attempt 3)"  # until the next outcome
    assert await _process(sessions) == [webhook_id]
    done = await state(sessions, webhook_id)
    assert (done.status, done.attempts) == ("processed", 1)
    assert (await events(sessions, webhook_id))[-1][0] == "integrations.webhook.processed.v1"


async def test_a_reverified_copy_of_a_delivery_verified_since_is_only_a_duplicate(
    sessions, misconfigured, integrations
) -> None:
    body = _body()
    early = await _post(misconfigured, *_signed(body))  # while the secret was wrong
    resent = await _post(integrations, *_signed(body))  # iCIMS resent it after the fix
    assert await _process(sessions) == [resent]

    outcome = await _retry(sessions, early)

    assert (outcome.result, outcome.duplicate_of) == ("duplicate", resent)
    row = await state(sessions, early)
    assert (row.verified, row.status, row.duplicate_of) == (True, "processed", resent)
    announced = (await events(sessions, early))[-1][1]
    assert announced["duplicate"] is True and announced["duplicate_of"] == str(resent)
    assert await _process(sessions) == []


async def test_a_reverified_delivery_more_than_a_day_from_its_copy_is_not_a_duplicate(
    sessions, integrations_settings: Settings, integrations
) -> None:
    body = _body()
    received_at = datetime.now(UTC) - timedelta(hours=25)
    raw, headers = _signed(body, date=received_at)
    stale = integrations_settings.model_copy(
        update={"icims_webhook_secret": SecretStr(STALE_SECRET)}
    )
    async with unit_of_work(sessions) as session:
        old = await store(
            session,
            stale,
            method="POST",
            path=PATH,
            query="",
            headers={k.lower(): v for k, v in headers.items()},
            raw=raw,
            received_at=received_at,
        )
    recent = await _post(integrations, *_signed(body))
    assert (await _retry(sessions, old.id)).result == "verified"
    assert sorted(await _process(sessions)) == sorted([old.id, recent])


async def test_retrying_what_is_verified_and_not_failed_changes_nothing(
    sessions, integrations
) -> None:
    webhook_id = await _post(integrations, *_signed(_body()))
    before = await events(sessions, webhook_id)
    outcome = await _retry(sessions, webhook_id)
    assert (outcome.result, outcome.status, outcome.reason) == (
        "nothing_to_do",
        "received",
        "waiting for the processor",
    )
    async with unit_of_work(sessions) as session:
        again = await reverify(session, webhook_id, secret=WEBHOOK_SECRET)
    assert again.result == "already_verified"
    await _process(sessions)
    assert (await _retry(sessions, webhook_id)).reason == "already processed"
    assert len(await events(sessions, webhook_id)) == len(before) + 1  # only processed.v1
    assert (await _retry(sessions, uuid.uuid4())).result == "not_found"


async def test_an_operators_retry_request_re_verifies_the_named_delivery(
    sessions, misconfigured, integrations_settings: Settings
) -> None:
    webhook_id = await _post(misconfigured, *_signed(_body()))
    request = Envelope.build(
        WebhookRetryRequested(
            webhook_id=webhook_id,
            requested_by=UserRef(user_id=uuid.uuid4(), email="ops@example.com"),
            provider="icims",
        ),
        source="ops",
        subject=str(webhook_id),
    )
    async with unit_of_work(sessions) as session:
        # The secret in force now (integrations_settings) is iCIMS's.
        await handle_webhook_retry_requested(session, request, integrations_settings)

    assert (await state(sessions, webhook_id)).verified is True
    async with sessions() as session:
        caused = (
            await session.execute(
                text(
                    "SELECT body FROM outbox WHERE body->>'subject' = :s "
                    "AND body->>'causation_id' = :c"
                ),
                {"s": str(webhook_id), "c": str(request.id)},
            )
        ).scalar_one()
    assert caused["type"] == "integrations.webhook.received.v1"
    assert caused["correlation_id"] == str(request.correlation_id)
    assert await _process(sessions) == [webhook_id]
