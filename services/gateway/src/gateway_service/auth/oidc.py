"""Google sign-in through authlib: discovery, state + nonce + PKCE S256, exact redirect URI.

authlib keeps the flow's state, nonce and code verifier in a cache; ours is the gateway's
database, so they never sit in a cookie and each is used once (a replayed callback finds
nothing). The browser's flow cookie only holds a marker for its state, binding the callback to
the browser that started it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from authlib.integrations.starlette_client import OAuth
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway_service.models import oauth_flows
from gateway_service.settings import Settings

PROVIDER = "google"


class DatabaseFlowCache:
    """authlib's async cache interface over the `oauth_flows` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, key: str) -> str | None:
        async with self._sessions() as db:
            row = (await db.execute(select(oauth_flows).where(oauth_flows.c.key == key))).first()
        if row is None or row.expires_at < datetime.now(UTC):
            return None
        return str(row.value)

    async def set(self, key: str, value: str, expires: int | None = None) -> None:
        until = datetime.now(UTC) + timedelta(seconds=min(expires or 600, 600))
        async with self._sessions() as db, db.begin():
            # Sweep expired flows as we go; abandoned sign-ins never pile up.
            await db.execute(
                delete(oauth_flows).where(oauth_flows.c.expires_at < datetime.now(UTC))
            )
            stmt = insert(oauth_flows).values(key=key, value=value, expires_at=until)
            await db.execute(
                stmt.on_conflict_do_update(
                    index_elements=[oauth_flows.c.key],
                    set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
                )
            )

    async def delete(self, key: str) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(delete(oauth_flows).where(oauth_flows.c.key == key))


def build_oauth(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> OAuth:
    oauth = OAuth(cache=DatabaseFlowCache(sessions))
    secret = settings.google_client_secret
    oauth.register(
        PROVIDER,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_id=settings.google_client_id or "interview-scheduler-dev",
        client_secret=secret.get_secret_value() if secret else "dev-client-secret",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )
    return oauth
