"""Alembic, the same way for every service: `env.py` calls `run_env(metadata, default_url)`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from servicekit.db import create_database_if_missing


def alembic_config(script_location: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["url"] = url
    return cfg


def upgrade(script_location: str, url: str, revision: str = "head") -> None:
    """Synchronous; it runs its own event loop (call it from a thread in async code)."""
    command.upgrade(alembic_config(script_location, url), revision)


async def migrate(script_location: str, url: str) -> None:
    await create_database_if_missing(url)
    await asyncio.to_thread(upgrade, script_location, url)


def run_env(metadata: MetaData, default_url: Callable[[], str]) -> None:
    """Body of a service's migrations/env.py."""
    config = context.config
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or default_url()
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, metadata))


async def _run_online(url: str, metadata: MetaData) -> None:
    engine = async_engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_do_run, metadata)
    finally:
        await engine.dispose()


def _do_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
