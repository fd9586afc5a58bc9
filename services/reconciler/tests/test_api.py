"""`GET /internal/jobs` for ops: the runbook's filters, pages, and internal callers only."""

from __future__ import annotations

from datetime import timedelta

from reconciler_service.app import create_app
from reconciler_service.detection.service import Detector
from reconciler_service.jobs.service import JobService
from reconciler_service.settings import Settings
from servicekit.testing.helpers import app_client, service_headers, user_headers
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .drift import World


async def test_jobs_are_listed_newest_first_with_filters_and_pages(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    reconciler_settings: Settings,
) -> None:
    world = World(sessions, jobs)
    for _ in range(3):
        request_id = await world.request(ago=timedelta(days=2))
        await world.book(request_id, ago=timedelta(days=2))
    await detector.run()  # 3 calendar_event_missing + 3 icims_note_missing
    headers = service_headers("ops")
    async with app_client(create_app(reconciler_settings)) as api:
        r = await api.get(
            "/internal/jobs", params={"jobType": "icims_note_missing"}, headers=headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert [j["jobType"] for j in body["items"]] == ["icims_note_missing"] * 3
        job = body["items"][0]
        assert job["status"] == "pending" and job["attempts"] == 0 and job["maxAttempts"] == 3
        assert job["lastError"] is None and job["nextAttemptAt"] is not None

        seen, cursor = [], None
        while True:
            params = {"status": "pending,processing", "limit": "4"}
            if cursor:
                params["cursor"] = cursor
            page = (await api.get("/internal/jobs", params=params, headers=headers)).json()
            seen += [j["id"] for j in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 6

        bad = await api.get("/internal/jobs", params={"status": "stuck"}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"
        member = user_headers(org_id=world.org, role="admin")
        assert (await api.get("/internal/jobs", headers=member)).status_code == 403
        assert (await api.get("/internal/jobs")).status_code == 401
