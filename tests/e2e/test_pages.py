"""The web UI in headless Chromium against the real processes: sign in through the sandbox
provider's page, create an org, invite a colleague, sign in as them, accept, switch org."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator

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
# Flags for a closed network: no background fetches, no component updates (env skill notes).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


async def test_sign_in_create_org_invite_accept_and_switch(
    system: RunningStack, browser: Browser, tmp_path
) -> None:
    base = system.url("gateway")
    alice_ctx = await browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    alice = await alice_ctx.new_page()
    await sign_in(alice, base, "alice@acme.example")
    await expect(alice.get_by_role("heading", name="Welcome, Alice")).to_be_visible()
    await alice.get_by_label("Organization name").fill("Acme Recruiting")
    await alice.get_by_role("button", name="Create organization").click()
    await expect(alice.get_by_role("heading", name="Acme Recruiting")).to_be_visible()

    # Integrations, from the header menu: the install's sandbox connections pass the test.
    await alice.locator("details.menu > summary").click()
    await alice.get_by_role("link", name="Integrations", exact=True).click()
    await expect(alice.get_by_role("group", name="Microsoft 365 (Graph)")).to_be_visible()
    await alice.get_by_role("button", name="Test connections").click()
    await expect(alice.locator("#graph-test")).to_contain_text("OK")
    await expect(alice.locator("#icims-test")).to_contain_text("OK")

    # A scheduling request from the header's nav: an interviewer from the directory, created,
    # and its detail page with the candidate's link.
    await alice.get_by_role("link", name="Requests", exact=True).click()
    await alice.get_by_role("link", name="New request").click()
    await alice.get_by_label("Name", exact=True).fill("Grace Hopper")
    await alice.get_by_label("Email", exact=True).fill("grace@candidates.example")
    await alice.get_by_label("Title").fill("Compiler interview")
    await alice.get_by_label("Search the directory").fill("avery")
    await alice.get_by_role("button", name="Search", exact=True).click()
    await alice.get_by_role("button", name=re.compile(r"^Add Avery Chen")).click()
    await alice.get_by_role("button", name="Create request").click()
    await expect(alice.get_by_role("heading", name=re.compile("Grace Hopper"))).to_be_visible()
    await expect(alice.locator("#notice")).to_contain_text("emailed to grace@candidates.example")
    assert (await alice.locator("#booking-link").input_value()).startswith(f"{base}/book/")
    if os.environ.get("SCREENSHOTS"):
        await alice.screenshot(path=str(tmp_path / "request.png"), full_page=True)

    await alice.goto(f"{base}/settings/members")
    await alice.get_by_label("Email address").fill("bob@acme.example")
    await alice.get_by_role("button", name="Create invitation link").click()
    link = await alice.locator("#invite-link").input_value()
    assert link.startswith(f"{base}/invitations/")
    if os.environ.get("SCREENSHOTS"):
        await alice.screenshot(path=str(tmp_path / "invited.png"), full_page=True)

    bob_ctx = await browser.new_context()
    bob = await bob_ctx.new_page()
    await sign_in(bob, base, "bob@acme.example")
    await bob.get_by_label("Organization name").fill("Bob's Studio")
    await bob.get_by_role("button", name="Create organization").click()
    await expect(bob.get_by_role("heading", name="Bob's Studio")).to_be_visible()

    await bob.goto(link)
    await bob.get_by_role("button", name="Accept invitation").click()
    await expect(bob.get_by_role("heading", name="Acme Recruiting")).to_be_visible()

    # The header's switcher: changing it submits the form (the button is the no-JS fallback).
    await bob.get_by_label("Organization").select_option(label="Bob's Studio")
    await expect(bob.get_by_role("heading", name="Bob's Studio")).to_be_visible()
    await bob.get_by_label("Organization").select_option(label="Acme Recruiting")
    await expect(bob.get_by_role("heading", name="Acme Recruiting")).to_be_visible()

    await alice.goto(f"{base}/settings/members")
    await expect(alice.get_by_role("cell", name="bob@acme.example", exact=True)).to_be_visible()

    await bob.locator("details.menu > summary").click()  # open the user menu
    await bob.get_by_role("button", name="Sign out").click()
    await expect(bob.get_by_text("You are signed out.")).to_be_visible()
    await alice_ctx.close()
    await bob_ctx.close()
