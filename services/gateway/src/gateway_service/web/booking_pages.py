"""`/book/{token}`: the candidate's booking page. Public (the link is the credential), plain
HTML forms that work without JavaScript, and every refusal a readable page with its status.

The page asks scheduling's public booking API server-side (no identity is sent: the token is
all scheduling needs) and names the company from the gateway's own organizations. Because the
URL is a bearer credential, every answer here is `no-store`, sends no referrer and is kept out
of search engines; the public rate limit of `/api/public/*` applies to these pages as well.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from servicekit.bodies import read_limited
from servicekit.db import unit_of_work
from servicekit.errors import AppError, NotFound

from gateway_service.orgs import service as orgs
from gateway_service.upstream import call
from gateway_service.web import booking_forms as forms
from gateway_service.web import booking_view as show
from gateway_service.web.booking_errors import ASK_COORDINATOR, HEADERS, message, refusal, render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# Scheduling's tokens are 43 URL-safe characters; anything else is answered without asking it.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,200}")
_MAX_FORM_BYTES = 8192
_MAX_REASON = 500
_DONE = {
    "booked": "You are booked. A confirmation email is on its way.",
    "rescheduled": "Your interview has been moved. An updated invitation is on its way.",
    "cancelled": "Your interview is cancelled. If you like, choose a new time below.",
}


def _ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def _href(token: str, suffix: str = "", **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/book/{token}{suffix}" + (f"?{query}" if query else "")


async def _serve(
    request: Request, token: str, action: Callable[[], Awaitable[Response]]
) -> Response:
    """Rate-limit, run the page, and turn any refusal into a page; never a stack trace."""
    try:
        request.app.state.public_limiter.check(_ip(request))
        if not _TOKEN.fullmatch(token):
            raise NotFound("This booking link is not valid.", code="link_not_found")
        response = await action()
    except AppError as exc:
        response = refusal(request, token, exc)
    except Exception:
        log.exception("booking page failed")
        response = message(
            request,
            500,
            "Something went wrong on our side",
            "Please try again in a minute.",
            link=(f"/book/{token}", "Try again"),
        )
    response.headers.update(HEADERS)
    return response


async def _form(request: Request, token: str) -> dict[str, str]:
    """The posted form, size-limited, after its signed token is checked."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise AppError("Please use the form on your booking page.", code="unsupported_form")
    body = await read_limited(request, _MAX_FORM_BYTES)
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    form = {k: v[0] for k, v in fields.items() if v}
    forms.check(request.app.state.settings, token, form.get(forms.FIELD))
    return form


def _posted_zone(form: dict[str, str]) -> str | None:
    """The zone the candidate was looking at (a hidden field), checked; None if not sent."""
    name = form.get("tz") or None
    return show.zone(name).key if name else None


def _reason(form: dict[str, str]) -> str | None:
    reason = form.get("reason", "").strip()
    if len(reason) > _MAX_REASON:
        raise AppError(
            f"Please keep the reason under {_MAX_REASON} characters.", code="reason_too_long"
        )
    return reason or None


async def _api(request: Request, method: str, path: str, json: Any = None) -> dict[str, Any]:
    answer = await call(request, None, "scheduling", method, path, json)
    if not isinstance(answer, dict):
        raise AppError("scheduling gave an unexpected answer", code="upstream_error", status=502)
    return answer


def _path(token: str, suffix: str = "") -> str:
    return f"/api/public/bookings/{quote(token, safe='')}{suffix}"


async def _company(request: Request, view: dict[str, Any]) -> str | None:
    try:
        org_id = uuid.UUID(str(view.get("orgId")))
    except ValueError:
        return None
    async with unit_of_work(request.app.state.sessions) as db:
        return await orgs.public_name(db, org_id)


def _zone_of(request: Request, view: dict[str, Any], chosen: str | None = None) -> ZoneInfo:
    return show.zone(chosen or request.query_params.get("tz") or str(view["timeZone"]))


def _common(
    request: Request, token: str, view: dict[str, Any], tz: ZoneInfo, company: str | None
) -> dict[str, Any]:
    """What every page about this request shows: the interview, and the booking if any."""
    booking = view.get("booking")
    summary = None
    if booking:
        start = datetime.fromisoformat(booking["start"])
        end = datetime.fromisoformat(booking["end"])
        cutoff = datetime.fromisoformat(booking["changeCutoff"]).astimezone(tz)
        summary = {
            **booking,
            "when": show.when(start, end, tz),
            "day": show.day_heading(start.astimezone(tz).date()),
            "time": show.when(start, end, tz).split(", ", 1)[1],
            "cutoff": f"{show.short_day(cutoff.date())}, {cutoff:%H:%M}",
            "past": end <= datetime.now(UTC),
            # Shown as a link only when it is one (it comes from Graph, via two services).
            "teams": booking["teamsJoinUrl"]
            if str(booking.get("teamsJoinUrl") or "").startswith("https://")
            else None,
        }
    names = show.first_names(view.get("interviewerNames") or [])
    return {
        "token": token,
        "href": lambda suffix="", **params: _href(token, suffix, **params),
        "form_field": forms.FIELD,
        "form_token": forms.issue(request.app.state.settings, token),
        "view": view,
        "company": company,
        "title": view.get("title") or "Interview",
        "duration": show.duration(int(view.get("durationMinutes") or 0)),
        "interviewers": show.joined(names),
        "tz": tz.key,
        "booking": summary,
        "ask_coordinator": ASK_COORDINATOR,
    }


async def _picker(
    request: Request, token: str, view: dict[str, Any], *, mode: str, notice: str | None = None
) -> Response:
    tz = _zone_of(request, view)
    week = show.week(
        request.query_params.get("week"),
        date.fromisoformat(str(view["windowStart"])),
        date.fromisoformat(str(view["windowEnd"])),
        datetime.now(tz).date(),
    )
    query = urlencode({"start": week.start, "end": week.end, "tz": tz.key})
    company, offered = await asyncio.gather(
        _company(request, view), _api(request, "GET", _path(token, f"/slots?{query}"))
    )
    return render(
        request,
        "book.html",
        **_common(request, token, view, tz, company),
        mode=mode,
        notice=notice,
        week=week,
        days=show.days(_other_times(offered.get("slots") or [], view), tz),
        zones=show.zone_options(tz.key, str(view["timeZone"])),
        chose_zone="tz" in request.query_params,
    )


def _other_times(slots: list[Any], view: dict[str, Any]) -> list[Any]:
    """When rescheduling, the booked time itself is not offered again."""
    booking = view.get("booking")
    if not booking:
        return slots
    booked = datetime.fromisoformat(booking["start"])
    return [s for s in slots if datetime.fromisoformat(str(s.get("start"))) != booked]


async def _slot_taken(
    request: Request, token: str, exc: AppError, zone_name: str | None, mode: str
) -> Response:
    """409: the time went to someone else; offer the fresh times scheduling sent along."""
    view = await _api(request, "GET", _path(token))
    tz = _zone_of(request, view, zone_name)
    company = await _company(request, view)
    fresh = exc.details.get("slots")
    return render(
        request,
        "book_taken.html",
        409,
        **_common(request, token, view, tz, company),
        mode=mode,
        days=show.days(fresh if isinstance(fresh, list) else [], tz),
    )


def _changeable(view: dict[str, Any], action: str) -> dict[str, Any] | None:
    """The live booking if the candidate may still `action` it online; None if there is none."""
    booking = view.get("booking")
    if view.get("status") != "booked" or not booking:
        return None
    if not booking.get("canCancel"):
        raise AppError(
            f"Changes online closed {_hours(booking)} before the interview.",
            code="cutoff_passed",
            status=409,
        )
    if action == "reschedule" and not booking.get("canReschedule"):
        raise AppError(
            "This interview has been rescheduled as often as allowed online. You can still "
            "cancel it.",
            code="reschedule_limit",
            status=409,
        )
    return dict(booking)


def _hours(booking: dict[str, Any]) -> str:
    left = datetime.fromisoformat(booking["start"]) - datetime.fromisoformat(
        booking["changeCutoff"]
    )
    hours = round(left / timedelta(hours=1))
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else "shortly"


# -- pages ----------------------------------------------------------------------------------


@router.get("/book/{token}", response_class=HTMLResponse)
async def booking_page(request: Request, token: str) -> Response:
    async def page() -> Response:
        view = await _api(request, "GET", _path(token))
        done = request.query_params.get("done", "")
        # Only what is still true: a stale or hand-made `done` says nothing.
        notice = (
            _DONE.get(done) if (done == "cancelled") == (view.get("status") == "open") else None
        )
        if view.get("status") == "open":
            return await _picker(request, token, view, mode="book", notice=notice)
        tz = _zone_of(request, view)
        company = await _company(request, view)
        return render(
            request, "book.html", **_common(request, token, view, tz, company), notice=notice
        )

    return await _serve(request, token, page)


@router.post("/book/{token}/hold")
async def hold(request: Request, token: str) -> Response:
    async def act() -> Response:
        form = await _form(request, token)
        start = show.parse_start(form.get("start", ""))
        zone_name = _posted_zone(form)
        try:
            held = await _api(request, "POST", _path(token, "/holds"), {"start": start.isoformat()})
        except AppError as exc:
            if exc.code != "slot_taken":
                raise
            return await _slot_taken(request, token, exc, zone_name, "book")
        view = await _api(request, "GET", _path(token))
        tz = _zone_of(request, view, zone_name)
        company = await _company(request, view)
        end = start + timedelta(minutes=int(view["durationMinutes"]))
        expires = datetime.fromisoformat(str(held["expiresAt"]))
        return render(
            request,
            "book_confirm.html",
            **_common(request, token, view, tz, company),
            mode="book",
            start=start.isoformat(),
            when=show.when(start, end, tz),
            hold_id=str(held["holdId"]),
            hold_minutes=show.minutes_left(expires, datetime.now(UTC)),
            hold_until=f"{expires.astimezone(tz):%H:%M}",
            back=_href(token, tz=tz.key, week=form.get("week")),
        )

    return await _serve(request, token, act)


@router.post("/book/{token}/confirm")
async def confirm(request: Request, token: str) -> Response:
    async def act() -> Response:
        form = await _form(request, token)
        start = show.parse_start(form.get("start", ""))
        zone_name = _posted_zone(form)
        body: dict[str, str] = {"start": start.isoformat()}
        try:
            body["holdId"] = str(uuid.UUID(form.get("hold_id", "")))
        except ValueError:
            pass  # without a hold, scheduling checks the time afresh
        try:
            await _api(request, "POST", _path(token), body)
        except AppError as exc:
            if exc.code != "slot_taken":
                raise
            return await _slot_taken(request, token, exc, zone_name, "book")
        return RedirectResponse(_href(token, tz=zone_name, done="booked"), status_code=303)

    return await _serve(request, token, act)


@router.get("/book/{token}/reschedule", response_class=HTMLResponse)
async def reschedule_page(request: Request, token: str) -> Response:
    async def page() -> Response:
        view = await _api(request, "GET", _path(token))
        if _changeable(view, "reschedule") is None:
            return RedirectResponse(_href(token), status_code=303)
        return await _picker(request, token, view, mode="reschedule")

    return await _serve(request, token, page)


@router.get("/book/{token}/reschedule/confirm", response_class=HTMLResponse)
async def reschedule_review(request: Request, token: str) -> Response:
    async def page() -> Response:
        view = await _api(request, "GET", _path(token))
        if _changeable(view, "reschedule") is None:
            return RedirectResponse(_href(token), status_code=303)
        start = show.parse_start(request.query_params.get("start", ""))
        tz = _zone_of(request, view)
        end = start + timedelta(minutes=int(view["durationMinutes"]))
        company = await _company(request, view)
        return render(
            request,
            "book_confirm.html",
            **_common(request, token, view, tz, company),
            mode="reschedule",
            start=start.isoformat(),
            when=show.when(start, end, tz),
            back=_href(token, "/reschedule", tz=tz.key, week=request.query_params.get("week")),
        )

    return await _serve(request, token, page)


@router.post("/book/{token}/reschedule")
async def reschedule(request: Request, token: str) -> Response:
    async def act() -> Response:
        form = await _form(request, token)
        start = show.parse_start(form.get("start", ""))
        zone_name = _posted_zone(form)
        body = {"start": start.isoformat(), "reason": _reason(form)}
        try:
            await _api(request, "POST", _path(token, "/reschedule"), body)
        except AppError as exc:
            if exc.code != "slot_taken":
                raise
            return await _slot_taken(request, token, exc, zone_name, "reschedule")
        return RedirectResponse(_href(token, tz=zone_name, done="rescheduled"), status_code=303)

    return await _serve(request, token, act)


@router.get("/book/{token}/cancel", response_class=HTMLResponse)
async def cancel_page(request: Request, token: str) -> Response:
    async def page() -> Response:
        view = await _api(request, "GET", _path(token))
        if _changeable(view, "cancel") is None:
            return RedirectResponse(_href(token), status_code=303)
        tz = _zone_of(request, view)
        company = await _company(request, view)
        return render(request, "book_cancel.html", **_common(request, token, view, tz, company))

    return await _serve(request, token, page)


@router.post("/book/{token}/cancel")
async def cancel(request: Request, token: str) -> Response:
    async def act() -> Response:
        form = await _form(request, token)
        zone_name = _posted_zone(form)
        await _api(request, "POST", _path(token, "/cancel"), {"reason": _reason(form)})
        return RedirectResponse(_href(token, tz=zone_name, done="cancelled"), status_code=303)

    return await _serve(request, token, act)


@router.api_route("/book/{token}/{rest:path}", methods=["GET", "POST"], response_class=HTMLResponse)
async def elsewhere(request: Request, token: str, rest: str) -> Response:
    """Any other address under a link: the same readable 404 and private headers."""

    async def page() -> Response:
        raise NotFound("This booking link is not valid.", code="link_not_found")

    return await _serve(request, token, page)
