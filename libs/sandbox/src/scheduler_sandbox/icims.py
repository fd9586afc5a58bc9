"""Fake iCIMS: the endpoints we use, speaking iCIMS's wire format, with faults and a quota.

- `POST /oauth/token` (client credentials) → a bearer token; every API call requires one.
- `GET|PATCH /customers/{cid}/applicantworkflows/{id}` (status moves: `{"status": {"id": …}}`;
  notes: a list PATCHed into a field group adds entries, as integrators write notes),
  `GET /customers/{cid}/people/{id}`, `GET /customers/{cid}/jobs/{id}`.
- Errors as iCIMS sends them: status + `{"errors": [{"errorMessage", "errorCode"}]}`.
- A daily request quota per customer (429 when spent), fault injection per customer or global.
- Control: `GET /_sandbox/state`, `POST /_sandbox/reset`, `POST /_sandbox/faults`,
  `POST /_sandbox/seed` (workflows, people, jobs), `POST /_sandbox/send-webhook` (signs and
  gzips a notification and posts it to a URL exactly as iCIMS does).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from scheduler_sandbox.faults import Faults
from scheduler_sandbox.icims_signing import sign_headers


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"errorMessage": message, "errorCode": code}]}, status)


class IcimsState:
    def __init__(self, daily_quota: int = 10_000) -> None:
        self.daily_quota = daily_quota
        self.reset()

    def reset(self) -> None:
        self.tokens: set[str] = set()
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.people: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        self.patches: list[dict[str, Any]] = []
        self.next_entry = 1000
        self.faults = Faults()


def create_app(daily_quota: int = 10_000, *, auto_provision: bool = False) -> FastAPI:
    """`auto_provision` (the `make up` sandbox): an applicant workflow nobody seeded exists on
    first use, so a coordinator can type any application id and watch its notes arrive."""
    app = FastAPI(title="fake iCIMS")
    st = IcimsState(daily_quota)
    app.state.icims = st

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != "client_credentials" or not (
            form.get("client_id") or request.headers.get("authorization")
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        value = secrets.token_urlsafe(24)
        st.tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "bearer", "expires_in": 3600})

    async def guard(request: Request, cid: str) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or auth[7:] not in st.tokens:
            return _error(401, 3, "Access denied: missing or invalid bearer token")
        fault = await st.faults.apply(cid)
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            response = _error(fault.status, 0, "Injected fault")
            if headers:
                response.headers.update(headers)
            return response
        day = f"{cid}:{datetime.now(UTC).date()}"
        st.calls[day] = st.calls.get(day, 0) + 1
        if st.calls[day] > st.daily_quota:
            return _error(429, 0, "Daily API quota exceeded")
        return None

    @app.get("/customers/{cid}/applicantworkflows/{wid}")
    async def get_workflow(cid: str, wid: str, request: Request) -> JSONResponse:
        if (refused := await guard(request, cid)) is not None:
            return refused
        workflow = st.workflows.get((cid, wid))
        if workflow is None and auto_provision:
            workflow = st.workflows[(cid, wid)] = {"status": {"id": "C1", "value": "New"}}
        if workflow is None:
            return _error(404, 2, f"Applicant workflow {wid} not found")
        return JSONResponse(workflow)

    @app.patch("/customers/{cid}/applicantworkflows/{wid}")
    async def patch_workflow(cid: str, wid: str, request: Request) -> JSONResponse:
        if (refused := await guard(request, cid)) is not None:
            return refused
        workflow = st.workflows.get((cid, wid))
        if workflow is None and auto_provision:
            workflow = st.workflows[(cid, wid)] = {"status": {"id": "C1", "value": "New"}}
        if workflow is None:
            return _error(404, 2, f"Applicant workflow {wid} not found")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 1, "Request body is not JSON")
        if not isinstance(body, dict) or not body:
            return _error(400, 1, "Field required: at least one field to update")
        if "status" in body:
            status = body["status"]
            if not isinstance(status, dict) or not status.get("id"):
                return _error(400, 1, "Field required: status.id")
            workflow["status"] = {
                "id": str(status["id"]),
                "value": status.get("value", status["id"]),
            }
        for name, value in body.items():
            if name == "status":
                continue
            if isinstance(value, list):
                # A field group (how integrators write notes): entries without an `entry` id are
                # added, entries naming one replace it.
                group = workflow.setdefault(name, [])
                if not isinstance(group, list):
                    return _error(400, 1, f"Field {name} is not a field group")
                for item in value:
                    if not isinstance(item, dict):
                        return _error(400, 1, f"Field group {name}: entries are objects")
                    if "entry" in item:
                        found = next((e for e in group if e.get("entry") == item["entry"]), None)
                        if found is None:
                            return _error(
                                404, 2, f"Field group {name}: entry {item['entry']} not found"
                            )
                        found.update(item)
                    else:
                        st.next_entry += 1
                        group.append({"entry": st.next_entry, **item})
            else:
                workflow[name] = value
        st.patches.append({"customerId": cid, "workflowId": wid, "body": body})
        return JSONResponse({}, 200)

    @app.get("/customers/{cid}/people/{pid}")
    async def get_person(cid: str, pid: str, request: Request) -> JSONResponse:
        if (refused := await guard(request, cid)) is not None:
            return refused
        person = st.people.get((cid, pid))
        return JSONResponse(person) if person else _error(404, 2, f"Person {pid} not found")

    @app.get("/customers/{cid}/jobs/{jid}")
    async def get_job(cid: str, jid: str, request: Request) -> JSONResponse:
        if (refused := await guard(request, cid)) is not None:
            return refused
        job = st.jobs.get((cid, jid))
        return JSONResponse(job) if job else _error(404, 2, f"Job {jid} not found")

    # -- control ----------------------------------------------------------------------------

    @app.get("/_sandbox/state")
    async def state() -> dict[str, Any]:
        return {
            "workflows": [{"customerId": c, "id": w, **v} for (c, w), v in st.workflows.items()],
            "people": [{"customerId": c, "id": p, **v} for (c, p), v in st.people.items()],
            "jobs": [{"customerId": c, "id": j, **v} for (c, j), v in st.jobs.items()],
            "patches": st.patches,
            "calls": st.calls,
            "faults": st.faults.state(),
        }

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        st.reset()
        return {"status": "reset"}

    @app.post("/_sandbox/faults")
    async def faults(request: Request) -> dict[str, Any]:
        spec = await request.json()
        if spec.get("clear"):
            st.faults.clear()
        else:
            st.faults.add(spec)
        return {"faults": st.faults.state()}

    @app.post("/_sandbox/seed")
    async def seed(request: Request) -> dict[str, int]:
        data = await request.json()
        cid = str(data["customerId"])
        for w in data.get("workflows", []):
            st.workflows[(cid, str(w["id"]))] = {k: v for k, v in w.items() if k != "id"}
        for p in data.get("people", []):
            st.people[(cid, str(p["id"]))] = {k: v for k, v in p.items() if k != "id"}
        for j in data.get("jobs", []):
            st.jobs[(cid, str(j["id"]))] = {k: v for k, v in j.items() if k != "id"}
        return {"workflows": len(st.workflows), "people": len(st.people), "jobs": len(st.jobs)}

    @app.post("/_sandbox/send-webhook")
    async def send_webhook(request: Request) -> dict[str, Any]:
        """Sign, gzip and POST a notification as iCIMS does: `{url, secret, payload}`."""
        spec = await request.json()
        body = json.dumps(spec["payload"]).encode()
        raw = gzip.compress(body)
        url = httpx.URL(spec["url"])
        headers = sign_headers(
            secret=spec["secret"],
            method="POST",
            host=url.netloc.decode(),
            path=url.path,
            query=url.query.decode(),
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        headers["Content-Encoding"] = "gzip"
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(str(url), content=raw, headers=headers)
        return {"status": r.status_code, "body": r.text[:500]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="sandbox-icims")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument(
        "--no-provision", action="store_true", help="unknown workflows answer 404, as iCIMS does"
    )
    args = parser.parse_args()
    uvicorn.run(
        create_app(auto_provision=not args.no_provision),
        host=args.host,
        port=args.port,
        log_level="warning",
    )
