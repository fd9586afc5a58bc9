"""The candidate's page, rendered: its private headers, and every refusal as a readable page
with the status it deserves (never a stack trace, never JSON)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from servicekit.errors import AppError

from gateway_service.web.render import TEMPLATES

log = logging.getLogger(__name__)

# The link is a bearer credential: never cached, never sent on as a referrer, never indexed.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
}
ASK_COORDINATOR = (
    "To change it now, please contact the coordinator: reply to the email your booking "
    "link came in."
)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def message(
    request: Request,
    status: int,
    heading: str,
    text: str,
    *,
    link: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = render(request, "book_message.html", status, heading=heading, text=text, link=link)
    response.headers.update(headers or {})
    return response


def refusal(request: Request, token: str, exc: AppError) -> HTMLResponse:
    """A typed error (ours or scheduling's) as the page a candidate can act on. The 409 for a
    taken time is not here: it needs the fresh times, so the pages render it themselves."""
    back = (f"/book/{token}", "Back to your booking page")
    code, status = exc.code, exc.status
    if code == "link_not_found" or status == 404:
        return message(
            request,
            404,
            "This link does not work",
            "Check that you opened the whole link from your email. If it still does not work, "
            "reply to that email and ask for a new link.",
        )
    if code == "request_cancelled":
        return message(
            request,
            410,
            "This interview was cancelled",
            "The company has withdrawn this interview request, so there is nothing to book. "
            "The coordinator will be in touch if anything changes.",
        )
    if code == "link_expired" or status == 410:
        return message(
            request,
            410,
            "This booking link has expired",
            "The time to choose a slot has passed. If you would still like to interview, reply "
            "to the email your link came in and ask for a new one.",
        )
    if code in ("reschedule_limit", "cutoff_passed"):
        heading = (
            "You cannot reschedule again online"
            if code == "reschedule_limit"
            else "It is too close to the interview to change it online"
        )
        return message(request, 409, heading, f"{exc.message} {ASK_COORDINATOR}", link=back)
    if code == "request_not_open":
        return message(
            request, 409, "Nothing to change here", exc.message, link=(back[0], "See your booking")
        )
    if status == 429:
        return message(
            request,
            429,
            "Too many requests",
            "Please wait a moment, then try again.",
            link=back,
            headers=exc.headers,
        )
    if status in (502, 503, 504):
        return message(
            request,
            503,
            "We cannot see the interviewers' calendars right now",
            "This is usually brief. Please try again in a minute.",
            link=(_here(request) if request.method == "GET" else back[0], "Try again"),
            headers={"Retry-After": "60"},
        )
    if status == 403:
        return message(request, 403, "Please start again", exc.message, link=back)
    if status in (400, 413, 415, 422):
        text = (
            exc.message
            if status == 400
            else "That choice is not valid. Choose a time from the list."
        )
        return message(request, 400, "That did not work", text, link=back)
    log.warning("booking page refused: %s %s", status, code)
    return message(
        request,
        status if 400 <= status < 500 else 502,
        "Something went wrong",
        "Please try again in a minute.",
        link=back,
    )
