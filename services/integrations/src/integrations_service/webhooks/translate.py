"""What a processed iCIMS delivery means, as contract events.

A status change is only a hint: the workflow is re-read through the iCIMS API with the
connection of the delivery's customer, and the event carries what iCIMS says now. Without a
connection for that customer the delivery fails visibly with that reason (and can be retried
from ops once one exists); nothing is guessed from the payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import (
    IcimsApplicationStatusChanged,
    IcimsCandidateUpdated,
    IcimsJob,
    IcimsPerson,
    IcimsRequisitionUpdated,
)
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.clients import Clients
from integrations_service.connections.service import (
    ConnectionResolver,
    OrgConnections,
    SecretsUnreadable,
)
from integrations_service.icims.client import IcimsError
from integrations_service.webhooks.process import Delivery, TranslationError


class NoConnection(TranslationError):
    code = "icims_connection_missing"


class IcimsUnavailable(TranslationError):
    code = "icims_unavailable"


class CredentialsUnreadable(TranslationError):
    """The customer's org's stored secrets do not open: retried, then failed visibly; an
    operator's retry after the key is restored processes it."""

    code = "secrets_unreadable"


def _hint(payload: dict[str, object], key: str) -> str | None:
    value = payload.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    return None if value in (None, "") else str(value)[:100]


class Translator:
    def __init__(self, resolver: ConnectionResolver, clients: Clients) -> None:
        self._resolver = resolver
        self._clients = clients

    async def __call__(self, session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        if delivery.event_type not in (
            "application.status_changed",
            "candidate.updated",
            "requisition.updated",
        ):
            # A type we do not know: processed, nothing emitted (the delivery stays stored).
            return []
        try:
            conns = (
                await self._resolver.for_customer(session, delivery.customer_id)
                if delivery.customer_id
                else None
            )
        except SecretsUnreadable as exc:
            raise CredentialsUnreadable(
                f"stored credentials cannot be opened: {exc.reasons}"
            ) from exc
        if conns is None or not conns.icims.configured:
            raise NoConnection(
                "no iCIMS connection is configured for customer "
                f"{delivery.customer_id or '(none)'}; the workflow cannot be re-read"
            )
        if delivery.event_type == "candidate.updated":
            return [await self._candidate(conns, delivery)]
        if delivery.event_type == "requisition.updated":
            return [await self._requisition(conns, delivery)]
        workflow_id = _hint(delivery.payload, "systemId")
        new_status = _hint(delivery.payload, "newStatus")
        if workflow_id is None or new_status is None:
            raise TranslationError("status change without systemId or newStatus")
        client, cid = self._clients.icims(conns.icims), delivery.customer_id
        assert cid is not None
        try:
            workflow = await client.get_workflow(cid, workflow_id)
            person = (
                await client.get_person(cid, workflow.person_id) if workflow.person_id else None
            )
            job = await client.get_job(cid, workflow.job_id) if workflow.job_id else None
        except IcimsError as exc:
            raise IcimsUnavailable(str(exc)) from exc
        fact = IcimsApplicationStatusChanged(
            customer_id=cid,
            system_id=workflow_id,
            new_status_id=new_status,
            old_status_id=_hint(delivery.payload, "oldStatus"),
            icims_person_id=workflow.person_id or _hint(delivery.payload, "personId"),
            icims_job_id=workflow.job_id or _hint(delivery.payload, "jobId"),
            icims_user_id=_hint(delivery.payload, "userId"),
            webhook_id=delivery.id,
            current_status_id=workflow.status_id,
            current_status_name=workflow.status_name[:200] if workflow.status_name else None,
            person=IcimsPerson(
                icims_person_id=person.id,
                first_name=person.first_name,
                last_name=person.last_name,
                email=person.email,
            )
            if person
            else None,
            job=IcimsJob(icims_job_id=job.id, title=job.title, job_number=job.number)
            if job
            else None,
            reread_at=datetime.now(UTC),
            triggers_scheduling=bool(
                conns.icims.schedule_status_id
                and (workflow.status_id or new_status) == conns.icims.schedule_status_id
            ),
        )
        return [
            Envelope.build(
                fact,
                source="integrations",
                org_id=conns.org_id,
                subject=f"icims:{cid}:{workflow_id}",
            )
        ]

    async def _candidate(self, conns: OrgConnections, delivery: Delivery) -> Envelope:
        person_id = _hint(delivery.payload, "personId") or _hint(delivery.payload, "systemId")
        if person_id is None:
            raise TranslationError("candidate update without personId or systemId")
        cid = delivery.customer_id
        assert cid is not None
        try:
            person = await self._clients.icims(conns.icims).get_person(cid, person_id)
        except IcimsError as exc:
            raise IcimsUnavailable(str(exc)) from exc
        fact = IcimsCandidateUpdated(
            customer_id=cid,
            icims_person_id=person_id,
            webhook_id=delivery.id,
            person=IcimsPerson(
                icims_person_id=person.id,
                first_name=person.first_name,
                last_name=person.last_name,
                email=person.email,
            ),
            reread_at=datetime.now(UTC),
        )
        return Envelope.build(
            fact,
            source="integrations",
            org_id=conns.org_id,
            subject=f"icims:{cid}:person:{person_id}",
        )

    async def _requisition(self, conns: OrgConnections, delivery: Delivery) -> Envelope:
        job_id = _hint(delivery.payload, "jobId") or _hint(delivery.payload, "systemId")
        if job_id is None:
            raise TranslationError("requisition update without jobId or systemId")
        cid = delivery.customer_id
        assert cid is not None
        try:
            job = await self._clients.icims(conns.icims).get_job(cid, job_id)
        except IcimsError as exc:
            raise IcimsUnavailable(str(exc)) from exc
        fact = IcimsRequisitionUpdated(
            customer_id=cid,
            icims_job_id=job_id,
            webhook_id=delivery.id,
            job=IcimsJob(icims_job_id=job.id, title=job.title, job_number=job.number),
            reread_at=datetime.now(UTC),
        )
        return Envelope.build(
            fact, source="integrations", org_id=conns.org_id, subject=f"icims:{cid}:job:{job_id}"
        )
