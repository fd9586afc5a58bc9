"""Rendering pages in the shared layout (the header needs the caller's auth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gateway_service.auth.context import authenticate

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC_DIR = Path(__file__).parent / "static"


async def page(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    auth = await authenticate(request)
    response = TEMPLATES.TemplateResponse(
        request, template, {"auth": auth, **context}, status_code=status_code
    )
    # Pages carry per-user data and CSRF tokens: never cache them, never frame them.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def message(
    request: Request,
    heading: str,
    text: str,
    *,
    status_code: int = 400,
    link: tuple[str, str] | None = None,
) -> HTMLResponse:
    return await page(
        request, "message.html", status_code, heading=heading, message=text, link=link
    )
