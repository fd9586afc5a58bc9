"""The internal identity token: signed by the gateway, verified by every service.

A short-lived HS256 JWT in the `X-Identity-Token` header names the user, the active org, the
role there and whether the user is a superadmin. Services trust nothing else about the caller;
every query is scoped by `org_id` from this token. Services calling services sign a token of
kind "service" (no user, no org) for internal endpoints.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from servicekit.errors import Forbidden, Unauthenticated
from servicekit.logs import annotate_request

HEADER = "X-Identity-Token"
AUDIENCE = "scheduler-services"
ISSUER = "scheduler-gateway"
DEFAULT_TTL_SECONDS = 60
_LEEWAY_SECONDS = 5

Role = Literal["admin", "member"]


@dataclass(frozen=True)
class Identity:
    kind: Literal["user", "service", "apikey"]
    subject: str  # user id, service name or api key id
    email: str | None = None
    org_id: uuid.UUID | None = None
    role: Role | None = None
    superadmin: bool = False

    @property
    def user_id(self) -> uuid.UUID | None:
        if self.kind != "user":
            return None
        try:
            return uuid.UUID(self.subject)
        except ValueError:
            return None

    @property
    def is_org_admin(self) -> bool:
        return self.role == "admin"


def sign(identity: Identity, secret: str, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
        "sub": identity.subject,
        "knd": identity.kind,
        "sa": identity.superadmin,
    }
    if identity.email:
        claims["email"] = identity.email
    if identity.org_id:
        claims["org"] = str(identity.org_id)
    if identity.role:
        claims["role"] = identity.role
    return jwt.encode(claims, secret, algorithm="HS256")


class InvalidToken(Exception):
    pass


def verify(token: str, secret: str) -> Identity:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    try:
        kind = claims.get("knd", "user")
        if kind not in ("user", "service", "apikey"):
            raise InvalidToken("unknown identity kind")
        role = claims.get("role")
        if role not in (None, "admin", "member"):
            raise InvalidToken("unknown role")
        org = claims.get("org")
        return Identity(
            kind=kind,
            subject=str(claims["sub"]),
            email=claims.get("email"),
            org_id=uuid.UUID(org) if org else None,
            role=role,
            superadmin=bool(claims.get("sa", False)),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


# -- FastAPI dependencies -------------------------------------------------------------------


def _secret(request: Request) -> str:
    secret: str = request.app.state.settings.token_secret()
    return secret


def current_identity(request: Request) -> Identity:
    token = request.headers.get(HEADER)
    if not token:
        raise Unauthenticated("Sign in to continue.")
    try:
        identity = verify(token, _secret(request))
    except InvalidToken:
        raise Unauthenticated("Your session is not valid; sign in again.") from None
    # Ids only: never the email the token also carries.
    annotate_request(
        request.scope,
        org_id=str(identity.org_id or ""),
        user_id=str(identity.user_id or ""),
    )
    return identity


def org_identity(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    """A caller acting inside an organization."""
    if identity.org_id is None or identity.kind == "service":
        raise Forbidden("Choose or create an organization first.", code="no_active_org")
    return identity


def org_admin_identity(identity: Annotated[Identity, Depends(org_identity)]) -> Identity:
    if not identity.is_org_admin:
        raise Forbidden("Only an organization admin can do this.", code="org_admin_required")
    return identity


def superadmin_identity(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    if not identity.superadmin:
        raise Forbidden("Only a superadmin can do this.", code="superadmin_required")
    return identity


def service_identity(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    """Internal endpoints: other services (and superadmins, for debugging)."""
    if identity.kind != "service" and not identity.superadmin:
        raise Forbidden("Internal endpoint.", code="internal_only")
    return identity


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
OrgIdentity = Annotated[Identity, Depends(org_identity)]
OrgAdminIdentity = Annotated[Identity, Depends(org_admin_identity)]
SuperadminIdentity = Annotated[Identity, Depends(superadmin_identity)]
ServiceIdentity = Annotated[Identity, Depends(service_identity)]
