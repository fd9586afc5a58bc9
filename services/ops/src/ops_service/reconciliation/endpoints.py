"""`GET /api/ops/reconciliation` (runbook filters) and `POST /api/ops/reconciliation/{id}/retry`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from servicekit.app import DbSession
from servicekit.identity import SuperadminIdentity

from ops_service.api import Page
from ops_service.reconciliation import service
from ops_service.reconciliation.schemas import JobOut, JobRetryOut

router = APIRouter(prefix="/api/ops/reconciliation", tags=["ops"])


@router.get("", response_model=Page[JobOut], response_model_by_alias=True)
async def list_jobs(_: SuperadminIdentity, session: DbSession, request: Request) -> Page[JobOut]:
    return await service.list_jobs(session, request.query_params)


@router.post(
    "/{job_id}/retry", status_code=202, response_model=JobRetryOut, response_model_by_alias=True
)
async def retry_job(
    job_id: uuid.UUID, identity: SuperadminIdentity, session: DbSession
) -> JobRetryOut:
    return await service.retry(session, identity, job_id)
