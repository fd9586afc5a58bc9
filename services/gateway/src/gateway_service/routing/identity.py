"""Who is calling. Real sign-in (Google OIDC, sessions) arrives with the gateway issue.

Until then a development-only stand-in: with `SCHEDULER_ENV=development` every browser is the
configured dev user (superadmin, admin of one dev org); the headers `X-Dev-User`, `X-Dev-Org`,
`X-Dev-Role` pick another, and `X-Dev-User: anonymous` is nobody. In any other environment this
function answers None — there is no way to be signed in yet, so only public routes work.
"""

from __future__ import annotations

import uuid

from fastapi import Request
from servicekit.identity import Identity

DEV_NAMESPACE = uuid.UUID("6f1c8c52-8f0e-4b7e-9a57-0d0c1f5e2a10")
DEV_ORG_ID = uuid.uuid5(DEV_NAMESPACE, "dev-org")


def resolve(request: Request) -> Identity | None:
    settings = request.app.state.settings
    if settings.env != "development":
        return None
    email = (request.headers.get("X-Dev-User") or settings.dev_user_email).strip().lower()
    if email == "anonymous":
        return None
    org_header = request.headers.get("X-Dev-Org")
    try:
        org_id = uuid.UUID(org_header) if org_header else DEV_ORG_ID
    except ValueError:
        org_id = uuid.uuid5(DEV_NAMESPACE, org_header or "")
    role = request.headers.get("X-Dev-Role", "admin")
    return Identity(
        kind="user",
        subject=str(uuid.uuid5(DEV_NAMESPACE, email)),
        email=email,
        org_id=org_id,
        role="member" if role == "member" else "admin",
        superadmin=email == settings.dev_user_email.lower() and "X-Dev-Role" not in request.headers,
    )
