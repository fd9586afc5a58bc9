"""iCIMS webhook signatures (HMAC mode), kept in one small function so it can be corrected.

    Authorization: x-icims-v1-hmac-sha256 user=<u>,signedheaders=<h1;h2;...>,signature=<hex>
    x-icims-date: <ISO 8601>         x-icims-content-sha256: <hex sha256 of the body>

    canonical  = METHOD \\n path \\n query \\n <"name:value" per signed header, sorted>
                 \\n \\n signedheaders
    to sign    = "x-icims-v1-hmac-sha256" \\n x-icims-date \\n hex(sha256(canonical))
    signature  = hex(hmac_sha256(secret, to sign))

Whether iCIMS hashes the gzip'd or the decoded body is not public: either is accepted. The date
must be within 5 minutes of the time the delivery was *received* (so a delivery stored while the
secret was wrong can be re-verified later against the corrected secret). Comparisons are
constant-time. Signing `host`, `x-icims-date` and the content hash is required: without them a
signature could be replayed against another host, time or body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations_service.settings import Settings

SCHEME = "x-icims-v1-hmac-sha256"
# The reason given when the org's own webhook secret is stored but no configured key opens it:
# the delivery is kept unverified until an operator restores the key and retries it.
UNREADABLE_REASON = (
    "the org's stored webhook secret cannot be opened with SECRETS_KEY: retry once the key is back"
)
REQUIRED_SIGNED = frozenset({"host", "x-icims-date", "x-icims-content-sha256"})
MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None = None  # why not, short and stable (shown to operators)
    user: str | None = None


def _parse_authorization(value: str) -> dict[str, str] | None:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != SCHEME or not rest:
        return None
    params: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        params[key.strip().lower()] = val.strip()
    return params


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], signed: Sequence[str]
) -> str:
    lines = [f"{name}:{headers.get(name, '').strip()}" for name in sorted(signed)]
    return "\n".join([method.upper(), path, query, *lines, "", ";".join(signed)])


def string_to_sign(date: str, canonical: str) -> str:
    return f"{SCHEME}\n{date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def sign(
    secret: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
) -> str:
    """The signature iCIMS would send (used by the sandbox sender and the tests)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    to_sign = string_to_sign(
        lowered["x-icims-date"], canonical_request(method, path, query, lowered, signed)
    )
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    *,
    secret: str | None,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    received_at: datetime,
) -> Verdict:
    """Is this delivery signed by someone holding `secret`? `bodies`: the raw body and, if it
    was compressed, the decoded one (the content hash may cover either)."""
    if not secret:
        return Verdict(False, "no webhook secret configured")
    h = {k.lower(): v for k, v in headers.items()}
    params = _parse_authorization(h.get("authorization", ""))
    if params is None:
        return Verdict(False, "missing or malformed Authorization header")
    signed = [s.strip().lower() for s in params.get("signedheaders", "").split(";") if s.strip()]
    missing = REQUIRED_SIGNED - set(signed)
    if missing:
        return Verdict(False, f"required headers not signed: {', '.join(sorted(missing))}")
    absent = [name for name in signed if name not in h]
    if absent:
        # The names come from the sender: keep the reason short enough to store and announce.
        return Verdict(False, f"signed headers absent: {', '.join(absent)}"[:200])
    date = _parse_date(h["x-icims-date"])
    if date is None:
        return Verdict(False, "x-icims-date is not an ISO 8601 time with zone")
    if abs(received_at - date) > MAX_SKEW:
        return Verdict(False, "x-icims-date more than 5 minutes from receipt")
    claimed = h["x-icims-content-sha256"].strip().lower()
    # Bytes, not str: compare_digest refuses non-ASCII str, and headers are caller-controlled.
    claimed_bytes = claimed.encode("utf-8", "replace")
    if not any(
        hmac.compare_digest(claimed_bytes, hashlib.sha256(b).hexdigest().encode()) for b in bodies
    ):
        return Verdict(False, "body does not match x-icims-content-sha256")
    expected = sign(secret, method, path, query, h, signed)
    presented = params.get("signature", "").lower()
    if not hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace")):
        return Verdict(False, "signature mismatch")
    return Verdict(True, None, params.get("user"))


def verify_any(
    secrets: str | Sequence[str] | None,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    received_at: datetime,
) -> Verdict:
    """`verify` with each accepted secret, the current one first (a secret being rotated out
    is still accepted during its overlap). The first secret's verdict explains a refusal."""
    if secrets is None or isinstance(secrets, str):
        secrets = [secrets] if secrets else []
    candidates: list[str | None] = [*secrets] or [None]  # none: verify() says why not
    first: Verdict | None = None
    for secret in candidates:
        verdict = verify(
            secret=secret,
            method=method,
            path=path,
            query=query,
            headers=headers,
            bodies=bodies,
            received_at=received_at,
        )
        if verdict.ok:
            return verdict
        first = first or verdict
    assert first is not None
    return first


def install_secrets(settings: Settings) -> list[str]:
    """The install's webhook secrets (its own, then one being rotated out), for deliveries of a
    customer no org has connected with a secret of its own."""
    return [
        s.get_secret_value()
        for s in (settings.icims_webhook_secret, settings.icims_webhook_secret_previous)
        if s is not None
    ]
