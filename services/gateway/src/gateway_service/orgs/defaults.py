"""A new org's availability defaults live in scheduling; the gateway seeds them at creation."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from fastapi import Request
from servicekit.errors import AppError

from gateway_service.auth.context import Auth
from gateway_service.upstream import call

log = logging.getLogger(__name__)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def default_hours() -> dict[str, list[dict[str, str]]]:
    return {
        d: ([{"start": "09:00", "end": "17:00"}] if d not in ("sat", "sun") else [])
        for d in WEEKDAYS
    }


async def seed_scheduling_defaults(
    request: Request, auth: Auth, org_id: uuid.UUID, time_zone: str
) -> None:
    """Best effort: if scheduling is down the org still exists, with scheduling's built-in
    defaults (UTC, Mon-Fri 9-17) until an admin saves the settings page."""
    acting = dataclasses.replace(
        auth,
        orgs={**auth.orgs, org_id: ("", "admin")},
        session=dataclasses.replace(auth.session, active_org_id=org_id) if auth.session else None,
    )
    try:
        await call(
            request,
            acting,
            "scheduling",
            "PUT",
            "/api/scheduling/settings",
            {"timeZone": time_zone, "workingHours": default_hours()},
        )
    except AppError as exc:
        log.warning("scheduling defaults not seeded for org %s: %s", org_id, exc.code)
