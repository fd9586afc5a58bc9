"""`integrations reseal` after a SECRETS_KEY rotation, against a database of its own (the command
reads every `connections` row, so other tests' rows must not be in it)."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator

import pytest
from integrations_service import cli
from integrations_service.connections import reseal
from integrations_service.crypto import Sealer
from integrations_service.models import SEALED_COLUMNS
from integrations_service.models import connections as C
from integrations_service.settings import Settings
from pydantic import SecretStr
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.plugin import MakeDatabase
from sqlalchemy import LargeBinary, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

OLD_KEY = "the-key-before-the-rotation-0123456789abcdef"
NEW_KEY = "the-key-after-the-rotation-0123456789abcdef"
LOST_KEY = "a-key-nobody-has-any-more-0123456789abcdef"
GRAPH_SECRET = "graph-client-secret-0123456789"
WEBHOOK_SECRET = "icims-webhook-secret-0123456789"


@pytest.fixture(scope="module")
async def reseal_db(make_database: MakeDatabase) -> str:
    return await make_database("integrations_reseal", "integrations_service:migrations")


@pytest.fixture
async def sessions(reseal_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(reseal_db, pool_size=4)
    maker = create_sessionmaker(engine)
    async with unit_of_work(maker) as s:
        await s.execute(delete(C))
    yield maker
    await engine.dispose()


@pytest.fixture
def settings(integrations_settings: Settings, reseal_db: str) -> Settings:
    """Step 1 of the rotation done: the new key current, the old one previous."""
    return integrations_settings.model_copy(
        update={
            "database_url": reseal_db,
            "secrets_key": SecretStr(NEW_KEY),
            "secrets_key_previous": SecretStr(OLD_KEY),
        }
    )


async def add_org(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer, **secrets: str
) -> uuid.UUID:
    org = uuid.uuid4()
    sealed = {c: sealer.seal(v, org_id=org, column=c) for c, v in secrets.items()}
    async with unit_of_work(sessions) as s:
        await s.execute(
            insert(C).values(org_id=org, updated_at=text("now()"), graph_client_id="app", **sealed)
        )
    return org


async def stored(sessions: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[str, bytes]:
    async with sessions() as s:
        row = (await s.execute(select(C).where(C.c.org_id == org))).one()._mapping
    return {c: bytes(row[c]) for c in SEALED_COLUMNS if row[c] is not None}


async def run(settings: Settings, *, dry_run: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = await reseal.command(settings, dry_run=dry_run, out=out)
    return code, out.getvalue()


def test_every_binary_column_of_connections_is_resealed() -> None:
    binary = {c.name for c in C.columns if isinstance(c.type, LargeBinary)}
    assert binary == set(SEALED_COLUMNS)


async def test_values_sealed_with_the_old_key_are_resealed_and_open_with_the_new_key_alone(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    old, new = Sealer(OLD_KEY), Sealer(NEW_KEY)
    org = await add_org(
        sessions,
        old,
        graph_client_secret=GRAPH_SECRET,
        icims_client_secret="icims-client-secret-0123",
        icims_webhook_secret=WEBHOOK_SECRET,
        icims_webhook_secret_previous="the-replaced-webhook-secret-01",
    )
    current = await add_org(sessions, new, graph_client_secret="already-current-secret-01")
    untouched = await stored(sessions, current)

    code, out = await run(settings)

    assert code == 0, out
    assert out.splitlines()[0] == (
        "integrations reseal: 4 resealed, 1 already current, 0 cannot be opened"
    )
    values = await stored(sessions, org)
    assert all(new.is_current(v) for v in values.values())
    # SECRETS_KEY_PREVIOUS can now be removed: the new key alone opens every value.
    assert new.open(values["graph_client_secret"], org_id=org, column="graph_client_secret") == (
        GRAPH_SECRET
    )
    column = "icims_webhook_secret"
    assert new.open(values[column], org_id=org, column=column) == WEBHOOK_SECRET
    assert await stored(sessions, current) == untouched  # already under the new key: not written
    assert GRAPH_SECRET not in out and WEBHOOK_SECRET not in out


async def test_a_second_run_reseals_nothing(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    org = await add_org(sessions, Sealer(OLD_KEY), graph_client_secret=GRAPH_SECRET)
    assert (await run(settings))[0] == 0
    after_first = await stored(sessions, org)

    code, out = await run(settings)

    assert code == 0
    assert out.splitlines()[0] == (
        "integrations reseal: 0 resealed, 1 already current, 0 cannot be opened"
    )
    assert await stored(sessions, org) == after_first  # not even sealed again with a new nonce


async def test_a_value_no_configured_key_opens_is_reported_left_untouched_and_exits_1(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    lost = await add_org(sessions, Sealer(LOST_KEY), icims_webhook_secret=WEBHOOK_SECRET)
    fine = await add_org(sessions, Sealer(OLD_KEY), graph_client_secret=GRAPH_SECRET)
    before = await stored(sessions, lost)

    code, out = await run(settings)

    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "integrations reseal: 1 resealed, 0 already current, 1 cannot be opened"
    assert (
        f"cannot open: org {lost} icims_webhook_secret: sealed with a key that is not configured"
        in lines
    )
    assert WEBHOOK_SECRET not in out
    assert await stored(sessions, lost) == before
    # The other orgs are resealed all the same.
    assert Sealer(NEW_KEY).is_current((await stored(sessions, fine))["graph_client_secret"])
    # Still unopenable on the next run: still 1, so a script notices.
    assert (await run(settings))[0] == 1


async def test_dry_run_counts_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    org = await add_org(
        sessions, Sealer(OLD_KEY), graph_client_secret=GRAPH_SECRET, icims_client_secret="x" * 20
    )
    before = await stored(sessions, org)

    code, out = await run(settings, dry_run=True)

    assert code == 0
    assert out.splitlines()[0] == (
        "integrations reseal --dry-run: 2 to reseal, 0 already current, 0 cannot be opened "
        "(nothing written)"
    )
    assert await stored(sessions, org) == before
    assert (await run(settings))[1].startswith("integrations reseal: 2 resealed")


async def test_a_settings_save_during_the_reseal_is_not_overwritten(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """An admin saves a new secret while the reseal runs: the reseal waits for the row and then
    reads what was saved, instead of writing the old secret, resealed, over it."""
    org = await add_org(sessions, Sealer(OLD_KEY), graph_client_secret=GRAPH_SECRET)
    saved = Sealer(NEW_KEY).seal(
        "entered-by-the-admin-01234", org_id=org, column="graph_client_secret"
    )
    async with sessions() as admin, admin.begin():
        # The save's upsert holds the row until it commits, as `PUT .../settings` does.
        await admin.execute(C.update().where(C.c.org_id == org).values(graph_client_secret=saved))
        running = asyncio.create_task(run(settings))
        await asyncio.sleep(0.5)
        assert not running.done()
    code, out = await running

    assert code == 0, out
    assert (await stored(sessions, org))["graph_client_secret"] == saved
    assert out.splitlines()[0].startswith("integrations reseal: 0 resealed, 1 already current")


def test_the_integrations_command_runs_reseal(
    reseal_db: str,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`integrations reseal --dry-run` as an operator types it, configured from the environment."""
    for name, value in {
        "SCHEDULER_ENV": "test",
        "INTEGRATIONS_DATABASE_URL": reseal_db,
        "SECRETS_KEY": NEW_KEY,
        "SECRETS_KEY_PREVIOUS": OLD_KEY,
    }.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as exited:
        cli.main(["reseal", "--dry-run"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("integrations reseal --dry-run: ")


def test_reseal_refuses_a_development_key_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCHEDULER_ENV", "production")
    monkeypatch.setenv("SECRETS_KEY", "dev-secrets-key-not-for-production-0123456789")
    with pytest.raises(SystemExit) as exited:
        cli.main(["reseal"])
    assert exited.value.code == 2
    assert "SECRETS_KEY" in capsys.readouterr().err
