"""`/ops` in headless Chromium against the real processes: a superadmin watches the dashboard
turn Degraded as a webhook fails for good and a request is flagged (live, without reloading),
views the request with its cross-service timeline, dismisses it (scheduling clears the flag and
confirms), retries the webhook, and sees Healthy again.

The two failures are published onto the real broker as integrations and the reconciler publish
them (the webhook processor needs minutes of backoff to fail for good; the reconciler flags only
after its own retries): everything from there on is the real system.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from scheduler_contracts import TOPOLOGY, Envelope, Topology
from scheduler_contracts.events.common import ATTENTION_RECONCILIATION_FAILED
from scheduler_contracts.events.integrations import (
    WebhookFailed,
    WebhookProcessed,
    WebhookReceived,
)
from scheduler_contracts.events.reconciler import ReconcilerAttentionFlagged
from servicekit.broker import declare_topology, make_message

from .conftest import RunningStack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (make chromium)"
    ),
]
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUPERADMIN = "admin@example.com"  # the stack's default SUPERADMIN_EMAILS
LIVE = 12_000  # ms: the page polls every 5 s; events take a relay hop or two


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        await b.close()


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_role("button", name="Sign in with Google").click()
    await page.locator("input[name=sub]").fill(email)  # the sandbox provider's page
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(re.compile(re.escape(base) + r"/(onboarding)?$"))


async def publish(system: RunningStack, *envelopes: Envelope) -> None:
    """As the producing service's relay does: persistent, confirmed, on the events exchange."""
    topology = Topology(queues=TOPOLOGY.queues, prefix=system.env.get("BROKER_PREFIX", ""))
    connection = await aio_pika.connect(system.env["AMQP_URL"])
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchanges = await declare_topology(channel, topology, retry_delays_ms=[1000])
        for e in envelopes:
            await exchanges["events"].publish(
                make_message(e.model_dump_json().encode(), message_id=str(e.id), type_name=e.type),
                routing_key=e.type,
            )
    finally:
        await connection.close()


async def a_flagged_request(system: RunningStack) -> tuple[uuid.UUID, uuid.UUID]:
    """A real request, created by a coordinator through the gateway: (org id, request id)."""
    async with httpx.AsyncClient(base_url=system.url("gateway")) as client:
        start = await client.get("/login/google")
        answer = await client.post(start.headers["location"], data={"sub": "coord@ops.example"})
        back = httpx.URL(answer.headers["location"])
        await client.get(f"{back.path}?{back.query.decode()}")
        client.headers["X-CSRF-Token"] = client.cookies["csrf_token"]
        org = await client.post("/api/orgs", json={"name": "Ops Test Org"})
        assert org.status_code == 201, org.text
        today = datetime.now(UTC).date()
        created = await client.post(
            "/api/scheduling/requests",
            json={
                "candidate": {"name": "Ada", "email": "ada@example.com", "timeZone": "UTC"},
                "title": "Flagged onsite",
                "interviewers": [{"email": "grace@example.com"}],
                "durationMinutes": 45,
                "windowStart": (today + timedelta(days=3)).isoformat(),
                "windowEnd": (today + timedelta(days=9)).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
    return uuid.UUID(org.json()["id"]), uuid.UUID(created.json()["id"])


async def test_degraded_then_dismissed_and_retried_back_to_healthy(
    system: RunningStack, browser: Browser, tmp_path
) -> None:
    base = system.url("gateway")
    org_id, request_id = await a_flagged_request(system)
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, base, SUPERADMIN)
    await page.goto(f"{base}/ops")
    status = page.locator("#ops-status")
    await expect(status).to_have_text("Healthy", timeout=LIVE * 3)

    # A webhook runs out of attempts, the reconciler gives up on the request: Degraded, live.
    webhook = uuid.uuid4()
    received = WebhookReceived(
        webhook_id=webhook,
        provider="icims",
        verified=True,
        duplicate=False,
        received_at=datetime.now(UTC),
        event_type="application.status_changed",
    )
    failed = WebhookFailed(
        webhook_id=webhook,
        provider="icims",
        attempts=3,
        last_error="iCIMS answered 503",
        final=True,
    )
    flag = ReconcilerAttentionFlagged(
        request_id=request_id,
        reason=ATTENTION_RECONCILIATION_FAILED,
        source="reconciliation",
        attempts=5,
        last_error="iCIMS answered 503",
    )
    await publish(
        system,
        Envelope.build(received, source="integrations", subject=str(webhook)),
        Envelope.build(failed, source="integrations", subject=str(webhook)),
        Envelope.build(flag, source="reconciler", org_id=org_id, subject=str(request_id)),
    )
    await expect(status).to_have_text("Degraded", timeout=LIVE)
    reasons = page.locator(".banner .reasons")
    await expect(reasons).to_contain_text("1 webhook failure in the last 24 hours", timeout=LIVE)
    await expect(reasons).to_contain_text("1 request needs attention", timeout=LIVE)
    if os.environ.get("SCREENSHOTS"):
        await page.screenshot(path=str(tmp_path / "ops-degraded.png"), full_page=True)

    # Attention → View: the request as scheduling has it, and its timeline across services.
    await page.get_by_role("link", name="Attention", exact=True).click()
    short = str(request_id)[:8]
    await page.get_by_role("link", name=f"View request {short}").click()
    await expect(page.get_by_role("heading", name=f"Request {short}")).to_be_visible()
    await expect(page.get_by_text("Flagged onsite")).to_be_visible()
    timeline = page.locator("ol.timeline")
    await expect(timeline).to_contain_text("scheduling.request.created.v1")
    await expect(timeline).to_contain_text("reconciler.attention.flagged.v1")
    if os.environ.get("SCREENSHOTS"):
        await page.screenshot(path=str(tmp_path / "ops-view.png"), full_page=True)

    # Dismiss (a CSRF-protected form): scheduling clears the flag and confirms.
    await page.get_by_role("button", name="Dismiss").click()
    await expect(page.get_by_role("status")).to_contain_text("Dismissed")

    # Retry the webhook; integrations' successful processing arrives as its event.
    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await page.get_by_role("button", name=f"Retry {str(webhook)[:8]}").click()
    await expect(page.get_by_role("status").first).to_contain_text("Retry requested")
    processed = WebhookProcessed(webhook_id=webhook, provider="icims", attempts=1)
    await publish(system, Envelope.build(processed, source="integrations", subject=str(webhook)))

    await expect(status).to_have_text("Healthy", timeout=LIVE)
    await page.goto(f"{base}/ops/requests/{request_id}")
    await expect(page.get_by_text("scheduling cleared the flag")).to_be_visible(timeout=LIVE)
    with contextlib.suppress(Exception):
        await context.close()
