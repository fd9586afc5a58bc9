"""JSON log lines carry the ids of what is being handled (trace, request, org, event), and no
personal data beyond ids."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from fastapi import APIRouter
from scheduler_contracts import Envelope
from scheduler_contracts.topology import Topology
from servicekit.app import build_app
from servicekit.identity import CurrentIdentity
from servicekit.logs import configure_logging
from servicekit.settings import KitSettings
from servicekit.telemetry import tracer_provider
from servicekit.testing.helpers import app_client, user_headers
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import KitDb, sample_event
from .test_consumer import _consumer, _publish, _wait_for

log = logging.getLogger("kit.logs.test")
TRACE_ID = re.compile(r"[0-9a-f]{32}")
EMAIL = "ada.lovelace@candidates.test"

Lines = Callable[[], list[dict[str, Any]]]


class LogSettings(KitSettings):
    service_name: ClassVar[str] = "kitlogs"


@pytest.fixture
def json_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lines]:
    """What `configure_logging` writes in production (JSON lines on stdout), parsed."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    configure_logging("kitlogs", json_lines=True)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def _app():
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(who: CurrentIdentity) -> dict[str, str]:
        log.info("answering")
        return {"subject": who.subject}

    @router.get("/boom")
    async def boom(who: CurrentIdentity) -> None:
        raise RuntimeError("internals")

    return build_app(LogSettings(env="test"), title="t", routers=[router], with_database=False)


def _one(lines: list[dict[str, Any]], message: str) -> dict[str, Any]:
    found = [line for line in lines if line["message"] == message]
    assert len(found) == 1, lines
    return found[0]


async def test_request_log_lines_carry_trace_request_org_and_user_ids_but_no_email(
    json_lines: Lines,
) -> None:
    org, user = uuid.uuid4(), uuid.uuid4()
    headers = {
        **user_headers(org_id=org, user_id=user, email=EMAIL),
        "X-Request-ID": "req-42.a",
    }
    async with app_client(_app()) as client:
        assert (await client.get("/whoami", headers=headers)).status_code == 200
        assert (await client.get("/boom", headers=headers)).status_code == 500
    lines = json_lines()
    answered = _one(lines, "answering")
    assert answered["request_id"] == "req-42.a"
    assert answered["org_id"] == str(org) and answered["user_id"] == str(user)
    assert TRACE_ID.fullmatch(answered["trace_id"])
    assert answered["service"] == "kitlogs" and answered["level"] == "info"
    # Starlette answers an unhandled error outside every middleware: the ids are still there.
    failed = _one(lines, "unhandled error")
    assert failed["request_id"] == "req-42.a" and failed["org_id"] == str(org)
    assert TRACE_ID.fullmatch(failed["trace_id"])
    assert failed["trace_id"] != answered["trace_id"]
    assert all(EMAIL not in json.dumps(line) for line in lines)


async def test_a_request_id_that_is_not_a_plain_token_is_replaced(json_lines: Lines) -> None:
    headers = {**user_headers(org_id=uuid.uuid4()), "X-Request-ID": f"{EMAIL} \n forged=1"}
    async with app_client(_app()) as client:
        await client.get("/whoami", headers=headers)
        await client.get("/whoami", headers=user_headers(org_id=uuid.uuid4()))
    first, second = [line for line in json_lines() if line["message"] == "answering"]
    assert re.fullmatch(r"[0-9a-f]{32}", first["request_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", second["request_id"])
    assert first["request_id"] != second["request_id"]  # one per request, never inherited


async def test_a_consumers_log_lines_carry_the_event_org_subject_and_trace(
    json_lines: Lines, clean_db: KitDb, topology: Topology, amqp
) -> None:
    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        log.warning("handling it")

    consumer = _consumer(clean_db, topology, handler)
    consumer.tracer = tracer_provider("kitlogs").get_tracer("test")
    event = sample_event().model_copy(update={"subject": str(uuid.uuid4())})
    await consumer.start(amqp)
    try:
        await _publish(amqp, topology, event)
        await _wait_for(lambda: _done(consumer.stats.handled == 1))
    finally:
        await consumer.stop()
    line = _one(json_lines(), "handling it")
    assert line["event_id"] == str(event.id) and line["event_type"] == event.type
    assert line["org_id"] == str(event.org_id) and line["subject"] == event.subject
    assert line["correlation_id"] == str(event.correlation_id)
    assert TRACE_ID.fullmatch(line["trace_id"])


async def _done(value: bool) -> bool:
    return value
