"""Settings precedence and production refusals; the identity token's verification."""

from __future__ import annotations

import time
import uuid
from typing import ClassVar

import jwt
import pytest
from servicekit import identity as tokens
from servicekit.settings import ConfigurationError, KitSettings

STRONG = "s" * 40


class DemoSettings(KitSettings):
    service_name: ClassVar[str] = "demo"


def test_service_prefixed_variable_overrides_shared_one(monkeypatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://shared/")
    monkeypatch.setenv("DEMO_AMQP_URL", "amqp://mine/")
    monkeypatch.setenv("OUTBOX_BATCH_SIZE", "7")
    s = DemoSettings()
    assert s.amqp_url == "amqp://mine/"
    assert s.outbox_batch_size == 7


def test_database_is_per_service_and_a_generic_database_url_is_ignored(monkeypatch) -> None:
    monkeypatch.setenv("POSTGRES_URL", "postgresql://u:p@db.example:5433")
    monkeypatch.setenv("DATABASE_URL", "postgresql://everyone@shared/one")
    s = DemoSettings()
    assert s.sqlalchemy_url == "postgresql+asyncpg://u:p@db.example:5433/scheduler_demo"
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql://me@own/demo_db")
    assert DemoSettings().sqlalchemy_url == "postgresql+asyncpg://me@own/demo_db"


def test_production_is_the_default_and_refuses_missing_secret(monkeypatch) -> None:
    monkeypatch.delenv("SCHEDULER_ENV", raising=False)
    monkeypatch.delenv("INTERNAL_TOKEN_SECRET", raising=False)
    s = DemoSettings()
    assert s.env == "production"
    with pytest.raises(ConfigurationError, match="INTERNAL_TOKEN_SECRET"):
        s.check_for_start()


@pytest.mark.parametrize(
    "secret", ["dev-internal-token-secret-not-for-production", "changeme", "short"]
)
def test_production_refuses_well_known_or_short_secret(monkeypatch, secret: str) -> None:
    monkeypatch.setenv("SCHEDULER_ENV", "production")
    monkeypatch.setenv("INTERNAL_TOKEN_SECRET", secret)
    with pytest.raises(ConfigurationError):
        DemoSettings().check_for_start()


def test_production_starts_with_a_real_secret_and_development_with_none(monkeypatch) -> None:
    monkeypatch.setenv("SCHEDULER_ENV", "production")
    monkeypatch.setenv("INTERNAL_TOKEN_SECRET", STRONG)
    DemoSettings().check_for_start()
    monkeypatch.setenv("SCHEDULER_ENV", "development")
    monkeypatch.delenv("INTERNAL_TOKEN_SECRET")
    dev = DemoSettings()
    dev.check_for_start()
    assert dev.token_secret()


def _identity() -> tokens.Identity:
    return tokens.Identity(
        kind="user",
        subject=str(uuid.uuid4()),
        email="a@example.com",
        org_id=uuid.uuid4(),
        role="admin",
        superadmin=True,
    )


def test_identity_round_trips() -> None:
    who = _identity()
    assert tokens.verify(tokens.sign(who, STRONG), STRONG) == who


def test_tampered_token_is_rejected() -> None:
    token = tokens.sign(_identity(), STRONG)
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["org"] = str(uuid.uuid4())
    forged = jwt.encode(claims, "another-secret-that-is-long-enough-x", algorithm="HS256")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(forged, STRONG)
    header, payload, sig = token.split(".")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(f"{header}.{payload}.{sig[:-2]}xx", STRONG)


def test_unsigned_token_is_rejected() -> None:
    claims = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "sub": "x",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(unsigned, STRONG)


def test_expired_token_is_rejected() -> None:
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(tokens.sign(_identity(), STRONG, ttl_seconds=-30), STRONG)
