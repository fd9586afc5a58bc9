"""The iCIMS adapter: httpx, OAuth 2 client credentials, lenient parsing, typed errors.

iCIMS adds JSON fields at will: read what we need and ignore the rest. Its errors come as
status + `{"errors": [{"errorMessage", "errorCode"}]}`; 429 and 5xx are worth retrying (later),
404 is not. The token is cached until shortly before it expires and refreshed once on a 401.
Every HTTP call is counted and timed by operation and status class, a 429 also as throttling
with its Retry-After; a call our own daily budget refuses is counted as `refused`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from servicekit.metrics import record_external, record_throttled

SYSTEM = "icims"


class IcimsError(Exception):
    def __init__(
        self, status: int | None, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def code(self) -> str:
        return "icims_unavailable" if self.retryable else "icims_error"


class IcimsNotFound(IcimsError):
    code_name = "icims_not_found"


@dataclass(frozen=True)
class Workflow:
    id: str
    status_id: str | None
    status_name: str | None
    person_id: str | None
    job_id: str | None


@dataclass(frozen=True)
class Person:
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None


@dataclass(frozen=True)
class Job:
    id: str
    title: str | None
    number: str | None


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _ref(value: Any) -> str | None:
    # References come as {"id": 123, "profile": url} or, in some tenants, as a bare id.
    if isinstance(value, dict):
        return _str(value.get("id"))
    return _str(value)


class IcimsClient:
    def __init__(
        self,
        *,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient,
        budget: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        # `budget(customer_id)` is awaited before every API call and raises IcimsError when the
        # customer's daily allowance is spent (see icims/budget.py).
        self._budget = budget
        self._base = base_url.rstrip("/")
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = http
        self._token: str | None = None
        self._token_until = 0.0

    async def _send(self, operation: str, method: str, url: str, **kw: Any) -> httpx.Response:
        began = time.perf_counter()
        try:
            r = await self._http.request(method, url, **kw)
        except httpx.HTTPError:
            record_external(SYSTEM, operation, None, time.perf_counter() - began)
            raise
        record_external(SYSTEM, operation, r.status_code, time.perf_counter() - began)
        if r.status_code == 429:
            record_throttled(SYSTEM, operation, _retry_after(r.headers.get("retry-after")))
        return r

    async def _bearer(self, *, refresh: bool = False) -> str:
        if self._token and not refresh and time.monotonic() < self._token_until:
            return self._token
        try:
            r = await self._send(
                "token",
                "POST",
                self._token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
            )
        except httpx.HTTPError as exc:
            raise IcimsError(None, f"token endpoint unreachable: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise IcimsError(r.status_code, f"token refused ({r.status_code})")
        body = r.json()
        self._token = str(body["access_token"])
        self._token_until = time.monotonic() + max(60.0, float(body.get("expires_in", 3600)) - 60)
        return self._token

    async def _call(
        self, operation: str, method: str, customer_id: str, path: str, json: Any = None
    ) -> dict[str, Any]:
        if self._budget is not None:
            try:
                await self._budget(customer_id)
            except IcimsError:
                record_external(SYSTEM, operation, "refused")
                raise
        path = f"/customers/{customer_id}{path}"
        for attempt in (1, 2):
            token = await self._bearer(refresh=attempt == 2)
            try:
                r = await self._send(
                    operation,
                    method,
                    self._base + path,
                    json=json,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as exc:
                raise IcimsError(None, f"iCIMS unreachable: {type(exc).__name__}") from exc
            if r.status_code == 401 and attempt == 1:
                continue  # the token may have been revoked or expired early
            break
        if r.status_code >= 400:
            message = _error_message(r)
            retry_after = _retry_after(r.headers.get("retry-after"))
            if r.status_code == 404:
                raise IcimsNotFound(404, message)
            raise IcimsError(r.status_code, message, retry_after=retry_after)
        return r.json() if r.content else {}

    async def get_workflow(self, customer_id: str, workflow_id: str) -> Workflow:
        data = await self._call(
            "get_workflow", "GET", customer_id, f"/applicantworkflows/{workflow_id}"
        )
        raw_status = data.get("status")
        status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
        return Workflow(
            id=workflow_id,
            status_id=_str(status.get("id")),
            status_name=_str(status.get("value") or status.get("formattedvalue")),
            person_id=_ref(data.get("associatedprofile")),
            job_id=_ref(data.get("baseprofile")),
        )

    async def get_person(self, customer_id: str, person_id: str) -> Person:
        data = await self._call("get_person", "GET", customer_id, f"/people/{person_id}")
        email = data.get("email")
        if isinstance(email, list):  # some tenants return a list of addresses
            email = next((e.get("email") for e in email if isinstance(e, dict)), None)
        return Person(
            person_id, _str(data.get("firstname")), _str(data.get("lastname")), _str(email)
        )

    async def get_job(self, customer_id: str, job_id: str) -> Job:
        data = await self._call("get_job", "GET", customer_id, f"/jobs/{job_id}")
        return Job(job_id, _str(data.get("jobtitle")), _str(data.get("jobnumber")))

    async def set_workflow_status(self, customer_id: str, workflow_id: str, status_id: str) -> None:
        await self._call(
            "set_workflow_status",
            "PATCH",
            customer_id,
            f"/applicantworkflows/{workflow_id}",
            json={"status": {"id": status_id}},
        )

    async def token_check(self) -> None:
        """Obtain a fresh token: proves the URL and credentials without spending API quota."""
        await self._bearer(refresh=True)

    # Notes. iCIMS publishes no note-creating endpoint; integrators write into a field group of
    # the applicant workflow, configured per org (`note_field`). Each note carries our marker so
    # that a look at the workflow finds it again (idempotency without a record of our own).

    async def find_notes(self, customer_id: str, workflow_id: str, field: str) -> list[str]:
        data = await self._call(
            "find_notes", "GET", customer_id, f"/applicantworkflows/{workflow_id}"
        )
        group = data.get(field)
        if not isinstance(group, list):
            return []
        texts = []
        for entry in group:
            if isinstance(entry, dict):
                texts.append(
                    str(entry.get("note") or entry.get("text") or entry.get("value") or "")
                )
            else:
                texts.append(str(entry))
        return texts

    async def add_note(self, customer_id: str, workflow_id: str, field: str, text: str) -> None:
        await self._call(
            "add_note",
            "PATCH",
            customer_id,
            f"/applicantworkflows/{workflow_id}",
            json={field: [{"note": text}]},
        )


def _error_message(r: httpx.Response) -> str:
    try:
        errors = r.json().get("errors") or []
        if errors and isinstance(errors[0], dict):
            first = errors[0]
            message, code = first.get("errorMessage"), first.get("errorCode")
            return f"iCIMS {r.status_code}: {message} (code {code})"
    except (ValueError, AttributeError):
        pass
    return f"iCIMS {r.status_code}"


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
