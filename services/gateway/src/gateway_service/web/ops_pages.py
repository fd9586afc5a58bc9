"""`/ops`: the operators' dashboard (superadmin only), over ops' `/api/ops/*`.

Server-rendered and complete without JavaScript: the status banner with its reasons, the
runbook's key metrics with their thresholds, worker liveness, and the lists (Attention,
Webhooks, Reconciliation, Dead letters) with the runbook's filters as a plain GET form; every
action (dismiss, retry, redrive) is a POST form with the CSRF token. `static/ops.js` only adds
live updates: every 5 s it fetches `/ops/live` (the same fragments, rendered here) and swaps them
in. View (`/ops/requests/{id}`) shows a flagged request with its cross-service timeline (ops)
beside the request as scheduling has it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from servicekit import identity as tokens
from servicekit.errors import AppError

from gateway_service.auth.context import Auth, authenticate, require_csrf
from gateway_service.upstream import call
from gateway_service.web import ops_view as v
from gateway_service.web.render import message, page

router = APIRouter(include_in_schema=False)

# What a form's hidden `back` may carry to the page it returns to.
_BACK_KEYS = ("tab", "status", "provider", "jobType", "action")


async def _operator(request: Request) -> Auth | Response:
    auth = await authenticate(request)
    if auth is None:
        return RedirectResponse("/login", status_code=303)
    if not auth.superadmin:
        return await message(
            request,
            "Not available",
            "Only a superadmin can open the operations dashboard.",
            status_code=403,
            link=("/", "Back to start"),
        )
    return auth


async def _dashboard(request: Request, auth: Auth) -> tuple[dict[str, Any], int]:
    """Everything the page and its live fragments show, and the status to answer with."""
    params = request.query_params
    tab = v.tab_of(params)
    try:
        health = await call(request, auth, "ops", "GET", "/api/ops/health")
    except AppError as exc:
        health = {"status": "critical", "reasons": [f"Ops is unavailable: {exc.message}"]}
    items: list[dict[str, Any]] = []
    next_cursor, error, status = None, None, 200
    broker = None
    try:
        listed = await call(request, auth, "ops", "GET", f"{tab.api}?{v.api_query(tab, params)}")
        items, next_cursor = list(listed["items"]), listed.get("nextCursor")
        broker = listed.get("broker")
    except AppError as exc:
        error, status = exc.message, (400 if exc.status == 400 else 200)
    metrics = health.get("metrics") or {}
    return (
        {
            "v": v,
            "tab": tab,
            "health": health,
            "metrics": metrics,
            "workers": metrics.get("workers") or {},
            "items": items,
            "broker": broker,
            "error": error,
            "chosen": v.chosen(tab, params),
            "next_href": (
                f"/ops?{v.page_query(tab, params, cursor=next_cursor)}" if next_cursor else None
            ),
            "first_href": f"/ops?{v.page_query(tab, params, cursor=None)}"
            if params.get("cursor")
            else None,
            "back": v.page_query(tab, params, cursor=None),
            "live_href": f"/ops/live?{v.page_query(tab, params)}",
            "notice": v.NOTICES.get(str(params.get("notice") or "")),
            "csrf": auth.session.csrf_token if auth.session else "",
        },
        status,
    )


@router.get("/ops", response_class=HTMLResponse)
async def ops_page(request: Request) -> Response:
    auth = await _operator(request)
    if not isinstance(auth, Auth):
        return auth
    context, status = await _dashboard(request, auth)
    return await page(request, "ops.html", status, **context)


@router.get("/ops/live", response_class=HTMLResponse)
async def ops_live(request: Request) -> Response:
    """The page's changing parts, for `static/ops.js` (same access as the page)."""
    auth = await authenticate(request)
    if auth is None or not auth.superadmin:
        return Response(status_code=401 if auth is None else 403)
    context, status = await _dashboard(request, auth)
    return await page(request, "ops_live.html", status, **context)


# -- actions (POST forms with the CSRF token) --------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    async with request.form() as form:
        return {k: val for k, val in form.items() if isinstance(val, str)}


def _back(form: dict[str, str], notice: str) -> RedirectResponse:
    kept = [(k, val) for k, val in parse_qsl(form.get("back", "")[:1000]) if k in _BACK_KEYS]
    return RedirectResponse(f"/ops?{urlencode([*kept, ('notice', notice)])}", status_code=303)


async def _act(request: Request, api_path: str, notice: str, body: Any = None) -> Response:
    auth = await _operator(request)
    if not isinstance(auth, Auth):
        return auth
    try:
        await require_csrf(request, auth)
        form = await _form(request)
        await call(request, auth, "ops", "POST", api_path, body(form) if body else None)
    except AppError as exc:
        return await message(
            request,
            "That did not work",
            exc.message,
            status_code=exc.status,
            link=("/ops", "Back to operations"),
        )
    return _back(form, notice)


def _note(form: dict[str, str]) -> dict[str, Any]:
    note = form.get("note", "").strip()[:1000]
    return {"note": note} if note else {}


@router.post("/ops/attention/{request_id}/dismiss")
async def dismiss(request: Request, request_id: uuid.UUID) -> Response:
    return await _act(request, f"/api/ops/attention/{request_id}/dismiss", "dismissed", _note)


@router.post("/ops/webhooks/{webhook_id}/retry")
async def retry_webhook(request: Request, webhook_id: uuid.UUID) -> Response:
    return await _act(request, f"/api/ops/webhooks/{webhook_id}/retry", "webhook-retry")


@router.post("/ops/reconciliation/{job_id}/retry")
async def retry_job(request: Request, job_id: uuid.UUID) -> Response:
    return await _act(request, f"/api/ops/reconciliation/{job_id}/retry", "job-retry")


@router.post("/ops/dlq/{queue}/redrive")
async def redrive(request: Request, queue: str) -> Response:
    if not all(c.isalnum() or c in "._-" for c in queue) or len(queue) > 200:
        return await message(request, "No such queue", "No such queue.", status_code=404)
    return await _act(request, f"/api/ops/dlq/{queue}/redrive", "redrive")


# -- View: one flagged request ---------------------------------------------------------------


async def _as_org_admin(request: Request, auth: Auth, org_id: str, path: str) -> Any:
    """Read a request as an admin of its org would: the superadmin's own identity, scoped to
    the org the request belongs to (services scope every read by the token's org). GET only."""
    who = tokens.Identity(
        kind="user",
        subject=str(auth.user_id),
        email=auth.email,
        org_id=uuid.UUID(org_id),
        role="admin",
        superadmin=True,
    )
    secret = request.app.state.settings.token_secret()
    client: httpx.AsyncClient = request.app.state.upstreams["scheduling"]
    try:
        r = await client.get(path, headers={tokens.HEADER: tokens.sign(who, secret)})
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


@router.get("/ops/requests/{request_id}", response_class=HTMLResponse)
async def request_view(request: Request, request_id: uuid.UUID) -> Response:
    auth = await _operator(request)
    if not isinstance(auth, Auth):
        return auth
    try:
        item = await call(request, auth, "ops", "GET", f"/api/ops/attention/{request_id}")
    except AppError as exc:
        return await message(
            request,
            "Not available",
            exc.message,
            status_code=exc.status,
            link=("/ops", "Back to operations"),
        )
    jobs: list[dict[str, Any]] = []
    try:
        listed = await call(
            request, auth, "ops", "GET", f"/api/ops/reconciliation?requestId={request_id}"
        )
        jobs = list(listed["items"])
    except AppError:
        pass
    scheduled = audit = None
    if item.get("orgId"):
        base = f"/api/scheduling/requests/{request_id}"
        scheduled = await _as_org_admin(request, auth, item["orgId"], base)
        trail = await _as_org_admin(request, auth, item["orgId"], f"{base}/audit")
        audit = trail.get("items") if isinstance(trail, dict) else None
    return await page(
        request,
        "ops_request.html",
        v=v,
        item=item,
        timeline=item.get("timeline") or [],
        jobs=jobs,
        scheduled=scheduled,
        audit=audit,
        csrf=auth.session.csrf_token if auth.session else "",
        back="tab=attention",
    )
