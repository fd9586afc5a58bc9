"""The candidate's booking page in headless Chromium at a phone's size, against the real
processes: a coordinator opens a request through the API, then the candidate books from the
emailed link, reschedules with a reason, and cancels."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

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
PHONE = {"width": 390, "height": 844}
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        await b.close()


async def coordinator(system: RunningStack, email: str) -> httpx.AsyncClient:
    """Signed in through the sandbox provider, as a browser would, with its CSRF header set."""
    client = httpx.AsyncClient(base_url=system.url("gateway"))
    start = await client.get("/login/google")
    answer = await client.post(start.headers["location"], data={"sub": email})
    back = urlsplit(answer.headers["location"])
    done = await client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.text
    client.headers["X-CSRF-Token"] = client.cookies["csrf_token"]
    return client


async def open_request(system: RunningStack) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    client = await coordinator(system, "coordinator@globex.example")
    async with contextlib.aclosing(client):
        org = await client.post("/api/orgs", json={"name": "Globex", "defaultTimeZone": "UTC"})
        assert org.status_code == 201, org.text
        hours = await client.put(
            "/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": ALL_DAY}
        )
        assert hours.status_code == 200, hours.text
        r = await client.post(
            "/api/scheduling/requests",
            json={
                "candidate": {
                    "name": "Ada Lovelace",
                    "email": "ada@candidates.example",
                    "timeZone": "Europe/Berlin",
                },
                "title": "Platform engineer interview",
                # The sandbox tenant has every address at the organizer's domain (example.com).
                "interviewers": [{"email": "grace.hopper@example.com", "name": "Grace Hopper"}],
                "durationMinutes": 45,
                "windowStart": today.isoformat(),
                "windowEnd": (today + timedelta(days=10)).isoformat(),
                "minimumNoticeMinutes": 60,
                "cancelCutoffMinutes": 0,
            },
        )
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        created["_cookies"] = dict(client.cookies)
        return created


async def fits_the_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"


async def test_candidate_books_reschedules_and_cancels_on_a_phone(
    system: RunningStack, browser: Browser, tmp_path: Any
) -> None:
    created = await open_request(system)
    url = created["bookingUrl"]
    assert url.startswith(f"{system.url('gateway')}/book/")
    context = await browser.new_context(viewport=PHONE, timezone_id="America/New_York")
    page = await context.new_page()
    shots = os.environ.get("SCREENSHOTS")

    response = await page.goto(url)
    assert response is not None and response.headers["cache-control"] == "no-store"
    await expect(page.get_by_role("heading", name="Interview with Globex")).to_be_visible()
    await expect(page.get_by_label("Times are shown in")).to_have_value("Europe/Berlin")
    # The device is in New York: the page offers its zone (JavaScript, an enhancement only).
    await page.get_by_role("link", name="Show times in America/New York (your device)").click()
    await expect(page.get_by_label("Times are shown in")).to_have_value("America/New_York")
    await fits_the_phone(page)
    first = page.locator(".slots button").first
    box = await first.bounding_box()
    assert box is not None and box["height"] >= 44, box  # a thumb-sized target
    if shots:
        await page.screenshot(path=str(tmp_path / "times.png"), full_page=True)

    await first.click()
    await expect(page.get_by_role("heading", name="Confirm your interview")).to_be_visible()
    await expect(page.get_by_text(re.compile(r"hold expires in \d+ min"))).to_be_visible()
    await expect(page.get_by_text("(America/New_York)")).to_be_visible()
    await page.get_by_role("button", name="Confirm booking").click()
    await expect(page.get_by_role("heading", name="Your interview is booked")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("You are booked")
    await fits_the_phone(page)
    if shots:
        await page.screenshot(path=str(tmp_path / "booked.png"), full_page=True)

    await page.get_by_role("link", name="Reschedule").click()
    await expect(page.get_by_role("heading", name="Choose a new time")).to_be_visible()
    await page.locator(".slots button").nth(3).click()
    await expect(page.get_by_role("heading", name="Confirm your new time")).to_be_visible()
    await page.get_by_label(re.compile("Reason for the change")).fill("A clash with an exam")
    await page.get_by_role("button", name="Confirm new time").click()
    await expect(page.get_by_role("status")).to_contain_text("Your interview has been moved")

    await page.get_by_role("link", name="Cancel interview").click()
    await expect(page.get_by_role("heading", name="Cancel your interview?")).to_be_visible()
    await page.get_by_label(re.compile("Reason")).fill("I accepted another offer")
    await page.get_by_role("button", name="Cancel interview").click()
    await expect(page.get_by_role("status")).to_contain_text("Your interview is cancelled")
    await expect(page.get_by_role("heading", name="Choose a time")).to_be_visible()
    await context.close()

    async with httpx.AsyncClient(
        base_url=system.url("gateway"), cookies=created["_cookies"]
    ) as client:
        stored = (await client.get(f"/api/scheduling/requests/{created['id']}")).json()
    assert stored["status"] == "open"
    assert stored["booking"]["status"] == "cancelled"
    assert stored["booking"]["cancelReason"] == "I accepted another offer"
    assert stored["rescheduleCount"] == 1
