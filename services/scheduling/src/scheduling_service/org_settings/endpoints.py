"""`GET|PUT /api/scheduling/settings`: the active org's availability defaults."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from servicekit.app import DbSession
from servicekit.errors import Forbidden
from servicekit.identity import OrgIdentity
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from scheduling_service.models import org_settings
from scheduling_service.org_settings.schemas import OrgSettings, default_settings

router = APIRouter(prefix="/api/scheduling/settings", tags=["settings"])


@router.get("", response_model=OrgSettings, response_model_by_alias=True)
async def get_settings(identity: OrgIdentity, session: DbSession) -> OrgSettings:
    row = (
        await session.execute(select(org_settings).where(org_settings.c.org_id == identity.org_id))
    ).first()
    if row is None:
        return default_settings()
    return OrgSettings.model_validate(
        {
            "time_zone": row.time_zone,
            "working_hours": row.working_hours,
            "auto_request": row.auto_request,
        }
    )


@router.put("", response_model=OrgSettings, response_model_by_alias=True)
async def put_settings(body: OrgSettings, identity: OrgIdentity, session: DbSession) -> OrgSettings:
    if not identity.is_org_admin:
        raise Forbidden("Only an organization admin can change these.", code="org_admin_required")
    stored: dict[str, Any] = body.model_dump(mode="json")
    stmt = insert(org_settings).values(
        org_id=identity.org_id,
        time_zone=stored["time_zone"],
        working_hours=stored["working_hours"],
        auto_request=body.auto_request.model_dump(mode="json", by_alias=True)
        if body.auto_request
        else None,
        updated_by=identity.email,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[org_settings.c.org_id],
            set_={
                "time_zone": stmt.excluded.time_zone,
                "working_hours": stmt.excluded.working_hours,
                # Left out of the body (the org settings page sends hours only): kept.
                **(
                    {"auto_request": stmt.excluded.auto_request}
                    if "auto_request" in body.model_fields_set
                    else {}
                ),
                "updated_by": stmt.excluded.updated_by,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )
    return await get_settings(identity, session)
