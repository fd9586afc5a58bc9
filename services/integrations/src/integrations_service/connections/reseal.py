"""`integrations reseal`: every sealed value in `connections` sealed with `SECRETS_KEY`.

After a key rotation (docs/operations.md §7.2) each value is opened with `SECRETS_KEY` or
`SECRETS_KEY_PREVIOUS` and, when its key id is not the current key's, sealed again with
`SECRETS_KEY` (same org and column, so the associated data still binds it). A value that opens
with neither is reported (org and column, never a value) and left as it is.

Invariants, kept here:
- One transaction per org, its row locked (`SELECT ... FOR UPDATE`) from the read to the write:
  a settings save running at the same time either commits first (and is what gets read) or
  waits and then writes its own values; neither overwrites the other.
- Idempotent: a value already under `SECRETS_KEY` is not written, so a second run reseals 0.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from typing import TextIO

from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations_service.connections import repository
from integrations_service.crypto import Sealer, SecretsKeyError
from integrations_service.models import SEALED_COLUMNS
from integrations_service.settings import Settings


@dataclass(frozen=True)
class Unopenable:
    org_id: uuid.UUID
    column: str
    reason: str


@dataclass
class Report:
    resealed: int = 0  # in a dry run: would be
    current: int = 0
    unopenable: list[Unopenable] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every value is (or, in a dry run, would be) under SECRETS_KEY afterwards."""
        return 1 if self.unopenable else 0


async def reseal(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer, *, dry_run: bool = False
) -> Report:
    report = Report()
    async with sessions() as session:
        org_ids = await repository.sealed_org_ids(session)
    for org_id in org_ids:
        async with unit_of_work(sessions) as session:
            row = await repository.lock_sealed(session, org_id)
            if row is None:
                continue  # removed since the list was read
            values: dict[str, bytes] = {}
            for column in SEALED_COLUMNS:
                if row[column] is None:
                    continue
                sealed = bytes(row[column])
                try:
                    plain = sealer.open(sealed, org_id=org_id, column=column)
                except SecretsKeyError as exc:
                    report.unopenable.append(Unopenable(org_id, column, exc.reason))
                    continue
                if sealer.is_current(sealed):
                    report.current += 1
                else:
                    values[column] = sealer.seal(plain, org_id=org_id, column=column)
                    report.resealed += 1
            if values and not dry_run:
                await repository.write_sealed(session, org_id, values)
    return report


def render(report: Report, *, dry_run: bool) -> list[str]:
    """What the command prints: counts, then each value that does not open (no values)."""
    if dry_run:
        head = f"integrations reseal --dry-run: {report.resealed} to reseal"
    else:
        head = f"integrations reseal: {report.resealed} resealed"
    lines = [
        f"{head}, {report.current} already current, {len(report.unopenable)} cannot be opened"
        + (" (nothing written)" if dry_run else "")
    ]
    lines += [f"cannot open: org {u.org_id} {u.column}: {u.reason}" for u in report.unopenable]
    if report.unopenable:
        lines.append(
            "Left as they are. Put the key that sealed them in SECRETS_KEY_PREVIOUS and run "
            "again, or have each org's admin enter those secrets again in its settings."
        )
    return lines


async def command(settings: Settings, *, dry_run: bool, out: TextIO | None = None) -> int:
    sealer = settings.sealer()
    engine = create_engine(settings.sqlalchemy_url, pool_size=1, application_name="reseal")
    try:
        report = await reseal(create_sessionmaker(engine), sealer, dry_run=dry_run)
    finally:
        await engine.dispose()
    for line in render(report, dry_run=dry_run):
        print(line, file=out or sys.stdout)
    return report.exit_code
