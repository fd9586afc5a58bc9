"""Helpers for service tests: an in-process client that runs the app's lifespan, and
identity tokens for any user, org and role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx
from fastapi import FastAPI

from servicekit import identity as tokens
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET


@asynccontextmanager
async def app_client(
    app: FastAPI, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def user_headers(
    *,
    org_id: uuid.UUID | None,
    role: Literal["admin", "member"] | None = "member",
    email: str | None = None,
    user_id: uuid.UUID | None = None,
    superadmin: bool = False,
    secret: str = DEV_INTERNAL_TOKEN_SECRET,
    ttl_seconds: int = 60,
) -> dict[str, str]:
    user_id = user_id or uuid.uuid4()
    who = tokens.Identity(
        kind="user",
        subject=str(user_id),
        email=email or f"user-{user_id.hex[:8]}@example.com",
        org_id=org_id,
        role=role if org_id else None,
        superadmin=superadmin,
    )
    return {tokens.HEADER: tokens.sign(who, secret, ttl_seconds=ttl_seconds)}


def service_headers(
    service: str = "tests", *, secret: str = DEV_INTERNAL_TOKEN_SECRET
) -> dict[str, str]:
    who = tokens.Identity(kind="service", subject=service)
    return {tokens.HEADER: tokens.sign(who, secret)}
