"""How iCIMS signs a notification (HMAC mode), for the fake's sender.

Deliberately written apart from the receiver's verifier (services/integrations), so that a
mistake in one is caught by the other in the end-to-end tests instead of cancelling out.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

SCHEME = "x-icims-v1-hmac-sha256"
SIGNED = ("content-type", "host", "x-icims-content-sha256", "x-icims-date")


def sign_headers(
    *,
    secret: str,
    method: str,
    host: str,
    path: str,
    query: str,
    body_sha256: str,
    date: datetime | None = None,
) -> dict[str, str]:
    values = {
        "content-type": "application/json",
        "host": host,
        "x-icims-content-sha256": body_sha256,
        "x-icims-date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    canonical = "\n".join(
        [method, path, query, *(f"{name}:{values[name]}" for name in SIGNED), "", ";".join(SIGNED)]
    )
    to_sign = (
        f"{SCHEME}\n{values['x-icims-date']}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": values["content-type"],
        "Host": host,
        "x-icims-content-sha256": body_sha256,
        "x-icims-date": values["x-icims-date"],
        "Authorization": (
            f"{SCHEME} user=icims,signedheaders={';'.join(SIGNED)},signature={signature}"
        ),
    }
