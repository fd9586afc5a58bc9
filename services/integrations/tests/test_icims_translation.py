"""Status changes re-read through the real adapter (httpx) from the fake iCIMS, and the fake's
signed, gzip'd sender delivering to the real receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.clients import Clients
from integrations_service.connections.service import ConnectionResolver
from integrations_service.icims.client import IcimsClient, IcimsNotFound
from integrations_service.settings import Settings
from integrations_service.webhooks.process import process_batch
from integrations_service.webhooks.translate import Translator
from pydantic import SecretStr
from scheduler_sandbox.icims import create_app as create_icims
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine

from .conftest import WEBHOOK_SECRET, add, due_now, events, state

CUSTOMER = "1234"
ORG = uuid.uuid4()


@pytest.fixture(scope="module")
def icims_url() -> Iterator[str]:
    with serve_in_thread(create_icims()) as url:
        yield url


@pytest.fixture
async def icims(icims_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=icims_url) as control:
        await control.post("/_sandbox/reset")
        await control.post(
            "/_sandbox/seed",
            json={
                "customerId": CUSTOMER,
                "workflows": [
                    {
                        "id": "W1",
                        "status": {"id": "C51218", "value": "Schedule Interview"},
                        "associatedprofile": {"id": 77, "profile": "…/people/77"},
                        "baseprofile": {"id": 88},
                        "unknownField": {"nested": True},
                    }
                ],
                "people": [
                    {
                        "id": "77",
                        "firstname": "Ada",
                        "lastname": "Lovelace",
                        "email": "ada@example.com",
                    }
                ],
                "jobs": [{"id": "88", "jobtitle": "Platform Engineer", "jobnumber": "REQ-88"}],
            },
        )
        yield control


@pytest.fixture
async def translator(
    icims_url: str, integrations_settings: Settings, integrations_db: str
) -> AsyncIterator[Translator]:
    # The install's single-company connection from the environment (no org row of its own).
    settings = integrations_settings.model_copy(
        update={
            "icims_customer_id": CUSTOMER,
            "icims_org_id": ORG,
            "icims_base_url": icims_url,
            "icims_client_id": "scheduler",
            "icims_client_secret": SecretStr("secret"),
        }
    )
    engine = create_engine(integrations_db)
    clients = Clients(settings, engine)
    yield Translator(ConnectionResolver(settings), clients)
    await clients.aclose()
    await engine.dispose()


def _payload(workflow: str = "W1") -> dict:
    return {
        "customerId": CUSTOMER,
        "eventType": "WorkFlowStatusChangeEvent",
        "systemId": workflow,
        "newStatus": {"id": "C51218"},
        "oldStatus": {"id": "C100"},
        "userId": "U9",
    }


async def test_status_change_is_re_read_and_published_as_a_contract_event(
    sessions, icims, translator
) -> None:
    (webhook_id,) = await add(sessions, payload=_payload())
    summary = await process_batch(sessions, translator, batch_size=10)
    assert summary.processed == 1
    published = [(t, d) for t, d in await events(sessions, webhook_id)]
    assert [t for t, _ in published] == ["integrations.webhook.processed.v1"]
    # The fact itself is about the workflow, not the delivery:
    facts = await events(sessions, f"icims:{CUSTOMER}:W1")
    assert [t for t, _ in facts] == ["integrations.icims.application_status_changed.v1"]
    fact = facts[0][1]
    assert fact["current_status_name"] == "Schedule Interview" and fact["new_status_id"] == "C51218"
    assert fact["person"] == {
        "icims_person_id": "77",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
    }
    assert fact["job"]["title"] == "Platform Engineer" and fact["webhook_id"] == str(webhook_id)


async def test_icims_outage_is_retried_then_processed(sessions, icims, translator) -> None:
    (webhook_id,) = await add(sessions, payload=_payload())
    await icims.post("/_sandbox/faults", json={"status": 503, "count": 1})
    await process_batch(sessions, translator, batch_size=10)
    row = await state(sessions, webhook_id)
    assert row.status == "received" and "iCIMS 503" in row.last_error
    assert (await events(sessions, webhook_id))[0][1]["error_code"] == "icims_unavailable"
    await due_now(sessions)
    await process_batch(sessions, translator, batch_size=10)
    assert (await state(sessions, webhook_id)).status == "processed"


async def test_unknown_workflow_fails_after_three_attempts(sessions, icims, translator) -> None:
    (webhook_id,) = await add(sessions, payload=_payload("W404"))
    for _ in range(3):
        await process_batch(sessions, translator, batch_size=10)
        await due_now(sessions)
    row = await state(sessions, webhook_id)
    assert row.status == "failed" and row.attempts == 3 and "not found" in row.last_error


async def test_adapter_reuses_its_token_and_parses_leniently(icims_url, icims) -> None:
    async with httpx.AsyncClient() as http:
        client = IcimsClient(
            base_url=icims_url,
            token_url=f"{icims_url}/oauth/token",
            client_id="c",
            client_secret="s",
            http=http,
        )
        first = await client.get_workflow(CUSTOMER, "W1")
        await client.get_workflow(CUSTOMER, "W1")
        assert (first.status_id, first.person_id, first.job_id) == ("C51218", "77", "88")
        with pytest.raises(IcimsNotFound):
            await client.get_workflow(CUSTOMER, "nope")
        await client.set_workflow_status(CUSTOMER, "W1", "C60000")
        assert (await client.get_workflow(CUSTOMER, "W1")).status_id == "C60000"
    seen = (await icims.get("/_sandbox/state")).json()
    assert seen["patches"] == [
        {"customerId": CUSTOMER, "workflowId": "W1", "body": {"status": {"id": "C60000"}}}
    ]


async def test_fake_icims_sender_is_verified_by_the_real_receiver(
    icims, integrations_settings: Settings, integrations_db: str
) -> None:
    app = create_app(integrations_settings)
    with serve_in_thread(app, lifespan="on") as receiver:
        sent = await icims.post(
            "/_sandbox/send-webhook",
            json={
                "url": f"{receiver}/api/webhooks/icims",
                "secret": WEBHOOK_SECRET,
                "payload": {**_payload(), "nonce": uuid.uuid4().hex},
            },
        )
        await asyncio.sleep(0)
    answer = sent.json()
    assert answer["status"] == 200, answer
    assert '"verified":true' in answer["body"].replace(" ", "")


@pytest.mark.parametrize(
    ("provider_type", "fact_type", "subject", "check"),
    [
        (
            "PersonUpdateEvent",
            "integrations.icims.candidate_updated.v1",
            f"icims:{CUSTOMER}:person:77",
            lambda d: d["person"]["email"] == "ada@example.com",
        ),
        (
            "JobUpdateEvent",
            "integrations.icims.requisition_updated.v1",
            f"icims:{CUSTOMER}:job:88",
            lambda d: d["job"]["title"] == "Platform Engineer",
        ),
    ],
)
async def test_profile_and_job_updates_are_re_read_and_published(
    sessions, icims, translator, provider_type, fact_type, subject, check
) -> None:
    from integrations_service.webhooks.receive import EVENT_TYPES

    payload = {
        "customerId": CUSTOMER,
        "eventType": provider_type,
        "personId": "77",
        "jobId": "88",
    }
    (webhook_id,) = await add(sessions, payload=payload, event_type=EVENT_TYPES[provider_type])
    summary = await process_batch(sessions, translator, batch_size=10)
    assert summary.processed == 1
    facts = await events(sessions, subject)
    assert [t for t, _ in facts] == [fact_type]
    assert check(facts[0][1]) and facts[0][1]["webhook_id"] == str(webhook_id)
