"""Ops' read models: heartbeats (newest wins) and the timeline (no bearer links kept)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
from ops_service.heartbeats.handlers import record_heartbeat
from ops_service.settings import Settings
from ops_service.timeline.handlers import record_event
from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Candidate, Interviewer
from scheduler_contracts.events.scheduling import RequestCreated
from scheduler_contracts.events.workers import heartbeat_class
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import service_headers, user_headers


def _beat(instance: str, sent_at: datetime, state: str = "running", mode: str = "loop") -> Envelope:
    data = heartbeat_class("integrations")(
        service="integrations",
        worker="scheduler-sync",
        instance_id=instance,
        mode=mode,
        state=state,
        interval_seconds=5.0 if mode == "loop" else None,
        started_at=sent_at - timedelta(minutes=1),
        sent_at=sent_at,
        last_run_ok=True if mode == "once" else None,
    )
    return Envelope.build(data, source="integrations")


async def _apply(settings: Settings, handler, *envelopes: Envelope) -> None:
    engine = create_engine(settings.sqlalchemy_url)
    sessions = create_sessionmaker(engine)
    for env in envelopes:
        async with unit_of_work(sessions) as session:
            await handler(session, env)
    await engine.dispose()


async def _workers(client: httpx.AsyncClient) -> dict[str, dict]:
    r = await client.get("/internal/heartbeats", headers=service_headers())
    assert r.status_code == 200
    return {w["instanceId"]: w for w in r.json()["items"]}


async def test_older_heartbeat_arriving_late_does_not_overwrite_newer(
    ops_settings, ops_client
) -> None:
    instance = f"host:1:{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    await _apply(
        ops_settings,
        record_heartbeat,
        _beat(instance, now),
        _beat(instance, now - timedelta(seconds=30), "starting"),
    )
    worker = (await _workers(ops_client))[instance]
    assert worker["state"] == "running"
    assert worker["alive"] is True
    assert worker["worker"] == "scheduler-sync"


async def test_worker_silent_for_more_than_three_intervals_is_not_alive(
    ops_settings, ops_client
) -> None:
    instance = f"host:2:{uuid.uuid4().hex[:6]}"
    await _apply(
        ops_settings, record_heartbeat, _beat(instance, datetime.now(UTC) - timedelta(seconds=16))
    )
    assert (await _workers(ops_client))[instance]["alive"] is False


async def test_once_run_is_judged_by_outcome_not_liveness(ops_settings, ops_client) -> None:
    instance = f"cron:3:{uuid.uuid4().hex[:6]}"
    await _apply(
        ops_settings,
        record_heartbeat,
        _beat(instance, datetime.now(UTC) - timedelta(hours=2), "finished", "once"),
    )
    worker = (await _workers(ops_client))[instance]
    assert worker["alive"] is None and worker["lastRunOk"] is True


async def test_heartbeats_endpoint_is_internal_only(ops_client) -> None:
    assert (await ops_client.get("/internal/heartbeats")).status_code == 401
    member = user_headers(org_id=uuid.uuid4(), role="admin")
    assert (await ops_client.get("/internal/heartbeats", headers=member)).status_code == 403


async def test_timeline_keeps_events_of_a_request_without_its_booking_link(
    ops_settings, ops_client
) -> None:
    org, request_id = uuid.uuid4(), uuid.uuid4()
    data = RequestCreated(
        request_id=request_id,
        title="Interview",
        candidate=Candidate(name="C", email="c@example.com", time_zone="UTC"),
        mode="panel",
        interviewers=[Interviewer(email="i@example.com")],
        duration_minutes=30,
        window_start=date(2031, 1, 1),
        window_end=date(2031, 1, 5),
        booking_url="https://x.example/book/secret-token",
    )
    env = Envelope.build(data, source="scheduling", org_id=org, subject=str(request_id))
    await _apply(ops_settings, record_event, env, env)  # the same event twice is kept once
    r = await ops_client.get(f"/internal/timeline/{org}/{request_id}", headers=service_headers())
    items = r.json()["items"]
    assert [i["type"] for i in items] == ["scheduling.request.created.v1"]
    assert "booking_url" not in items[0]["data"] and "secret-token" not in r.text
    other = await ops_client.get(
        f"/internal/timeline/{uuid.uuid4()}/{request_id}", headers=service_headers()
    )
    assert other.json()["items"] == []
