"""`GET /api/ops/dlq` and `POST /api/ops/dlq/{queue}/redrive`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from scheduler_contracts.topology import TOPOLOGY, Topology
from servicekit.app import DbSession
from servicekit.identity import SuperadminIdentity

from ops_service.dlq import service
from ops_service.dlq.schemas import DlqPage, RedriveIn, RedriveOut

router = APIRouter(prefix="/api/ops/dlq", tags=["ops"])


def _topology(request: Request) -> Topology:
    return Topology(queues=TOPOLOGY.queues, prefix=request.app.state.settings.broker_prefix)


@router.get("", response_model=DlqPage, response_model_by_alias=True)
async def list_dlqs(_: SuperadminIdentity, session: DbSession, request: Request) -> DlqPage:
    return await service.list_queues(session, request.query_params)


@router.post(
    "/{queue}/redrive", status_code=202, response_model=RedriveOut, response_model_by_alias=True
)
async def redrive(
    queue: str,
    identity: SuperadminIdentity,
    session: DbSession,
    request: Request,
    body: RedriveIn | None = None,
) -> RedriveOut:
    return await service.redrive(session, identity, _topology(request), queue, body or RedriveIn())
