"""What job kinds need: the database, the org's connections and the clients built from them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from scheduler_contracts import Envelope
from scheduler_contracts.envelope import EventData
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations_service.clients import Clients
from integrations_service.connections.service import ConnectionResolver, OrgConnections
from integrations_service.graph.adapter import GraphAdapter
from integrations_service.graph.errors import GraphError
from integrations_service.icims.client import IcimsClient, IcimsError
from integrations_service.jobs.repository import Job
from integrations_service.jobs.runner import JobFailed
from integrations_service.jobs.settings import JobLimits


@dataclass(frozen=True)
class Deps:
    sessions: async_sessionmaker[AsyncSession]
    resolver: ConnectionResolver
    clients: Clients
    limits: JobLimits

    async def connections(self, org_id: uuid.UUID) -> OrgConnections:
        async with self.sessions() as session:
            return await self.resolver.for_org(session, org_id)

    def graph(self, conns: OrgConnections) -> GraphAdapter:
        if not conns.graph.has_credentials:
            raise JobFailed(
                "Microsoft Graph is not connected for this organization",
                code="graph_not_configured",
                retryable=False,
            )
        return self.clients.graph(conns.graph)

    def icims(self, conns: OrgConnections) -> IcimsClient:
        if not conns.icims.configured:
            raise JobFailed(
                "iCIMS is not connected for this organization",
                code="icims_not_configured",
                retryable=False,
            )
        return self.clients.icims(conns.icims)


def result_event(job: Job, data: EventData, *, subject: str | None = None) -> Envelope:
    """An event caused by the envelope that asked for the job (one trace, one correlation)."""
    return Envelope.build(
        data,
        source="integrations",
        org_id=job.org_id,
        subject=subject or (str(job.request_id) if job.request_id else None),
        causation=job.cause,
    )


def from_graph(exc: GraphError) -> JobFailed:
    return JobFailed(
        exc.message,
        code=exc.code or "graph_error",
        retryable=exc.retryable,
        retry_after=exc.retry_after,
        http_status=exc.status,
    )


def from_icims(exc: IcimsError) -> JobFailed:
    return JobFailed(
        str(exc),
        code=exc.code,
        retryable=exc.retryable,
        retry_after=exc.retry_after,
        http_status=exc.status,
    )
