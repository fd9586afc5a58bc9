"""The coordinator's pages: `/requests` (the list), `/requests/new` (create, with the
interviewer picker and an availability preview) and `/requests/{id}` (detail, timeline and the
actions). Plain HTML forms; every action is a POST with the CSRF token that redirects back with
a notice (post/redirect/get), or shows the page again with the service's refusal.

Who may see or do what is scheduling's to decide: these pages ask it as the signed-in user and
show its answer. A request of another org, or one a member may not see, is the 404 page.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from servicekit.errors import AppError

from gateway_service.auth.context import Auth, authenticate, require_csrf
from gateway_service.upstream import call
from gateway_service.web import requests_form as forms
from gateway_service.web import requests_view as view
from gateway_service.web.render import message, page

router = APIRouter(include_in_schema=False)

API = "/api/scheduling/requests"
NOTICES = {
    "created": "Request created. The booking link was emailed to {email}.",
    "resent": "The booking link was emailed to {email} again.",
    "booked": "Booked. The calendar invitation and Teams link follow shortly.",
    "rescheduled": "Rescheduled. The calendar invitation is updated shortly.",
    "cancelled": "Cancelled.",
    "reopened": "Reopened: the candidate's link works again.",
    "erased": "The candidate's personal data was erased.",
}
# What the coordinator can do next when an action is refused this way.
HINTS = {
    "slot_taken": "Choose another time: the list below is fresh.",
    "request_not_open": "The request changed meanwhile; this page shows it as it is now.",
    "invalid_transition": "The request changed meanwhile; this page shows it as it is now.",
    "window_over": "Give a new last day for the window to reopen it.",
    "request_booked": "Cancel the interview first, then erase the candidate's data.",
    "calendars_unavailable": "Try again in a moment.",
}


async def _viewer(request: Request) -> Auth | Response:
    auth = await authenticate(request)
    if auth is None:
        return RedirectResponse("/login", status_code=303)
    if auth.active_org_id is None:
        return RedirectResponse("/onboarding", status_code=303)
    return auth


async def _fields(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A submitted form: each field's last value, and every value of repeated ones."""
    async with request.form() as form:
        single = {k: v for k, v in form.items() if isinstance(v, str)}
        multi: dict[str, list[str]] = {}
        for k, v in form.multi_items():
            if isinstance(v, str):
                multi.setdefault(k, []).append(v)
    return single, multi


async def _not_found(request: Request) -> HTMLResponse:
    return await message(
        request,
        "Not found",
        "There is no such scheduling request, or it is not yours to see.",
        status_code=404,
        link=("/requests", "All requests"),
    )


def _id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# -- the list ---------------------------------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
async def list_page(request: Request) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    query = view.ListQuery.of(request.query_params)
    rows: list[dict[str, Any]] = []
    next_link = error = error_field = None
    status = 200
    try:
        answer = await call(request, auth, "scheduling", "GET", f"{API}?{query.api()}")
        items = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise AppError(
                "scheduling gave an unexpected answer.", code="upstream_error", status=502
            )
        rows = [view.row(i) for i in items if isinstance(i, dict)]
        if answer.get("nextCursor"):
            next_link = "/requests?" + query.page(str(answer["nextCursor"]))
    except AppError as exc:
        status, error = exc.status, exc.message
        if exc.code in ("invalid_filter", "invalid_cursor"):
            error_field = view.FILTER_FIELDS.get(str(exc.details.get("parameter", "cursor")))
    return await page(
        request,
        "requests_list.html",
        status,
        rows=rows,
        query=query,
        next_link=next_link,
        error=error,
        error_field=error_field,
        statuses=view.STATUS_WORDS,
        attention=view.ATTENTION,
    )


# -- create ---------------------------------------------------------------------------------


async def _directory(request: Request, auth: Auth, q: str) -> tuple[list[dict[str, str]], str]:
    """People matching `q` in the org's Microsoft 365 directory, or why there are none."""
    if not q:
        return [], ""
    try:
        answer = await call(
            request,
            auth,
            "integrations",
            "GET",
            "/api/integrations/directory?" + urlencode({"q": q, "limit": 10}),
        )
    except AppError as exc:
        return [], f"The directory cannot be searched right now: {exc.message}"
    found = []
    for item in answer.get("items", []) if isinstance(answer, dict) else []:
        who = forms.person(str(item.get("email") or ""))
        if who is None:
            continue
        who = forms.Person(email=who.email, name=str(item.get("displayName") or "")[:200])
        found.append({"token": who.token, "label": who.label, "title": item.get("jobTitle") or ""})
    return found, "" if found else f"No one in the directory matches “{q}”."


async def _new_form(
    request: Request,
    auth: Auth,
    draft: forms.Draft,
    *,
    status_code: int = 200,
    problems: list[str] | None = None,
    preview: dict[str, Any] | None = None,
    preview_error: str | None = None,
    existing: str | None = None,
) -> Response:
    found, searched = await _directory(request, auth, draft.values.get("q", ""))
    zone_name = forms.zone_of(draft) or "UTC"
    first: list[str] = []
    if preview:
        first = [
            view.span(s.get("start"), s.get("end"), zone_name)
            + (
                f" · {', '.join(s.get('interviewers', []))}"
                if draft.values.get("mode") == "pool"
                else ""
            )
            for s in preview.get("firstSlots", [])
            if isinstance(s, dict)
        ]
    return await page(
        request,
        "requests_new.html",
        status_code,
        v=draft.values,
        people=draft.people,
        errors=draft.errors,
        problems=problems or [],
        zones=forms.COMMON_ZONES,
        zone_choice=forms.zone_choice(draft),
        other_zone=forms.OTHER_ZONE,
        granularities=forms.GRANULARITIES,
        found=found,
        searched=searched,
        preview=preview,
        preview_first=first,
        preview_error=preview_error,
        existing=existing,
    )


@router.get("/requests/new", response_class=HTMLResponse)
async def new_page(request: Request) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    draft = forms.fresh()
    draft.values["q"] = str(request.query_params.get("q") or "").strip()[:100]
    return await _new_form(request, auth, draft)


def _refusal(draft: forms.Draft, exc: AppError) -> tuple[list[str], str | None]:
    """Put a refusal from scheduling beside its field; (general problems, existing id)."""
    if exc.code == "validation_error":
        fields, general = forms.field_errors(exc.details)
        draft.errors.update(fields)
        return general, None
    existing = exc.details.get("requestId") if exc.code == "duplicate_request" else None
    name = forms.CODE_FIELDS.get(exc.code)
    if name is not None:
        draft.errors[name] = exc.message
        return [], str(existing) if existing else None
    return [exc.message], None


@router.post("/requests/new")
async def new_submit(request: Request) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    try:
        await require_csrf(request, auth)
    except AppError as exc:
        return await message(request, "That did not work", exc.message, status_code=exc.status)
    single, multi = await _fields(request)
    draft = forms.submitted(single, multi.get("interviewer", []))
    action = single.get("action", "preview")
    if "remove" in single:
        forms.remove(draft, single["remove"])
        return await _new_form(request, auth, draft)
    if "add" in single:
        forms.add(draft, single["add"])
        return await _new_form(request, auth, draft)
    if action == "add_email":
        forms.add(draft, draft.values.get("add_email", ""))
        return await _new_form(request, auth, draft, status_code=400 if draft.errors else 200)
    if action == "search":
        return await _new_form(request, auth, draft)

    body = forms.body_of(draft)
    if draft.errors:
        return await _new_form(
            request,
            auth,
            draft,
            status_code=400,
            problems=["Nothing was sent. Correct the marked fields."],
        )
    if action == "create":
        try:
            made = await call(request, auth, "scheduling", "POST", API, body)
        except AppError as exc:
            problems, existing = _refusal(draft, exc)
            return await _new_form(
                request,
                auth,
                draft,
                status_code=exc.status,
                problems=["Nothing was created.", *problems],
                existing=existing,
            )
        made_id = made.get("id") if isinstance(made, dict) else None
        if not made_id:
            return await message(request, "Created", "The request was created.", status_code=200)
        return RedirectResponse(f"/requests/{quote(str(made_id))}?notice=created", 303)

    try:
        result = await call(request, auth, "scheduling", "POST", f"{API}/preview", body)
    except AppError as exc:
        problems, _ = _refusal(draft, exc)
        return await _new_form(
            request, auth, draft, status_code=exc.status, preview_error=" ".join(problems) or None
        )
    return await _new_form(
        request, auth, draft, preview=result if isinstance(result, dict) else None
    )


# -- detail ---------------------------------------------------------------------------------


def _token(item: dict[str, Any]) -> str:
    return str(item.get("bookingUrl") or "").rstrip("/").rsplit("/", 1)[-1]


def _may_act(auth: Auth, item: dict[str, Any]) -> bool:
    """Admins and the request's coordinator act; interviewers only read (scheduling decides,
    this only spares them buttons that would be refused)."""
    if item.get("erased"):
        return False
    return auth.role == "admin" or str(item.get("coordinatorEmail")) == auth.email.lower()


async def _detail(
    request: Request,
    auth: Auth,
    request_id: uuid.UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    try:
        item = await call(request, auth, "scheduling", "GET", f"{API}/{request_id}")
        if not isinstance(item, dict):
            raise AppError(
                "scheduling gave an unexpected answer.", code="upstream_error", status=502
            )
    except AppError as exc:
        if exc.status == 404:
            return await _not_found(request)
        return await message(request, "Not available", exc.message, status_code=exc.status)
    candidate = item.get("candidate") or {}
    zone_name = str(candidate.get("timeZone") or "UTC")

    audit: list[dict[str, str]] = []
    audit_error = None
    try:
        trail = await call(request, auth, "scheduling", "GET", f"{API}/{request_id}/audit")
        entries = trail.get("items") if isinstance(trail, dict) else None
        audit = view.audit_rows([e for e in entries or [] if isinstance(e, dict)])
    except AppError as exc:
        audit_error = exc.message

    booking = item.get("booking") if isinstance(item.get("booking"), dict) else None
    may_act = _may_act(auth, item)
    slot_groups: list[tuple[str, list[view.SlotChoice]]] = []
    slots_error = None
    if may_act and item.get("status") in ("open", "booked"):
        try:
            answer = await call(
                request, auth, "scheduling", "GET", f"/api/public/bookings/{_token(item)}/slots"
            )
            # Rescheduling to the time it already has would only bump the revision.
            current = (
                view.moment(booking.get("start"))
                if booking and item.get("status") == "booked"
                else None
            )
            offered = [
                s
                for s in (answer.get("slots", []) if isinstance(answer, dict) else [])
                if isinstance(s, dict)
                and (current is None or view.moment(s.get("start")) != current)
            ]
            slot_groups = view.slot_days(offered, zone_name)
        except AppError as exc:
            slots_error = exc.message
    if notice in NOTICES:
        notice = NOTICES[notice].format(email=candidate.get("email") or "the candidate")
    else:
        notice = None
    return await page(
        request,
        "requests_detail.html",
        status_code,
        r=item,
        candidate=candidate,
        zone=zone_name,
        status_word=view.STATUS_WORDS.get(str(item.get("status")), item.get("status")),
        booking=booking,
        booking_when=view.span(booking.get("start"), booking.get("end"), zone_name)
        if booking
        else None,
        window=view.days(item.get("windowStart"), item.get("windowEnd")),
        link_expires=view.when(item.get("bookingLinkExpiresAt"), zone_name)
        if item.get("bookingLinkExpiresAt")
        else None,
        created=view.utc(item.get("createdAt")),
        audit=audit,
        audit_error=audit_error,
        may_act=may_act,
        slot_groups=slot_groups,
        slots_error=slots_error,
        notice=notice,
        error=error,
        is_admin=auth.role == "admin",
        state_words=view.STATE_WORDS,
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def detail_page(request: Request, request_id: str) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    rid = _id(request_id)
    if rid is None:
        return await _not_found(request)
    return await _detail(request, auth, rid, notice=request.query_params.get("notice"))


def _start(form: dict[str, str]) -> dict[str, Any]:
    start = form.get("start", "").strip()
    if not start:
        raise AppError("Choose a time first.", code="no_time_chosen")
    return {"start": start}


def _reason(form: dict[str, str]) -> dict[str, Any]:
    reason = form.get("reason", "").strip()[:500]
    return {"reason": reason} if reason else {}


def _reschedule(form: dict[str, str]) -> dict[str, Any]:
    return {**_start(form), **_reason(form)}


def _reopen(form: dict[str, str]) -> dict[str, Any]:
    end = form.get("window_end", "").strip()
    return {**({"windowEnd": end} if end else {}), **_reason(form)}


def _nothing(_form: dict[str, str]) -> dict[str, Any] | None:
    return None


ACTIONS = {
    "resend-link": (_nothing, "resent"),
    "book": (_start, "booked"),
    "reschedule": (_reschedule, "rescheduled"),
    "cancel": (_reason, "cancelled"),
    "reopen": (_reopen, "reopened"),
}


async def _act(request: Request, request_id: str, action: str) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    rid = _id(request_id)
    if rid is None:
        return await _not_found(request)
    try:
        await require_csrf(request, auth)
    except AppError as exc:
        return await message(request, "That did not work", exc.message, status_code=exc.status)
    form, _ = await _fields(request)
    build, notice = ACTIONS[action]
    try:
        await call(request, auth, "scheduling", "POST", f"{API}/{rid}/{action}", build(form))
    except AppError as exc:
        if exc.status == 404:
            return await _not_found(request)
        hint = HINTS.get(exc.code)
        text = f"{exc.message} {hint}" if hint else exc.message
        return await _detail(request, auth, rid, status_code=exc.status, error=text)
    return RedirectResponse(f"/requests/{rid}?notice={notice}", status_code=303)


@router.post("/requests/{request_id}/resend-link")
async def resend_link(request: Request, request_id: str) -> Response:
    return await _act(request, request_id, "resend-link")


@router.post("/requests/{request_id}/book")
async def book(request: Request, request_id: str) -> Response:
    return await _act(request, request_id, "book")


@router.post("/requests/{request_id}/reschedule")
async def reschedule(request: Request, request_id: str) -> Response:
    return await _act(request, request_id, "reschedule")


@router.post("/requests/{request_id}/cancel")
async def cancel(request: Request, request_id: str) -> Response:
    return await _act(request, request_id, "cancel")


@router.post("/requests/{request_id}/reopen")
async def reopen(request: Request, request_id: str) -> Response:
    return await _act(request, request_id, "reopen")


# -- erase (org admins, with a confirmation step) ---------------------------------------------


async def _admin_only(request: Request, auth: Auth) -> Response | None:
    if auth.role == "admin":
        return None
    return await message(
        request,
        "Not available",
        "Only an organization admin can erase a candidate's personal data.",
        status_code=403,
        link=("/requests", "All requests"),
    )


@router.get("/requests/{request_id}/erase", response_class=HTMLResponse)
async def erase_page(request: Request, request_id: str) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    rid = _id(request_id)
    if rid is None:
        return await _not_found(request)
    refused = await _admin_only(request, auth)
    if refused is not None:
        return refused
    try:
        item = await call(request, auth, "scheduling", "GET", f"{API}/{rid}")
    except AppError as exc:
        if exc.status == 404:
            return await _not_found(request)
        return await message(request, "Not available", exc.message, status_code=exc.status)
    return await page(request, "requests_erase.html", r=item)


@router.post("/requests/{request_id}/erase")
async def erase(request: Request, request_id: str) -> Response:
    auth = await _viewer(request)
    if not isinstance(auth, Auth):
        return auth
    rid = _id(request_id)
    if rid is None:
        return await _not_found(request)
    try:
        await require_csrf(request, auth)
    except AppError as exc:
        return await message(request, "That did not work", exc.message, status_code=exc.status)
    refused = await _admin_only(request, auth)
    if refused is not None:
        return refused
    form, _ = await _fields(request)
    if form.get("confirm") != "yes":
        return RedirectResponse(f"/requests/{rid}/erase", status_code=303)
    try:
        await call(request, auth, "scheduling", "POST", f"{API}/{rid}/erase")
    except AppError as exc:
        if exc.status == 404:
            return await _not_found(request)
        hint = HINTS.get(exc.code)
        text = f"{exc.message} {hint}" if hint else exc.message
        return await _detail(request, auth, rid, status_code=exc.status, error=text)
    return RedirectResponse(f"/requests/{rid}?notice=erased", status_code=303)
