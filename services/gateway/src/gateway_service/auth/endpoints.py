"""`/login`, `/login/google`, `/auth/callback`, `POST /logout`."""

from __future__ import annotations

import logging

from authlib.integrations.starlette_client import OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from servicekit.db import unit_of_work

from gateway_service.audit import record as audit
from gateway_service.auth import service
from gateway_service.auth import sessions as session_store
from gateway_service.auth.context import authenticate, require_csrf, require_user
from gateway_service.auth.oidc import PROVIDER
from gateway_service.settings import Settings
from gateway_service.web.render import page

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

ERRORS = {
    "access_denied": "Sign-in was cancelled.",
    "unverified_email": "Your Google account's email address is not verified.",
    "domain_not_allowed": "Accounts of your domain may not sign in here.",
    "no_email": "Your Google account did not share an email address.",
    "invalid_state": "That sign-in link has expired or was already used. Please sign in again.",
    "provider_unavailable": "Google sign-in is unavailable right now. Please try again shortly.",
    "signed_out": "You are signed out.",
    "account_conflict": "Your email address belongs to another account here; ask an admin.",
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    if await authenticate(request) is not None:
        return RedirectResponse("/", status_code=303)
    code = request.query_params.get("error", "")
    return await page(
        request,
        "login.html",
        error=ERRORS.get(code, "Sign-in failed." if code else None),
        dev_hint=_settings(request).env == "development",
    )


@router.get("/login/google")
async def login_google(request: Request) -> Response:
    client = request.app.state.oauth.create_client(PROVIDER)
    try:
        response: Response = await client.authorize_redirect(
            request, _settings(request).redirect_uri
        )
    except Exception as exc:  # discovery or network failure at the provider
        log.warning("sign-in could not start: %s", exc)
        return RedirectResponse("/login?error=provider_unavailable", status_code=303)
    return response


@router.get("/auth/callback")
async def callback(request: Request) -> Response:
    settings = _settings(request)
    client = request.app.state.oauth.create_client(PROVIDER)
    sessions = request.app.state.sessions
    try:
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        sub, email, name = service.check_claims(settings, claims)
    except service.SignInRefused as refused:
        await _failed(request, refused.code, refused.email)
        return RedirectResponse(f"/login?error={refused.code}", status_code=303)
    except OAuthError as exc:
        code = "access_denied" if exc.error == "access_denied" else "invalid_state"
        await _failed(request, code, None, detail=str(exc.error))
        return RedirectResponse(f"/login?error={code}", status_code=303)
    except Exception as exc:
        log.warning("sign-in callback failed: %s", exc)
        await _failed(request, "provider_unavailable", None, detail=type(exc).__name__)
        return RedirectResponse("/login?error=provider_unavailable", status_code=303)

    try:
        async with unit_of_work(sessions) as db:
            await service.upsert_user(db, sub=sub, email=email, name=name)
    except service.SignInRefused as refused:
        await _failed(request, refused.code, refused.email)
        return RedirectResponse(f"/login?error={refused.code}", status_code=303)
    async with unit_of_work(sessions) as db:
        user_id = await service.upsert_user(db, sub=sub, email=email, name=name)
        org_id = await service.first_org(db, user_id)
        previous = await authenticate(request)
        if previous is not None and previous.session is not None:
            await session_store.revoke(db, previous.session.id_hash)
        cookie, record = await session_store.create(
            db,
            settings,
            user_id=user_id,
            active_org_id=org_id,
            ip=_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        await audit(
            db, "sign_in", org_id=org_id, actor_user_id=user_id, actor_email=email, ip=_ip(request)
        )
    response = RedirectResponse("/" if org_id else "/onboarding", status_code=303)
    session_store.set_cookies(response, settings, cookie, record.csrf_token)
    return response


async def _failed(
    request: Request, code: str, email: str | None, detail: str | None = None
) -> None:
    async with unit_of_work(request.app.state.sessions) as db:
        await audit(
            db,
            "sign_in_failed",
            actor_email=email,
            ip=_ip(request),
            details={"reason": code, **({"detail": detail} if detail else {})},
        )


@router.post("/logout")
async def logout(request: Request) -> Response:
    auth = await require_user(request)
    await require_csrf(request, auth)
    assert auth.session is not None
    async with unit_of_work(request.app.state.sessions) as db:
        await session_store.revoke(db, auth.session.id_hash)
        await audit(
            db, "sign_out", actor_user_id=auth.user_id, actor_email=auth.email, ip=_ip(request)
        )
    response = RedirectResponse("/login?error=signed_out", status_code=303)
    session_store.clear_cookies(response, _settings(request))
    return response
