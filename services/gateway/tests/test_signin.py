"""The real sign-in flow against the sandbox OIDC provider (no mocked authlib)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from gateway_service.models import audit_log, sessions
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import SUPERADMIN, GatewayFactory, sign_in


def _set_cookie(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))


async def _audit(db_url: str, action: str) -> list:
    engine = create_async_engine(db_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).where(audit_log.c.action == action))).all()
    await engine.dispose()
    return rows


async def test_authorize_redirect_carries_pkce_nonce_state_and_exact_redirect_uri(
    gateway: GatewayFactory,
) -> None:
    async with gateway() as client:
        r = await client.get("/login/google")
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == ["http://gw.example/auth/callback"]
    assert query["scope"] == ["openid email profile"]


async def test_sign_in_creates_a_session_and_new_user_goes_to_onboarding(
    gateway: GatewayFactory,
) -> None:
    async with gateway() as client:
        done = await sign_in(client, "new.person@acme.example")
        assert done.status_code == 303 and done.headers["location"] == "/onboarding"
        cookie = _set_cookie(done, "session")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        me = (await client.get("/api/me")).json()
    assert me["email"] == "new.person@acme.example"
    assert me["activeOrgId"] is None and me["superadmin"] is False


async def test_production_cookie_flags_over_https(gateway: GatewayFactory) -> None:
    async with gateway(base_url="https://gw.example") as client:
        done = await sign_in(client, "secure@acme.example")
        cookie = _set_cookie(done, "__Host-session")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Domain" not in cookie and "Path=/" in cookie
        assert "Secure" in _set_cookie(done, "csrf_token")
        assert (await client.get("/api/me")).status_code == 200


async def test_refused_consent_signs_nobody_in(gateway: GatewayFactory, gateway_db: str) -> None:
    async with gateway() as client:
        done = await sign_in(client, "refuser@acme.example", deny=True)
        assert done.status_code == 303
        assert done.headers["location"] == "/login?error=access_denied"
        assert not any(h.startswith("session=") for h in done.headers.get_list("set-cookie"))
        assert (await client.get("/api/me")).status_code == 401
        page = await client.get("/login?error=access_denied")
        assert "Sign-in was cancelled." in page.text
    assert any(
        r.details.get("reason") == "access_denied"
        for r in await _audit(gateway_db, "sign_in_failed")
    )


async def test_replayed_callback_is_refused(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        start = await client.get("/login/google")
        async with httpx.AsyncClient() as provider:
            answer = await provider.post(
                start.headers["location"], data={"sub": "replay@acme.example"}
            )
        back = urlsplit(answer.headers["location"])
        callback = f"{back.path}?{back.query}"
        first = await client.get(callback)
        assert first.status_code == 303 and first.headers["location"] == "/onboarding"
        client.cookies.clear()
        second = await client.get(callback)
    assert second.headers["location"] == "/login?error=invalid_state"


async def test_callback_from_another_browser_is_refused(gateway: GatewayFactory) -> None:
    async with gateway() as victim, gateway() as attacker:
        start = await attacker.get("/login/google")
        async with httpx.AsyncClient() as provider:
            answer = await provider.post(
                start.headers["location"], data={"sub": "attacker@acme.example"}
            )
        back = urlsplit(answer.headers["location"])
        # Login CSRF: the attacker's callback link opened in the victim's browser.
        r = await victim.get(f"{back.path}?{back.query}")
        assert r.headers["location"] == "/login?error=invalid_state"
        assert (await victim.get("/api/me")).status_code == 401


async def test_unverified_email_is_refused(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        done = await sign_in(client, "someone+unverified@acme.example")
        assert done.headers["location"] == "/login?error=unverified_email"
        assert (await client.get("/api/me")).status_code == 401


async def test_allowed_domains_check_the_hd_claim(gateway: GatewayFactory) -> None:
    async with gateway(allowed_domains="acme.example") as client:
        assert (await sign_in(client, "ok@acme.example")).headers["location"] == "/onboarding"
    async with gateway(allowed_domains="acme.example") as client:
        assert (await sign_in(client, "outsider@gmail.com")).headers[
            "location"
        ] == "/login?error=domain_not_allowed"
    async with gateway(allowed_domains="acme.example") as client:
        assert (await sign_in(client, "x@evil.example")).headers[
            "location"
        ] == "/login?error=domain_not_allowed"


async def test_superadmin_comes_from_env_case_insensitively(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        await sign_in(client, SUPERADMIN)
        assert (await client.get("/api/me")).json()["superadmin"] is True


async def test_session_id_changes_at_sign_in_and_the_old_one_dies(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        first = _set_cookie(await sign_in(client, "twice@acme.example"), "session")
        old_token = first.split(";")[0].split("=", 1)[1]
        second = _set_cookie(await sign_in(client, "twice@acme.example"), "session")
        assert second.split(";")[0].split("=", 1)[1] != old_token
        client.cookies.set("session", old_token)
        assert (await client.get("/api/me")).status_code == 401


async def test_sign_out_revokes_the_session_server_side(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        await sign_in(client, "leaver@acme.example")
        token = client.cookies["session"]
        csrf = client.cookies["csrf_token"]
        refused = await client.post("/logout")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        out = await client.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login?error=signed_out"
        client.cookies.clear()
        client.cookies.set("session", token)  # a copy of the cookie kept by an attacker
        assert (await client.get("/api/me")).status_code == 401


async def test_idle_and_absolute_timeouts_end_sessions(
    gateway: GatewayFactory, gateway_db: str
) -> None:
    engine = create_async_engine(gateway_db)
    async with gateway(session_idle_minutes=30) as client:
        await sign_in(client, "sleepy@acme.example")
        assert (await client.get("/api/me")).status_code == 200
        async with engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.revoked_at.is_(None))
                .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
            )
        assert (await client.get("/api/me")).status_code == 401
        await sign_in(client, "sleepy@acme.example")
        async with engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.revoked_at.is_(None))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert (await client.get("/api/me")).status_code == 401
    await engine.dispose()


async def test_sign_ins_are_audited_with_source_ip(
    gateway: GatewayFactory, gateway_db: str
) -> None:
    async with gateway() as client:
        await sign_in(client, "audited@acme.example")
    rows = [
        r for r in await _audit(gateway_db, "sign_in") if r.actor_email == "audited@acme.example"
    ]
    assert rows and rows[0].ip is not None


async def test_an_email_held_by_another_account_is_refused_not_merged(gateway_db: str) -> None:
    import pytest
    from gateway_service.auth import service
    from servicekit.db import create_engine, create_sessionmaker, unit_of_work

    engine = create_engine(gateway_db)
    sessions = create_sessionmaker(engine)
    async with unit_of_work(sessions) as db:
        first = await service.upsert_user(db, sub="sub-x", email="x@acme.example", name=None)
        await service.upsert_user(db, sub="sub-y", email="y@acme.example", name=None)
    # X's Google account now carries Y's address: refusing is the only safe answer.
    with pytest.raises(service.SignInRefused) as refused:
        async with unit_of_work(sessions) as db:
            await service.upsert_user(db, sub="sub-x", email="y@acme.example", name=None)
    assert refused.value.code == "account_conflict"
    with pytest.raises(service.SignInRefused):
        async with unit_of_work(sessions) as db:
            await service.upsert_user(db, sub="sub-z", email="x@acme.example", name=None)
    async with unit_of_work(sessions) as db:  # a plain address change is followed
        again = await service.upsert_user(db, sub="sub-x", email="x2@acme.example", name=None)
    assert again == first
    await engine.dispose()
