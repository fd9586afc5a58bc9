"""An org's effective connections: its own settings where it has them, else the install's.

Credentials resolve as a group (an org that names its own Graph tenant or client id uses its
own secret too, never the install's), the rest field by field (an org may keep the install's
Graph app and only name its own organizer mailbox). Secrets are opened here and nowhere else.

A stored secret the configured keys cannot open (SECRETS_KEY lost, SECRETS_KEY_PREVIOUS removed
before `integrations reseal`) never falls back to the install's: resolving that org raises
`SecretsUnreadable`, which names the secrets (never their values). Each caller turns it into
what it can keep: an API answers 503 `secrets_unreadable`, a job retries with that reason, a
webhook delivery is stored unverified.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from servicekit.errors import AppError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.crypto import Sealer, SecretsKeyError
from integrations_service.models import connections as C
from integrations_service.settings import Settings

Source = Literal["org", "default", "none"]

# Each sealed column as the settings API names it (what an admin enters again). The replaced
# webhook secret is dropped when the webhook secret is saved again.
SECRET_FIELDS = {
    "graph_client_secret": "graph.clientSecret",
    "icims_client_secret": "icims.clientSecret",
    "icims_webhook_secret": "icims.webhookSecret",
    "icims_webhook_secret_previous": "icims.webhookSecret",
}


class SecretsUnreadable(AppError):
    """An org's stored secrets do not open with SECRETS_KEY or SECRETS_KEY_PREVIOUS.

    503: nothing the caller sent is wrong, and it heals when an operator restores the key (or an
    admin enters the secrets again). The message and details name secrets, never values."""

    status = 503
    code = "secrets_unreadable"

    def __init__(self, org_id: uuid.UUID, errors: list[SecretsKeyError]) -> None:
        self.org_id = org_id
        self.errors = errors
        fields = sorted({SECRET_FIELDS.get(e.column, e.column) for e in errors})
        super().__init__(
            "The stored integration credentials of this organization cannot be opened with the "
            "configured SECRETS_KEY. An operator must restore SECRETS_KEY (or "
            "SECRETS_KEY_PREVIOUS), or an admin must enter these secrets again: "
            + ", ".join(fields)
            + ".",
            details={"secrets": fields},
        )

    @property
    def reasons(self) -> str:
        """`column: why` for each secret, for logs and `lastError` (no values)."""
        return "; ".join(str(e) for e in self.errors)


@dataclass(frozen=True)
class GraphConnection:
    base_url: str
    tenant_id: str | None
    client_id: str | None
    client_secret: str | None
    static_token: str | None
    organizer_mailbox: str | None
    source: Source  # whose credentials: the org's, the install's, or none

    @property
    def has_credentials(self) -> bool:
        return bool(self.static_token or (self.tenant_id and self.client_id and self.client_secret))

    @property
    def configured(self) -> bool:
        return self.has_credentials and bool(self.organizer_mailbox)

    def fingerprint(self) -> str:
        parts = (
            self.base_url,
            self.tenant_id,
            self.client_id,
            self.client_secret,
            self.static_token,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass(frozen=True)
class IcimsConnection:
    base_url: str
    token_url: str
    customer_id: str | None
    client_id: str | None
    client_secret: str | None
    webhook_secret: str | None
    note_field: str | None
    schedule_status_id: str | None
    scheduled_status_id: str | None
    source: Source
    # A replaced webhook secret still within its overlap: deliveries signed with it verify.
    previous_webhook_secret: str | None = None

    @property
    def webhook_secrets(self) -> list[str]:
        """The secrets a delivery may be signed with, the current one first."""
        return [s for s in (self.webhook_secret, self.previous_webhook_secret) if s]

    @property
    def configured(self) -> bool:
        return bool(self.customer_id and self.client_id and self.client_secret)

    def fingerprint(self) -> str:
        parts = (self.base_url, self.token_url, self.client_id, self.client_secret)
        return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass(frozen=True)
class OrgConnections:
    org_id: uuid.UUID
    graph: GraphConnection
    icims: IcimsConnection


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


class ConnectionResolver:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sealer: Sealer = settings.sealer()

    @property
    def sealer(self) -> Sealer:
        return self._sealer

    async def for_org(self, session: AsyncSession, org_id: uuid.UUID) -> OrgConnections:
        row = (await session.execute(select(C).where(C.c.org_id == org_id))).first()
        return self.resolve(org_id, row._mapping if row is not None else None)

    async def for_customer(self, session: AsyncSession, customer_id: str) -> OrgConnections | None:
        """The org a delivery for this iCIMS customer belongs to, with its connections."""
        row = (await session.execute(select(C).where(C.c.icims_customer_id == customer_id))).first()
        if row is not None:
            return self.resolve(row.org_id, row._mapping)
        s = self._settings
        if s.icims_customer_id == customer_id and s.icims_org_id is not None:
            return await self.for_org(session, s.icims_org_id)
        return None

    def open_secret(self, org_id: uuid.UUID, row: Any, column: str) -> str | None:
        """One stored secret of the org (None: unset); `SecretsKeyError` if it does not open."""
        sealed = row[column] if row is not None else None
        if sealed is None:
            return None
        return self._sealer.open(bytes(sealed), org_id=org_id, column=column)

    def _open(
        self, org_id: uuid.UUID, row: Any, column: str, errors: list[SecretsKeyError]
    ) -> str | None:
        try:
            return self.open_secret(org_id, row, column)
        except SecretsKeyError as exc:
            errors.append(exc)  # all of them, so the answer names every secret to fix
            return None

    def _previous_webhook_secret(
        self, org_id: uuid.UUID, row: Any, errors: list[SecretsKeyError]
    ) -> str | None:
        """The org's replaced secret within its overlap, else the install's previous one."""
        s = self._settings
        if row is None or row["icims_webhook_secret"] is None:
            return _secret(s.icims_webhook_secret_previous)  # the install's secret applies
        rotated_at = row["icims_webhook_secret_rotated_at"]
        overlap = timedelta(hours=s.webhook_secret_overlap_hours)
        if rotated_at is None or datetime.now(UTC) - rotated_at > overlap:
            return None
        return self._open(org_id, row, "icims_webhook_secret_previous", errors)

    def resolve(self, org_id: uuid.UUID, row: Any) -> OrgConnections:
        """The org's connections; `SecretsUnreadable` if a secret it needs does not open."""
        s = self._settings
        errors: list[SecretsKeyError] = []

        def own(column: str) -> Any:
            return row[column] if row is not None else None

        base = s.icims_base_url.rstrip("/")
        if own("graph_tenant_id") or own("graph_client_id"):
            g_tenant, g_client = own("graph_tenant_id"), own("graph_client_id")
            g_secret = self._open(org_id, row, "graph_client_secret", errors)
            g_token, g_source = None, "org"
        else:
            g_tenant, g_client = s.graph_tenant_id, s.graph_client_id
            g_secret, g_token = _secret(s.graph_client_secret), _secret(s.graph_static_token)
            g_source = "default" if (g_token or g_client) else "none"
        mailbox = own("graph_organizer_mailbox") or s.graph_organizer_mailbox
        graph = GraphConnection(
            base_url=s.graph_base_url.rstrip("/"),
            tenant_id=g_tenant,
            client_id=g_client,
            client_secret=g_secret,
            static_token=g_token,
            organizer_mailbox=mailbox.lower() if mailbox else None,
            source=g_source,  # type: ignore[arg-type]
        )

        if own("icims_customer_id") or own("icims_client_id"):
            i_customer, i_client = own("icims_customer_id"), own("icims_client_id")
            i_secret = self._open(org_id, row, "icims_client_secret", errors)
            i_token_url = own("icims_token_url") or f"{base}/oauth/token"
            i_source: Source = "org"
        else:
            i_customer, i_client = s.icims_customer_id, s.icims_client_id
            i_secret = _secret(s.icims_client_secret)
            i_token_url = s.icims_token_url or f"{base}/oauth/token"
            i_source = "default" if i_client else "none"
        icims = IcimsConnection(
            base_url=base,
            token_url=i_token_url,
            customer_id=i_customer,
            client_id=i_client,
            client_secret=i_secret,
            webhook_secret=self._open(org_id, row, "icims_webhook_secret", errors)
            or _secret(s.icims_webhook_secret),
            previous_webhook_secret=self._previous_webhook_secret(org_id, row, errors),
            note_field=own("icims_note_field") or s.icims_note_field,
            schedule_status_id=own("icims_schedule_status_id") or s.icims_schedule_status_id,
            scheduled_status_id=own("icims_scheduled_status_id") or s.icims_scheduled_status_id,
            source=i_source,
        )
        if errors:
            # Never the install's secret in place of the org's own: that would let deliveries
            # signed with the install's secret speak for this org's customer.
            raise SecretsUnreadable(org_id, errors)
        return OrgConnections(org_id, graph, icims)
