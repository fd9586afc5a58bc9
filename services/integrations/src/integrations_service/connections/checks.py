"""The settings page's "test connection": real calls with the stored settings, timed, with
a message an org admin can act on (never a secret, never a stack trace)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from integrations_service.clients import Clients
from integrations_service.connections.schemas import CheckOut, TestOut
from integrations_service.connections.service import OrgConnections
from integrations_service.graph.errors import GraphError
from integrations_service.icims.client import IcimsError


async def _graph(clients: Clients, conns: OrgConnections) -> CheckOut:
    g = conns.graph
    if not g.has_credentials:
        return CheckOut(
            ok=False,
            message="Microsoft Graph is not connected: add a tenant, client id and secret.",
        )
    if not g.organizer_mailbox:
        return CheckOut(ok=False, message="Set the organizer mailbox that sends invitations.")
    started = time.monotonic()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        # Reading the organizer's own free/busy proves the credentials, the tenant's consent
        # (Calendars.Read) and that the mailbox exists, without creating anything.
        await clients.graph(g).get_schedule(
            [g.organizer_mailbox],
            now,
            now + timedelta(hours=1),
            organizer_mailbox=g.organizer_mailbox,
            use_cache=False,
        )
    except GraphError as exc:
        return CheckOut(
            ok=False,
            message=f"Microsoft Graph answered: {exc.message}",
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    return CheckOut(
        ok=True,
        message=f"Connected; {g.organizer_mailbox} is reachable.",
        latency_ms=int((time.monotonic() - started) * 1000),
    )


async def _icims(clients: Clients, conns: OrgConnections) -> CheckOut:
    i = conns.icims
    if not i.configured:
        return CheckOut(
            ok=False, message="iCIMS is not connected: add the customer id, client id and secret."
        )
    started = time.monotonic()
    try:
        await clients.icims(i).token_check()
    except IcimsError as exc:
        return CheckOut(
            ok=False,
            message=f"iCIMS refused: {exc}",
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    warnings = [] if i.note_field else [" no note field is set, so notes cannot be written"]
    return CheckOut(
        ok=True,
        message="Connected (credentials accepted)." + ";".join(warnings),
        latency_ms=int((time.monotonic() - started) * 1000),
    )


async def run(clients: Clients, conns: OrgConnections, *, graph: bool, icims: bool) -> TestOut:
    return TestOut(
        tested_at=datetime.now(UTC),
        graph=await _graph(clients, conns) if graph else None,
        icims=await _icims(clients, conns) if icims else None,
    )
