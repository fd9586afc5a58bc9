"""The fake iCIMS's `make up` convenience: workflows nobody seeded exist on first use (tests
keep iCIMS's own 404)."""

from __future__ import annotations

import contextlib

import httpx
from scheduler_sandbox.icims import create_app


async def _client(auto: bool) -> httpx.AsyncClient:
    app = create_app(auto_provision=auto)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://icims")
    token = (
        await client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": "c"}
        )
    ).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


async def test_unknown_workflow_is_404_unless_the_sandbox_provisions_it() -> None:
    strict = await _client(False)
    async with contextlib.aclosing(strict):
        r = await strict.get("/customers/1000/applicantworkflows/W9")
        assert r.status_code == 404 and r.json()["errors"][0]["errorCode"] == 2
    lenient = await _client(True)
    async with contextlib.aclosing(lenient):
        assert (await lenient.get("/customers/1000/applicantworkflows/W9")).status_code == 200
        note = {"schedulingnotes": [{"note": "Interview booked"}]}
        assert (
            await lenient.patch("/customers/1000/applicantworkflows/W10", json=note)
        ).status_code == 200
        got = (await lenient.get("/customers/1000/applicantworkflows/W10")).json()
        assert got["schedulingnotes"][0]["note"] == "Interview booked"
