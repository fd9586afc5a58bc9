"""Properties of the iCIMS webhook verifier: a delivery signed by the sandbox's independent
signer verifies, and changing any signed part of it afterwards (a body byte, a signed header, the
signature, the date, the secret) makes it fail. Example counts come from the Hypothesis profile
(the workspace conftest.py; HYPOTHESIS_PROFILE=slow runs many more)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st
from integrations_service.webhooks.verify import MAX_SKEW, SCHEME, Verdict, sign, verify
from scheduler_sandbox.icims_signing import SIGNED, sign_headers

BLOCK = 64  # SHA-256's block size: HMAC pads shorter keys with zeros and hashes longer ones

# Header values arrive trimmed (HTTP strips surrounding whitespace); the verifier trims too.
trimmed = st.text(max_size=40).filter(lambda s: s == s.strip())
secrets = st.text(min_size=1, max_size=90)
methods = st.sampled_from(["POST", "PUT", "PATCH"])
dates = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))  # the signer sends whole seconds
token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
extra_names = token.map(lambda t: f"x-extra-{t}")
# What can reach the verifier: the endpoint decodes the path, query and headers as latin-1, and
# stored deliveries come back from PostgreSQL, so no lone surrogates.
chars = st.characters(codec="utf-8")


@dataclass(frozen=True)
class Delivery:
    secret: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime

    def check(self, **changes: object) -> Verdict:
        d = replace(self, **changes)  # type: ignore[arg-type]
        return verify(
            secret=d.secret,
            method=d.method,
            path=d.path,
            query=d.query,
            headers=d.headers,
            bodies=[d.body],
            received_at=d.received_at,
        )

    def with_header(self, name: str, value: str) -> Delivery:
        return replace(self, headers={**self.headers, name: value})


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    """A delivery as the sandbox's iCIMS signs it, with unsigned headers of any value beside."""
    secret = draw(secrets)
    method = draw(methods)
    path = draw(st.text(max_size=60))
    query = draw(st.text(max_size=60))
    body = draw(st.binary(max_size=2048))
    date = draw(dates)
    headers = sign_headers(
        secret=secret,
        method=method,
        host=draw(trimmed),
        path=path,
        query=query,
        body_sha256=hashlib.sha256(body).hexdigest(),
        date=date,
    )
    headers.update(draw(st.dictionaries(extra_names, st.text(max_size=40), max_size=3)))
    received_at = date + draw(st.timedeltas(min_value=-MAX_SKEW, max_value=MAX_SKEW))
    return Delivery(secret, method, path, query, headers, body, received_at)


def hmac_key(secret: str) -> bytes:
    """The key HMAC actually uses (RFC 2104): two secrets with the same one are the same key."""
    key = secret.encode()
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    return key.ljust(BLOCK, b"\0")


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with one byte flipped, inserted or deleted."""
    ops = ["insert"] + (["flip", "delete"] if original else [])
    op = draw(st.sampled_from(ops))
    i = draw(st.integers(0, len(original) - (op != "insert")))
    if op == "flip":
        bit = 1 << draw(st.integers(0, 7))
        return original[:i] + bytes([original[i] ^ bit]) + original[i + 1 :]
    if op == "insert":
        return original[:i] + bytes([draw(st.integers(0, 255))]) + original[i:]
    return original[:i] + original[i + 1 :]


@st.composite
def mutated_text(draw: st.DrawFn, original: str, alphabet: st.SearchStrategy[str]) -> str:
    """`original` with one character replaced, inserted or deleted, or another value entirely."""
    op = draw(st.sampled_from(["replace", "insert", "delete", "other"]))
    if op == "other" or not original:
        return draw(st.text(alphabet=alphabet, max_size=80))
    i = draw(st.integers(0, len(original) - (op != "insert")))
    if op == "insert":
        return original[:i] + draw(alphabet) + original[i:]
    if op == "delete":
        return original[:i] + original[i + 1 :]
    return original[:i] + draw(alphabet) + original[i + 1 :]


def header_key(headers: dict[str, str], name: str) -> str:
    return next(k for k in headers if k.lower() == name)


def signature_of(d: Delivery) -> str:
    return header_key_value(d, "authorization").rsplit("signature=", 1)[1]


def header_key_value(d: Delivery, name: str) -> str:
    return d.headers[header_key(d.headers, name)]


def with_authorization(d: Delivery, *, signed: str | None = None, signature: str) -> Delivery:
    names = signed if signed is not None else ";".join(SIGNED)
    value = f"{SCHEME} user=icims,signedheaders={names},signature={signature}"
    return d.with_header(header_key(d.headers, "authorization"), value)


# --- what verifies ---------------------------------------------------------------------------


@given(deliveries())
def test_a_delivery_signed_by_the_sandbox_signer_verifies(d: Delivery) -> None:
    verdict = d.check()
    assert verdict == Verdict(True, None, "icims")


@given(deliveries())
def test_the_verifiers_sign_agrees_with_the_independent_signer(d: Delivery) -> None:
    # The two implementations are kept apart on purpose; this pins that they compute one thing.
    ours = sign(d.secret, d.method, d.path, d.query, d.headers, list(SIGNED))
    assert ours == signature_of(d)


@given(
    deliveries(),
    st.dictionaries(extra_names, st.text(max_size=40), min_size=1, max_size=4),
    st.data(),
)
def test_extra_signed_headers_verify_and_each_is_covered(
    d: Delivery, extra: dict[str, str], data: st.DataObject
) -> None:
    # The sandbox signs a fixed set of headers; iCIMS may sign more. Signed here with the
    # verifier's own `sign`, which the test above ties to the independent signer.
    headers = {**d.headers, **extra}
    names = data.draw(st.permutations(sorted({*SIGNED, *extra})))
    signature = sign(d.secret, d.method, d.path, d.query, headers, names)
    signed = with_authorization(
        replace(d, headers=headers), signed=";".join(names), signature=signature
    )
    assert signed.check().ok

    name = data.draw(st.sampled_from(sorted(extra)))
    value = data.draw(mutated_text(headers[name], chars))
    assume(value.strip() != headers[name].strip())
    assert signed.with_header(name, value).check().reason == "signature mismatch"


@given(deliveries(), st.timedeltas(min_value=-MAX_SKEW, max_value=MAX_SKEW))
def test_any_receipt_time_within_the_tolerance_verifies(d: Delivery, skew: timedelta) -> None:
    date = datetime.fromisoformat(header_key_value(d, "x-icims-date").replace("Z", "+00:00"))
    assert d.check(received_at=date + skew).ok


# --- what does not ---------------------------------------------------------------------------


@given(deliveries(), st.data())
def test_changing_one_body_byte_fails(d: Delivery, data: st.DataObject) -> None:
    body = data.draw(mutated_bytes(d.body))
    assert d.check(body=body).reason == "body does not match x-icims-content-sha256"


@given(deliveries(), st.sampled_from(SIGNED), st.data())
def test_changing_a_signed_header_fails(d: Delivery, name: str, data: st.DataObject) -> None:
    key = header_key(d.headers, name)
    value = data.draw(mutated_text(d.headers[key], chars))
    # Surrounding whitespace is not part of a header's value (HTTP trims it; so does the
    # canonical request), so changing only that is not a change.
    assume(value.strip() != d.headers[key].strip())
    assert not d.with_header(key, value).check().ok


@given(deliveries(), st.sampled_from(SIGNED))
def test_dropping_a_signed_header_fails(d: Delivery, name: str) -> None:
    headers = {k: v for k, v in d.headers.items() if k.lower() != name}
    assert not d.check(headers=headers).ok


@given(deliveries(), st.data())
def test_any_other_signature_fails(d: Delivery, data: st.DataObject) -> None:
    original = signature_of(d)
    # No comma: it would end the parameter, leaving the signature itself unchanged.
    alphabet = st.sampled_from("0123456789abcdef") | st.characters(
        codec="utf-8", exclude_characters=","
    )
    signature = data.draw(mutated_text(original, alphabet))
    # Hex is read case-insensitively and parameters are trimmed: those are not changes.
    assume(signature.strip().lower() != original)
    assert with_authorization(d, signature=signature).check().reason == "signature mismatch"


@given(deliveries(), st.permutations(SIGNED), st.sets(st.sampled_from(SIGNED), max_size=3))
def test_another_list_of_signed_headers_fails(
    d: Delivery, order: list[str], dropped: set[str]
) -> None:
    names = [n for n in order if n not in dropped]
    assume(names != list(SIGNED))
    changed = with_authorization(d, signed=";".join(names), signature=signature_of(d))
    assert not changed.check().ok


@given(deliveries(), dates)
def test_another_date_fails_even_within_the_tolerance(d: Delivery, date: datetime) -> None:
    value = date.strftime("%Y-%m-%dT%H:%M:%SZ")
    key = header_key(d.headers, "x-icims-date")
    assume(value != d.headers[key])
    # Received right at the new date, so only the signature can refuse it.
    verdict = d.with_header(key, value).check(received_at=date)
    assert verdict.reason == "signature mismatch"


@given(
    deliveries(),
    st.timedeltas(min_value=MAX_SKEW + timedelta(microseconds=1), max_value=timedelta(days=400)),
    st.booleans(),
)
def test_a_replay_outside_the_tolerance_fails(d: Delivery, skew: timedelta, early: bool) -> None:
    date = datetime.fromisoformat(header_key_value(d, "x-icims-date").replace("Z", "+00:00"))
    verdict = d.check(received_at=date - skew if early else date + skew)
    assert verdict.reason == "x-icims-date more than 5 minutes from receipt"


@given(deliveries(), st.data())
def test_another_secret_fails(d: Delivery, data: st.DataObject) -> None:
    secret = data.draw(mutated_text(d.secret, chars))
    assume(secret and hmac_key(secret) != hmac_key(d.secret))
    assert d.check(secret=secret).reason == "signature mismatch"


@given(deliveries(), st.sampled_from(["", None]))
def test_no_secret_never_verifies(d: Delivery, secret: str | None) -> None:
    assert d.check(secret=secret).reason == "no webhook secret configured"


# --- hostile headers -------------------------------------------------------------------------

authorizations = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda user, names, signature: (
            f"{SCHEME} user={user},signedheaders={';'.join(names)},signature={signature}"
        ),
        st.text(max_size=20),
        st.lists(st.sampled_from([*SIGNED, "x-absent"]) | st.text(max_size=300), max_size=6),
        st.text(max_size=80),
    ),
)
header_values = st.one_of(
    st.text(max_size=80),
    dates.map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "Z"]),
)


@given(
    st.dictionaries(
        st.sampled_from([*SIGNED, "authorization", "Host", "X-ICIMS-DATE"]) | st.text(max_size=20),
        header_values,
        max_size=8,
    ),
    authorizations,
    secrets,
    st.binary(max_size=64),
    dates,
)
def test_arbitrary_headers_get_a_short_verdict_never_an_exception(
    headers: dict[str, str], authorization: str, secret: str, body: bytes, received_at: datetime
) -> None:
    headers["authorization"] = authorization
    verdict = verify(
        secret=secret,
        method="POST",
        path="/api/webhooks/icims",
        query="",
        headers=headers,
        bodies=[body],
        received_at=received_at,
    )
    assert not verdict.ok
    assert verdict.reason and len(verdict.reason) <= 200  # stored and shown to operators
