"""The gateway's own JSON API: `/api/me`, organizations, members, invitations."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from servicekit.db import unit_of_work

from gateway_service.apikeys import service as apikeys
from gateway_service.auth.context import Auth, require_csrf, require_user
from gateway_service.orgs import service
from gateway_service.orgs.defaults import seed_scheduling_defaults
from gateway_service.orgs.schemas import (
    ApiKeyCreate,
    InvitationCreate,
    OrgCreate,
    OrgRename,
    RoleChange,
)

router = APIRouter(prefix="/api", tags=["gateway"])


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _caller(request: Request) -> Auth:
    auth = await require_user(request)
    await require_csrf(request, auth)
    return auth


def me_body(auth: Auth) -> dict[str, Any]:
    return {
        "userId": str(auth.user_id),
        "email": auth.email,
        "name": auth.name,
        "superadmin": auth.superadmin,
        "activeOrgId": str(auth.active_org_id) if auth.active_org_id else None,
        "role": auth.role,
        "orgs": [{"id": str(i), "name": n, "role": r} for i, (n, r) in auth.orgs.items()],
        "csrfToken": auth.session.csrf_token if auth.session else None,
    }


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    return me_body(await require_user(request))


@router.post("/orgs", status_code=201)
async def create_org(body: OrgCreate, request: Request) -> dict[str, Any]:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        org_id = await service.create_org(
            db, auth, name=body.name, time_zone=body.default_time_zone, ip=_ip(request)
        )
    await seed_scheduling_defaults(request, auth, org_id, body.default_time_zone)
    return {
        "id": str(org_id),
        "name": body.name.strip(),
        "defaultTimeZone": body.default_time_zone,
        "role": "admin",
    }


@router.post("/orgs/{org_id}/activate", status_code=204)
async def activate(org_id: uuid.UUID, request: Request) -> Response:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        await service.activate(db, auth, org_id)
    return Response(status_code=204)


@router.get("/orgs/{org_id}/members")
async def members(org_id: uuid.UUID, request: Request) -> dict[str, Any]:
    auth = await require_user(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return {"items": await service.members(db, auth, org_id), "nextCursor": None}


@router.put("/orgs/{org_id}/members/{user_id}")
async def change_role(
    org_id: uuid.UUID, user_id: uuid.UUID, body: RoleChange, request: Request
) -> dict[str, str]:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        await service.change_role(db, auth, org_id, user_id, body.role, ip=_ip(request))
    return {"userId": str(user_id), "role": body.role}


@router.delete("/orgs/{org_id}/members/{user_id}", status_code=204)
async def remove_member(org_id: uuid.UUID, user_id: uuid.UUID, request: Request) -> Response:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        await service.remove(db, auth, org_id, user_id, ip=_ip(request))
    return Response(status_code=204)


@router.post("/orgs/{org_id}/invitations", status_code=201)
async def invite(org_id: uuid.UUID, body: InvitationCreate, request: Request) -> dict[str, Any]:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return await service.invite(
            db,
            request.app.state.settings,
            auth,
            org_id,
            email=str(body.email),
            role=body.role,
            ip=_ip(request),
        )


@router.post("/invitations/{token}/accept")
async def accept(token: str, request: Request) -> dict[str, str]:
    auth = await _caller(request)
    if len(token) > 200:
        from servicekit.errors import NotFound

        raise NotFound("This invitation does not exist.", code="invitation_not_found")
    async with unit_of_work(request.app.state.sessions) as db:
        org_id = await service.accept(db, auth, token, ip=_ip(request))
    return {"orgId": str(org_id)}


@router.get("/orgs/{org_id}/api-keys")
async def list_api_keys(org_id: uuid.UUID, request: Request) -> dict[str, Any]:
    auth = await require_user(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return {"items": await apikeys.list_keys(db, auth, org_id), "nextCursor": None}


@router.post("/orgs/{org_id}/api-keys", status_code=201)
async def create_api_key(org_id: uuid.UUID, body: ApiKeyCreate, request: Request) -> dict[str, Any]:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return await apikeys.create(db, auth, org_id, body.name, ip=_ip(request))


@router.delete("/orgs/{org_id}/api-keys/{key_id}", status_code=204)
async def revoke_api_key(org_id: uuid.UUID, key_id: uuid.UUID, request: Request) -> Response:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        await apikeys.revoke(db, auth, org_id, key_id, ip=_ip(request))
    return Response(status_code=204)


@router.get("/orgs/{org_id}/audit")
async def audit_trail(
    org_id: uuid.UUID,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    auth = await require_user(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return await service.audit_page(db, auth, org_id, limit=limit, cursor=cursor)


@router.get("/orgs/{org_id}")
async def get_org(org_id: uuid.UUID, request: Request) -> dict[str, Any]:
    auth = await require_user(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return await service.org_settings(db, auth, org_id)


@router.put("/orgs/{org_id}")
async def rename_org(org_id: uuid.UUID, body: OrgRename, request: Request) -> dict[str, Any]:
    auth = await _caller(request)
    async with unit_of_work(request.app.state.sessions) as db:
        return await service.rename_org(db, auth, org_id, name=body.name, ip=_ip(request))
