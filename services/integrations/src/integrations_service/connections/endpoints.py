"""`GET|PUT /api/integrations/settings`, `POST /api/integrations/settings/test` (org admins)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from servicekit.app import DbSession
from servicekit.errors import Conflict
from servicekit.identity import Identity, OrgAdminIdentity
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.clients import Clients
from integrations_service.connections import repository
from integrations_service.connections.checks import run as run_checks
from integrations_service.connections.schemas import (
    GraphSettingsOut,
    IcimsSettingsOut,
    SettingsIn,
    SettingsOut,
    TestIn,
    TestOut,
)
from integrations_service.connections.service import ConnectionResolver, OrgConnections
from integrations_service.crypto import SecretsKeyError

router = APIRouter(prefix="/api/integrations/settings", tags=["settings"])

_SECRETS = {
    ("graph", "client_secret"): "graph_client_secret",
    ("icims", "client_secret"): "icims_client_secret",
    ("icims", "webhook_secret"): "icims_webhook_secret",
}


def _org(identity: Identity) -> uuid.UUID:
    assert identity.org_id is not None  # OrgAdminIdentity guarantees an active org
    return identity.org_id


def _resolver(request: Request) -> ConnectionResolver:
    resolver: ConnectionResolver = request.app.state.connections
    return resolver


def _out(conns: OrgConnections, row: Any | None) -> SettingsOut:
    g, i = conns.graph, conns.icims
    last = row["last_test"] if row is not None else None
    return SettingsOut(
        graph=GraphSettingsOut(
            tenant_id=g.tenant_id,
            client_id=g.client_id,
            client_secret_set=bool(g.client_secret or g.static_token),
            organizer_mailbox=g.organizer_mailbox,
            source=g.source,
            configured=g.configured,
        ),
        icims=IcimsSettingsOut(
            customer_id=i.customer_id,
            client_id=i.client_id,
            client_secret_set=bool(i.client_secret),
            token_url=i.token_url,
            webhook_secret_set=bool(i.webhook_secret),
            note_field=i.note_field,
            schedule_status_id=i.schedule_status_id,
            scheduled_status_id=i.scheduled_status_id,
            source=i.source,
            configured=i.configured,
        ),
        updated_at=row["updated_at"] if row is not None else None,
        last_test=TestOut.model_validate(last) if last else None,
    )


async def _keep_replaced_webhook_secret(
    session: AsyncSession, resolver: ConnectionResolver, org_id: uuid.UUID, body: SettingsIn
) -> dict[str, Any]:
    """A changed webhook secret keeps the one it replaces (sealed) with the time of the change:
    deliveries iCIMS signed before it switched over still verify during the overlap."""
    row = await repository.get_row(session, org_id)
    # Only the org's own secret: an install-wide one never speaks for one org's customer.
    if row is None or row["icims_webhook_secret"] is None:
        return {}
    new = body.icims.webhook_secret if body.icims is not None else None
    # A stored secret that no configured key opens could never verify a delivery again: it is
    # not kept for an overlap, and saving the webhook secret is how an admin gets rid of it
    # (otherwise the settings would stay unreadable, see SecretsUnreadable).
    dropped = {"icims_webhook_secret_previous": None, "icims_webhook_secret_rotated_at": None}
    try:
        current = resolver.open_secret(org_id, row, "icims_webhook_secret")
    except SecretsKeyError:
        return dropped
    if not current or current == new:
        try:
            resolver.open_secret(org_id, row, "icims_webhook_secret_previous")
        except SecretsKeyError:
            return dropped
        return {}
    column = "icims_webhook_secret_previous"
    return {
        column: resolver.sealer.seal(current, org_id=org_id, column=column),
        "icims_webhook_secret_rotated_at": datetime.now(UTC),
    }


@router.get("", response_model=SettingsOut, response_model_by_alias=True)
async def get_settings(
    identity: OrgAdminIdentity, session: DbSession, request: Request
) -> SettingsOut:
    """The org's settings; 503 `secrets_unreadable` (naming them) while a stored secret does
    not open with the configured keys."""
    org_id = _org(identity)
    row = await repository.get_row(session, org_id)
    return _out(_resolver(request).resolve(org_id, row), row)


@router.put("", response_model=SettingsOut, response_model_by_alias=True)
async def put_settings(
    body: SettingsIn, identity: OrgAdminIdentity, session: DbSession, request: Request
) -> SettingsOut:
    org_id = _org(identity)
    resolver = _resolver(request)
    values: dict[str, Any] = {}
    for section_name in ("graph", "icims"):
        section = getattr(body, section_name)
        if section is None:
            continue
        for field in section.model_fields_set:  # absent fields keep what is stored
            value = getattr(section, field)
            column = _SECRETS.get((section_name, field))
            if column is not None:
                values[column] = (
                    resolver.sealer.seal(value, org_id=org_id, column=column) if value else None
                )
            else:
                values[f"{section_name}_{field}"] = value
    if "icims_webhook_secret" in values:
        values.update(await _keep_replaced_webhook_secret(session, resolver, org_id, body))
    try:
        await repository.save(session, org_id, values, identity.user_id)
    except repository.CustomerTaken:
        raise Conflict(
            "This iCIMS customer is already connected to another organization.",
            code="icims_customer_taken",
        ) from None
    row = await repository.get_row(session, org_id)
    # A secret that does not open is repaired by entering it again (or removing it): the new
    # value is sealed with SECRETS_KEY. A save that leaves one unreadable raises
    # SecretsUnreadable here, naming what is left, and the request's transaction rolls back:
    # the admin sends them all at once rather than half-repaired settings being kept.
    return _out(resolver.resolve(org_id, row), row)


@router.post("/test", response_model=TestOut, response_model_by_alias=True)
async def test_settings(
    identity: OrgAdminIdentity, request: Request, body: TestIn | None = None
) -> TestOut:
    """Try the connections as they are stored now: a Graph call as the organizer mailbox and an
    iCIMS token. The outcome is kept and shown on the settings page. No database connection is
    held while the providers answer."""
    org_id = _org(identity)
    body = body or TestIn()
    sessions = request.app.state.sessions
    async with sessions() as session:
        conns = await _resolver(request).for_org(session, org_id)
    clients: Clients = request.app.state.clients
    result = await run_checks(clients, conns, graph=body.graph, icims=body.icims)
    async with sessions() as session, session.begin():
        await repository.record_test(session, org_id, result.model_dump(mode="json"))
    return result
