"""The iCIMS signature matrix, on the verifier alone."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from integrations_service.webhooks.verify import sign, verify

SECRET = "s3cret-for-webhooks-0123456789abcdef"
SIGNED = ["content-type", "host", "x-icims-content-sha256", "x-icims-date"]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BODY = b'{"customerId":"1234","eventType":"WorkFlowStatusChangeEvent","systemId":"W1"}'


def delivery(
    *,
    body: bytes = BODY,
    hashed: bytes | None = None,
    date: datetime = NOW,
    host: str = "hooks.example.com",
    secret: str = SECRET,
    signed: list[str] | None = None,
    path: str = "/api/webhooks/icims",
    query: str = "",
) -> dict:
    headers = {
        "Content-Type": "application/json",
        "Host": host,
        "x-icims-date": date.isoformat().replace("+00:00", "Z"),
        "x-icims-content-sha256": hashlib.sha256(
            hashed if hashed is not None else body
        ).hexdigest(),
    }
    names = signed or SIGNED
    signature = sign(secret, "POST", path, query, headers, names)
    headers["Authorization"] = (
        f"x-icims-v1-hmac-sha256 user=icims,signedheaders={';'.join(names)},signature={signature}"
    )
    return {"headers": headers, "body": body, "path": path, "query": query}


def check(
    d: dict,
    *,
    secret: str = SECRET,
    received_at: datetime = NOW,
    bodies: list[bytes] | None = None,
    path: str | None = None,
    host: str | None = None,
):
    headers = dict(d["headers"])
    if host is not None:
        headers["Host"] = host
    return verify(
        secret=secret,
        method="POST",
        path=path or d["path"],
        query=d["query"],
        headers=headers,
        bodies=bodies or [d["body"]],
        received_at=received_at,
    )


def test_valid_signature_verifies() -> None:
    verdict = check(delivery())
    assert verdict.ok and verdict.user == "icims"


def test_wrong_secret_fails() -> None:
    assert (
        check(delivery(), secret="another-secret-entirely-xxxxxxxxxx").reason
        == "signature mismatch"
    )


def test_altered_body_fails() -> None:
    d = delivery()
    assert (
        check(d, bodies=[BODY.replace(b"W1", b"W2")]).reason
        == "body does not match x-icims-content-sha256"
    )


@pytest.mark.parametrize(
    "header", ["Authorization", "x-icims-date", "x-icims-content-sha256", "Host"]
)
def test_missing_header_fails(header: str) -> None:
    d = delivery()
    del d["headers"][header]
    assert not check(d).ok


@pytest.mark.parametrize(
    "skew", [timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1)]
)
def test_date_more_than_five_minutes_off_fails(skew: timedelta) -> None:
    assert (
        check(delivery(date=NOW + skew)).reason == "x-icims-date more than 5 minutes from receipt"
    )


@pytest.mark.parametrize("skew", [timedelta(minutes=5), -timedelta(minutes=4, seconds=59)])
def test_date_within_five_minutes_verifies(skew: timedelta) -> None:
    assert check(delivery(date=NOW + skew)).ok


def test_signature_for_another_host_fails() -> None:
    d = delivery(host="hooks.other-tenant.example")
    assert check(d, host="hooks.example.com").reason == "signature mismatch"


def test_signature_for_another_path_fails() -> None:
    assert check(delivery(), path="/api/webhooks/other").reason == "signature mismatch"


def test_unsigned_host_or_date_is_refused() -> None:
    verdict = check(delivery(signed=["content-type", "x-icims-content-sha256", "x-icims-date"]))
    assert verdict.reason == "required headers not signed: host"


def test_gzip_body_hashed_either_way_verifies() -> None:
    packed = gzip.compress(BODY)
    over_plain = delivery(body=packed, hashed=BODY)
    assert check(over_plain, bodies=[packed, BODY]).ok
    over_gzip = delivery(body=packed, hashed=packed)
    assert check(over_gzip, bodies=[packed, BODY]).ok


def test_re_verification_uses_the_time_received_not_now() -> None:
    d = delivery(date=NOW)
    assert check(d, received_at=NOW + timedelta(seconds=30)).ok
    assert not check(d, received_at=NOW + timedelta(hours=3)).ok


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer abc",
        "x-icims-v1-hmac-sha256",
        "x-icims-v1-hmac-sha256 user=u,nonsense",
        "x-icims-v1-hmac-sha256 user=u,"
        "signedheaders=host;x-icims-date;x-icims-content-sha256,signature=",
    ],
)
def test_malformed_authorization_fails(authorization: str) -> None:
    d = delivery()
    d["headers"]["Authorization"] = authorization
    assert not check(d).ok


def test_no_secret_configured_never_verifies() -> None:
    assert check(delivery(), secret="").reason == "no webhook secret configured"


@pytest.mark.parametrize("header", ["x-icims-content-sha256", "Authorization"])
def test_non_ascii_header_values_fail_cleanly(header: str) -> None:
    d = delivery()
    if header == "Authorization":
        d["headers"][header] = d["headers"][header][:-4] + "\u00e9\u00e9\u00e9\u00e9"
    else:
        d["headers"][header] = "\u00e9" * 64
    assert not check(d).ok
