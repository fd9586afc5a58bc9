"""What a processed iCIMS delivery means, as contract events.

A status change is only a hint: the workflow must be re-read through the iCIMS API with the
org's connection (customer id → org, credentials). Connection settings and the iCIMS adapter
are not built yet, so such deliveries fail visibly with that reason, are retried, and wait as
`failed` for an operator once the connection exists (ops retry).
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler_contracts import Envelope
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.webhooks.process import Delivery, TranslationError


class NoConnection(TranslationError):
    code = "icims_connection_missing"


async def translate(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
    if delivery.event_type is None:
        # Not a type we act on (the runbook's "Future" rows): processed, nothing to emit.
        return []
    raise NoConnection(
        f"no iCIMS connection is configured for customer {delivery.customer_id or '(none)'}; "
        "the workflow cannot be re-read"
    )
