"""`/settings/integrations`: an org admin reads and changes the org's Microsoft 365 and iCIMS
connection with a plain form, through the real integrations service (in process) talking to the
sandbox Graph and iCIMS. Secrets are write-only; every refusal is a readable page."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from html import unescape
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from gateway_service.app import create_app
from pydantic import SecretStr
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.icims import create_app as create_icims
from scheduler_sandbox.server import serve_in_thread
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import MakeDatabase

from .conftest import GatewayFactory, Member, echo_service, gateway_settings

BASE = "http://gw.example"
ORGANIZER = "scheduling@example.com"  # the installation's default organizer mailbox
GRAPH_SECRET = "graph-secret-never-shown-0123456789"
ICIMS_SECRET = "icims-secret-never-shown-0123456789"
WEBHOOK_SECRET = "webhook-secret-never-shown-0123456789"


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="module")
def icims_url() -> Iterator[str]:
    with serve_in_thread(create_icims()) as url:
        yield url


@pytest.fixture(scope="module")
async def integrations_app(
    make_database: MakeDatabase, graph_url: str, icims_url: str
) -> AsyncIterator[FastAPI]:
    """The real integrations service; the installation's defaults point at the sandbox."""
    from integrations_service.app import create_app as create_integrations
    from integrations_service.settings import Settings as IntegrationsSettings

    url = await make_database("gateway_integrations", "integrations_service:migrations")
    app = create_integrations(
        IntegrationsSettings(
            env="test",
            database_url=url,
            graph_base_url=graph_url,
            graph_static_token=SecretStr("sandbox-token"),
            graph_organizer_mailbox=ORGANIZER,
            graph_max_retries=0,  # a faulted Graph answers at once
            icims_base_url=icims_url,
            icims_customer_id="9000",
            icims_client_id="install",
            icims_client_secret=SecretStr("install-secret"),
        )
    )
    async with app.router.lifespan_context(app):
        yield app


Client = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway_with_integrations(
    gateway_db: str, oidc_issuer: str, integrations_app: FastAPI
) -> Client:
    @asynccontextmanager
    async def make() -> AsyncIterator[httpx.AsyncClient]:
        settings = gateway_settings(gateway_db, oidc_issuer, BASE)
        echo = httpx.ASGITransport(app=echo_service())
        transports: dict[str, httpx.AsyncBaseTransport] = {s: echo for s in settings.service_urls()}
        transports["integrations"] = httpx.ASGITransport(app=integrations_app)
        async with app_client(create_app(settings, transports=transports), base_url=BASE) as c:
            yield c

    return make


def _as(client: httpx.AsyncClient, who: Member) -> None:
    client.cookies.clear()
    client.cookies.update(who.cookies)


class _Form(HTMLParser):
    """What a browser would submit from the settings form, untouched."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.fields = action, False, {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif tag == "input" and self.inside and a.get("name"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def form_of(html: str, action: str = "/settings/integrations") -> dict[str, str]:
    parser = _Form(action)
    parser.feed(html)
    return parser.fields


def field_block(html: str, name: str) -> str:
    """The markup of one field (label, input, hint, error) on the page."""
    for block in html.split('<div class="field">')[1:]:
        if f'name="{name}"' in block:
            return unescape(block.split("</div>")[0])
    raise AssertionError(f"no field {name}")


async def _api_settings(client: httpx.AsyncClient) -> dict:
    r = await client.get("/api/integrations/settings")
    assert r.status_code == 200, r.text
    return r.json()


async def test_admin_sees_both_connections_with_their_source_and_state(
    gateway_with_integrations: Client, seed
) -> None:
    admin = await seed(new_org=True)
    async with gateway_with_integrations() as client:
        _as(client, admin)
        page = await client.get("/settings/integrations")
        home = await client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-store"
    html = unescape(page.text)
    assert "Microsoft 365 (Graph)" in html and "iCIMS" in html
    assert html.count("uses this installation's defaults") == 2
    assert html.count("<strong>Configured</strong>") == 2
    assert f'value="{ORGANIZER}"' in field_block(html, "graph_organizer_mailbox")
    assert 'value="9000"' in field_block(html, "icims_customer_id")
    secret = field_block(html, "graph_client_secret")
    assert 'type="password" value=""' in secret and "set — leave empty to keep" in secret
    # The installation's app secret is not the org's to remove.
    assert "remove" not in secret
    assert "Not tested yet." in html
    # Linked from the header menu and the home page for admins.
    assert 'href="/settings/integrations"' in page.text
    assert 'href="/settings/integrations"' in home.text


async def test_members_get_the_admin_refusal_and_anonymous_visitors_sign_in(
    gateway_with_integrations: Client, seed
) -> None:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id)
    async with gateway_with_integrations() as client:
        assert (await client.get("/settings/integrations")).headers["location"] == "/login"
        _as(client, member)
        page = await client.get("/settings/integrations")
        assert page.status_code == 403 and "Only an organization admin" in page.text
        assert ORGANIZER not in page.text
        saved = await client.post(
            "/settings/integrations",
            data={"csrf_token": member.csrf, "graph_organizer_mailbox": "mine@example.com"},
        )
        tested = await client.post("/settings/integrations/test", data={"csrf_token": member.csrf})
        home = await client.get("/")
    assert saved.status_code == 403 and "Only an organization admin" in saved.text
    assert tested.status_code == 403 and "Only an organization admin" in tested.text
    assert 'href="/settings/integrations"' not in home.text


async def test_save_round_trip_shows_the_values_and_never_a_secret(
    gateway_with_integrations: Client, seed
) -> None:
    admin = await seed(new_org=True)
    customer = f"C{uuid.uuid4().hex[:8]}"
    async with gateway_with_integrations() as client:
        _as(client, admin)
        form = form_of((await client.get("/settings/integrations")).text)
        form.update(
            graph_tenant_id="contoso.onmicrosoft.com",
            graph_client_id="11111111-2222-3333-4444-555555555555",
            graph_client_secret=GRAPH_SECRET,
            graph_organizer_mailbox="Recruiting@Contoso.com",
            icims_customer_id=customer,
            icims_client_id="contoso-icims",
            icims_client_secret=ICIMS_SECRET,
            icims_webhook_secret=WEBHOOK_SECRET,
            icims_note_field="schedulingnotes",
        )
        r = await client.post("/settings/integrations", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/settings/integrations?saved=1"
        page = await client.get(r.headers["location"])
        html = unescape(page.text)
        stored = await _api_settings(client)

        # Submitting the page again as it is changes nothing and keeps every secret.
        again = await client.post("/settings/integrations", data=form_of(page.text))
        unchanged = await client.get(again.headers["location"])
        # "remove" clears only the Graph secret.
        remove = {**form_of(page.text), "graph_client_secret_remove": "1"}
        removed = await client.post("/settings/integrations", data=remove)
        after = await client.get(removed.headers["location"])
        stored_after = await _api_settings(client)

    assert "Saved." in html
    assert html.count("uses your organization's own settings") == 2
    assert 'value="recruiting@contoso.com"' in field_block(html, "graph_organizer_mailbox")
    assert f'value="{customer}"' in field_block(html, "icims_customer_id")
    assert 'value="schedulingnotes"' in field_block(html, "icims_note_field")
    for name in ("graph_client_secret", "icims_client_secret", "icims_webhook_secret"):
        assert "set — leave empty to keep" in field_block(html, name)
        assert "remove the stored secret" in field_block(html, name)
    for secret in (GRAPH_SECRET, ICIMS_SECRET, WEBHOOK_SECRET):
        assert secret not in page.text and secret not in after.text
    assert stored["graph"]["clientSecretSet"] and stored["icims"]["webhookSecretSet"]
    assert stored["icims"]["customerId"] == customer

    assert "Nothing to save" in unchanged.text
    assert removed.headers["location"] == "/settings/integrations?saved=1"
    assert "not set" in field_block(unescape(after.text), "graph_client_secret")
    assert stored_after["graph"]["clientSecretSet"] is False
    assert stored_after["icims"]["clientSecretSet"] is True
    assert stored_after["icims"]["webhookSecretSet"] is True


async def test_changing_only_the_mailbox_keeps_the_installations_app(
    gateway_with_integrations: Client, seed
) -> None:
    admin = await seed(new_org=True)
    async with gateway_with_integrations() as client:
        _as(client, admin)
        form = form_of((await client.get("/settings/integrations")).text)
        form["graph_organizer_mailbox"] = "talent@example.com"
        r = await client.post("/settings/integrations", data=form)
        assert r.status_code == 303
        stored = await _api_settings(client)
    # The install's ids shown on the page were not copied into the org's own settings.
    assert stored["graph"]["source"] == "default" and stored["graph"]["configured"]
    assert stored["graph"]["organizerMailbox"] == "talent@example.com"
    assert stored["icims"]["source"] == "default"


async def test_another_orgs_admin_does_not_see_this_orgs_values(
    gateway_with_integrations: Client, seed
) -> None:
    mine = await seed(new_org=True)
    theirs = await seed(new_org=True)
    customer = f"C{uuid.uuid4().hex[:8]}"
    async with gateway_with_integrations() as client:
        _as(client, mine)
        form = form_of((await client.get("/settings/integrations")).text)
        form.update(graph_organizer_mailbox="private@mine.example", icims_customer_id=customer)
        assert (await client.post("/settings/integrations", data=form)).status_code == 303
        _as(client, theirs)
        page = await client.get("/settings/integrations")
    assert page.status_code == 200
    assert "private@mine.example" not in page.text and customer not in page.text
    assert f'value="{ORGANIZER}"' in field_block(page.text, "graph_organizer_mailbox")


async def test_invalid_values_are_shown_next_to_their_fields_and_nothing_is_saved(
    gateway_with_integrations: Client, seed
) -> None:
    admin = await seed(new_org=True)
    async with gateway_with_integrations() as client:
        _as(client, admin)
        form = form_of((await client.get("/settings/integrations")).text)
        form.update(
            graph_organizer_mailbox="not-an-address",
            graph_client_secret=GRAPH_SECRET,
            icims_webhook_secret="short",
            icims_note_field="notes",
        )
        r = await client.post("/settings/integrations", data=form)
        stored = await _api_settings(client)
    assert r.status_code == 422 and "Traceback" not in r.text
    html = unescape(r.text)
    mailbox = field_block(html, "graph_organizer_mailbox")
    assert 'value="not-an-address"' in mailbox and 'aria-invalid="true"' in mailbox
    assert "Not a valid mailbox address." in mailbox
    webhook = field_block(html, "icims_webhook_secret")
    assert 'id="icims_webhook_secret-error">A webhook secret needs at least 16' in webhook
    assert 'class="error"' not in field_block(html, "icims_note_field")
    assert 'value="notes"' in field_block(html, "icims_note_field")  # what was typed is kept
    assert "Nothing was saved" in html and "type them once more" in html
    assert GRAPH_SECRET not in r.text and 'value="short"' not in r.text
    assert stored["graph"]["organizerMailbox"] == ORGANIZER and stored["icims"]["noteField"] is None


async def test_an_icims_customer_of_another_org_is_a_clear_conflict(
    gateway_with_integrations: Client, seed
) -> None:
    first = await seed(new_org=True)
    second = await seed(new_org=True)
    customer = f"C{uuid.uuid4().hex[:8]}"
    async with gateway_with_integrations() as client:
        for who in (first, second):
            _as(client, who)
            form = form_of((await client.get("/settings/integrations")).text)
            form["icims_customer_id"] = customer
            r = await client.post("/settings/integrations", data=form)
    assert r.status_code == 409
    field = field_block(unescape(r.text), "icims_customer_id")
    assert "already connected to another organization" in field
    assert f'value="{customer}"' in field


async def test_test_button_shows_each_checks_outcome_and_latency(
    gateway_with_integrations: Client, seed, graph_url: str
) -> None:
    admin = await seed(new_org=True)
    async with gateway_with_integrations() as client:
        _as(client, admin)
        r = await client.post("/settings/integrations/test", data={"csrf_token": admin.csrf})
        later = await client.get("/settings/integrations")
        async with httpx.AsyncClient(base_url=graph_url) as sandbox:
            await sandbox.post("/_sandbox/faults", json={"status": 503})
            try:
                failed = await client.post(
                    "/settings/integrations/test", data={"csrf_token": admin.csrf}
                )
            finally:
                await sandbox.post("/_sandbox/faults", json={"clear": True})
    assert r.status_code == 200 and "Connection test finished" in r.text
    html = unescape(r.text)
    graph = re.search(r'id="graph-test">(.*?)</p>', html, re.S)
    icims = re.search(r'id="icims-test">(.*?)</p>', html, re.S)
    assert graph and icims
    assert "<strong>OK</strong>" in graph[1] and f"{ORGANIZER} is reachable" in graph[1]
    assert re.search(r"\(\d+ ms\)", graph[1]) and "UTC" in graph[1]
    assert "<strong>OK</strong>" in icims[1] and "credentials accepted" in icims[1]
    assert "Last test" in later.text and "<strong>OK</strong>" in later.text
    failed_graph = re.search(r'id="graph-test">(.*?)</p>', unescape(failed.text), re.S)
    assert failed.status_code == 200 and failed_graph
    assert (
        "<strong>Failed</strong>" in failed_graph[1]
        and "Microsoft Graph answered" in failed_graph[1]
    )


async def test_forms_without_a_csrf_token_are_refused(
    gateway_with_integrations: Client, seed
) -> None:
    admin = await seed(new_org=True)
    async with gateway_with_integrations() as client:
        _as(client, admin)
        form = form_of((await client.get("/settings/integrations")).text)
        del form["csrf_token"]
        form["graph_organizer_mailbox"] = "hijacked@example.com"
        saved = await client.post("/settings/integrations", data=form)
        tested = await client.post("/settings/integrations/test")
        stored = await _api_settings(client)
    for r in (saved, tested):
        assert r.status_code == 403 and "text/html" in r.headers["content-type"]
        assert "CSRF" in r.text and "Traceback" not in r.text
    assert stored["graph"]["organizerMailbox"] == ORGANIZER and stored["lastTest"] is None


async def test_integrations_down_is_a_clear_page_never_a_500(gateway: GatewayFactory, seed) -> None:
    admin = await seed(new_org=True)
    async with gateway(down=True) as client:
        _as(client, admin)
        page = await client.get("/settings/integrations")
        saved = await client.post(
            "/settings/integrations",
            data={"csrf_token": admin.csrf, "graph_organizer_mailbox": "a@example.com"},
        )
        tested = await client.post("/settings/integrations/test", data={"csrf_token": admin.csrf})
    assert page.status_code == 503 and "cannot be loaded right now" in page.text
    for r in (page, saved, tested):
        assert r.status_code == 503 and "integrations service is unavailable" in r.text


async def test_an_unexpected_answer_from_integrations_is_a_readable_page(
    gateway: GatewayFactory, seed
) -> None:
    # The stand-in upstream echoes the request back: not the settings the page expects.
    admin = await seed(new_org=True)
    async with gateway() as client:
        _as(client, admin)
        page = await client.get("/settings/integrations")
    assert page.status_code == 502 and "unexpected answer" in page.text
