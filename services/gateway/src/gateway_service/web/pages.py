"""Server-rendered pages: plain HTML forms that work without JavaScript."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from servicekit.db import unit_of_work
from servicekit.errors import AppError

from gateway_service.auth.context import Auth, authenticate, require_csrf
from gateway_service.orgs import service as orgs
from gateway_service.orgs.defaults import WEEKDAYS, seed_scheduling_defaults
from gateway_service.upstream import call
from gateway_service.web import integrations_form as integrations
from gateway_service.web.render import message, page

router = APIRouter(include_in_schema=False)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _signed_in(request: Request) -> Auth | Response:
    auth = await authenticate(request)
    if auth is None:
        return RedirectResponse("/login", status_code=303)
    return auth


async def _form(request: Request) -> dict[str, Any]:
    async with request.form() as form:
        return {k: v for k, v in form.items() if isinstance(v, str)}


async def _guarded(
    request: Request, auth: Auth, action: Callable[[], Awaitable[Response]]
) -> Response:
    """Run a form action; typed errors become a readable page, never a stack trace."""
    try:
        await require_csrf(request, auth)
        return await action()
    except AppError as exc:
        return await message(
            request,
            "That did not work",
            exc.message,
            status_code=exc.status,
            link=("/", "Back to start"),
        )


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth
    if auth.active_org_id is None:
        return RedirectResponse("/onboarding", status_code=303)
    return await page(request, "home.html", org_name=auth.orgs[auth.active_org_id][0])


@router.get("/onboarding", response_class=HTMLResponse)
async def onboarding(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth
    return await page(request, "onboarding.html")


@router.post("/onboarding")
async def create_org(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        form = await _form(request)
        time_zone = orgs.check_zone(form.get("default_time_zone", "").strip() or "UTC")
        async with unit_of_work(request.app.state.sessions) as db:
            org_id = await orgs.create_org(
                db, auth, name=form.get("name", ""), time_zone=time_zone, ip=_ip(request)
            )
        await seed_scheduling_defaults(request, auth, org_id, time_zone)
        return RedirectResponse("/", status_code=303)

    return await _guarded(request, auth, act)


@router.post("/orgs/switch")
async def switch_org(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        form = await _form(request)
        try:
            org_id = uuid.UUID(form.get("org_id", ""))
        except ValueError:
            raise AppError("Choose an organization.", code="invalid_org") from None
        async with unit_of_work(request.app.state.sessions) as db:
            await orgs.activate(db, auth, org_id)
        return RedirectResponse("/", status_code=303)

    return await _guarded(request, auth, act)


@router.get("/invitations/{token}", response_class=HTMLResponse)
async def invitation(request: Request, token: str) -> Response:
    auth = await authenticate(request)
    if auth is None:
        return await message(
            request,
            "You are invited",
            "Sign in with the email address the invitation was sent to, then open this link again.",
            status_code=200,
            link=("/login", "Sign in"),
        )
    assert auth.session is not None
    return await page(request, "invitation.html", token=token)


@router.post("/invitations/{token}")
async def accept_invitation(request: Request, token: str) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        async with unit_of_work(request.app.state.sessions) as db:
            await orgs.accept(db, auth, token[:200], ip=_ip(request))
        return RedirectResponse("/", status_code=303)

    return await _guarded(request, auth, act)


@router.get("/settings/members", response_class=HTMLResponse)
async def members_page(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth
    org_id = auth.active_org_id
    if org_id is None:
        return RedirectResponse("/onboarding", status_code=303)
    async with unit_of_work(request.app.state.sessions) as db:
        people = await orgs.members(db, auth, org_id)
    return await page(
        request,
        "members.html",
        members=people,
        org_name=auth.orgs[org_id][0],
        invited=request.query_params.get("invited"),
    )


@router.post("/settings/members/invite")
async def invite(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        form = await _form(request)
        if auth.active_org_id is None:
            raise AppError("Choose an organization first.", code="no_active_org")
        email = form.get("email", "").strip()
        if "@" not in email or len(email) > 320:
            raise AppError("Enter a valid email address.", code="invalid_email")
        role = form.get("role", "member")
        if role not in ("admin", "member"):
            raise AppError("Choose a role.", code="invalid_role")
        async with unit_of_work(request.app.state.sessions) as db:
            made = await orgs.invite(
                db,
                request.app.state.settings,
                auth,
                auth.active_org_id,
                email=email,
                role=role,
                ip=_ip(request),
            )
        return await page(request, "invited.html", invitation=made)

    return await _guarded(request, auth, act)


def _admin_org(auth: Auth) -> uuid.UUID:
    if auth.active_org_id is None:
        raise AppError("Choose an organization first.", code="no_active_org")
    return auth.active_org_id


@router.get("/settings/org", response_class=HTMLResponse)
async def org_settings_page(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth
    if auth.active_org_id is None:
        return RedirectResponse("/onboarding", status_code=303)
    async with unit_of_work(request.app.state.sessions) as db:
        org = await orgs.org_settings(db, auth, auth.active_org_id)
    try:
        availability = await call(request, auth, "scheduling", "GET", "/api/scheduling/settings")
        unavailable = None
        if not isinstance(availability, dict) or not isinstance(
            availability.get("workingHours"), dict
        ):
            raise AppError(
                "scheduling gave an unexpected answer", code="upstream_error", status=502
            )
    except AppError as exc:
        availability, unavailable = None, exc.message
    return await page(
        request,
        "org_settings.html",
        org=org,
        availability=availability,
        weekdays=WEEKDAYS,
        unavailable=unavailable,
        saved=request.query_params.get("saved"),
    )


@router.post("/settings/org")
async def save_org_settings(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        form = await _form(request)
        org_id = _admin_org(auth)
        hours: dict[str, list[dict[str, str]]] = {}
        for day in WEEKDAYS:
            start, end = form.get(f"{day}_start", "").strip(), form.get(f"{day}_end", "").strip()
            if bool(start) != bool(end):
                raise AppError(
                    f"Give both a start and an end for {day.title()}, or neither.",
                    code="invalid_working_hours",
                )
            hours[day] = [{"start": start, "end": end}] if start else []
        # Scheduling validates the zone and hours; save there first so a refusal changes nothing.
        await call(
            request,
            auth,
            "scheduling",
            "PUT",
            "/api/scheduling/settings",
            {"timeZone": form.get("time_zone", "").strip(), "workingHours": hours},
        )
        async with unit_of_work(request.app.state.sessions) as db:
            await orgs.rename_org(db, auth, org_id, name=form.get("name", ""), ip=_ip(request))
        return RedirectResponse("/settings/org?saved=1", status_code=303)

    return await _guarded(request, auth, act)


@router.post("/settings/members/{user_id}/role")
async def change_member_role(request: Request, user_id: uuid.UUID) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        role = (await _form(request)).get("role", "")
        if role not in ("admin", "member"):
            raise AppError("Choose a role.", code="invalid_role")
        async with unit_of_work(request.app.state.sessions) as db:
            await orgs.change_role(db, auth, _admin_org(auth), user_id, role, ip=_ip(request))
        return RedirectResponse("/settings/members", status_code=303)

    return await _guarded(request, auth, act)


@router.post("/settings/members/{user_id}/remove")
async def remove_member(request: Request, user_id: uuid.UUID) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        async with unit_of_work(request.app.state.sessions) as db:
            await orgs.remove(db, auth, _admin_org(auth), user_id, ip=_ip(request))
        return RedirectResponse("/settings/members", status_code=303)

    return await _guarded(request, auth, act)


@router.get("/settings/audit", response_class=HTMLResponse)
async def audit_page(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth
    try:
        async with unit_of_work(request.app.state.sessions) as db:
            trail = await orgs.audit_page(
                db, auth, _admin_org(auth), limit=100, cursor=request.query_params.get("cursor")
            )
    except AppError as exc:
        return await message(request, "Not available", exc.message, status_code=exc.status)
    return await page(
        request, "audit.html", entries=trail["items"], next_cursor=trail["nextCursor"]
    )


async def _integrations(
    request: Request,
    auth: Auth,
    *,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problems: list[str] | None = None,
    tested: Any = None,
    notice: str | None = None,
) -> Response:
    """The integrations page for the stored settings, or for a refused `form` with its errors."""
    try:
        current = integrations.checked(
            await call(request, auth, "integrations", "GET", "/api/integrations/settings")
        )
    except AppError as exc:
        return await page(
            request, "integrations.html", exc.status, unavailable=exc.message, problems=problems
        )
    values, was = (
        integrations.submitted(form) if form is not None else (integrations.shown(current),) * 2
    )
    last_test = tested if tested is not None else current.get("lastTest")
    last_test = last_test if isinstance(last_test, dict) else None
    return await page(
        request,
        "integrations.html",
        status_code,
        current=current,
        values=values,
        was=was,
        errors=errors or {},
        problems=problems or [],
        last_test=last_test,
        tested_at=integrations.when(last_test.get("testedAt")) if last_test else None,
        just_tested=tested is not None,
        notice=notice,
        fields=integrations.FIELDS,
        sections=integrations.SECTIONS,
        sources=integrations.SOURCES,
        remove=integrations.REMOVE,
        was_prefix=integrations.WAS,
    )


_NOTICES = {"saved": "Saved.", "unchanged": "Nothing to save: no field was changed."}


@router.get("/settings/integrations", response_class=HTMLResponse)
async def integrations_page(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth
    if auth.active_org_id is None:
        return RedirectResponse("/onboarding", status_code=303)
    try:
        orgs.require_admin(auth, auth.active_org_id)
    except AppError as exc:
        return await message(request, "Not available", exc.message, status_code=exc.status)
    notice = next((text for key, text in _NOTICES.items() if key in request.query_params), None)
    return await _integrations(request, auth, notice=notice)


@router.post("/settings/integrations")
async def save_integrations(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        orgs.require_admin(auth, _admin_org(auth))
        form = await _form(request)
        body, errors = integrations.changes(form)
        problems: list[str] = []
        status = 400
        if not errors and not body:
            return RedirectResponse("/settings/integrations?unchanged=1", status_code=303)
        if not errors:
            try:
                await call(request, auth, "integrations", "PUT", "/api/integrations/settings", body)
                return RedirectResponse("/settings/integrations?saved=1", status_code=303)
            except AppError as exc:
                if exc.code == "validation_error":
                    errors, problems = integrations.field_errors(exc.details)
                elif exc.code == "icims_customer_taken":
                    errors, problems = {"icims_customer_id": exc.message}, [exc.message]
                else:
                    raise  # the service is down or refused: a message page, as other forms
                status = exc.status
        problems.insert(0, "Nothing was saved. Correct the marked fields and save again.")
        if any(form.get(f.name) for f in integrations.FIELDS if f.secret):
            problems.append("Secrets are never shown again: type them once more.")
        return await _integrations(
            request, auth, status_code=status, form=form, errors=errors, problems=problems
        )

    return await _guarded(request, auth, act)


@router.post("/settings/integrations/test")
async def test_integrations(request: Request) -> Response:
    auth = await _signed_in(request)
    if not isinstance(auth, Auth):
        return auth

    async def act() -> Response:
        orgs.require_admin(auth, _admin_org(auth))
        # Tests what is stored (not the form): the outcome is kept and shown with the settings.
        result = await call(
            request, auth, "integrations", "POST", "/api/integrations/settings/test"
        )
        if not isinstance(result, dict):
            raise AppError(
                "The integrations service gave an unexpected answer.",
                code="upstream_error",
                status=502,
            )
        return await _integrations(request, auth, tested=result)

    return await _guarded(request, auth, act)
