"""The owners' internal APIs, over HTTP with a service identity (never through the gateway)."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
from servicekit import identity as tokens

from reconciler_service.sync.schemas import (
    BookingsPage,
    SideEffectsPage,
    VerifiedEvent,
    VerifiedEvents,
)

# Integrations answers for at most this many bookings per call (a GET's query stays short).
SIDE_EFFECTS_BATCH = 100


class OwnerUnavailable(Exception):
    """An owner's internal API did not answer usefully; the comparison resumes later."""


class OwnersClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        scheduling_url: str,
        integrations_url: str,
        secret: str,
    ) -> None:
        self._http = http
        self._scheduling = scheduling_url.rstrip("/")
        self._integrations = integrations_url.rstrip("/")
        self._secret = secret

    def _headers(self) -> dict[str, str]:
        who = tokens.Identity(kind="service", subject="reconciler")
        return {tokens.HEADER: tokens.sign(who, self._secret)}

    async def _get(self, url: str, params: dict[str, str]) -> httpx.Response:
        try:
            r = await self._http.get(url, params=params, headers=self._headers())
        except httpx.HTTPError as exc:
            raise OwnerUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if r.status_code != 200:
            raise OwnerUnavailable(f"GET {url}: {r.status_code} {r.text[:300]}")
        return r

    async def _post(self, url: str, body: object) -> httpx.Response:
        try:
            r = await self._http.post(url, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise OwnerUnavailable(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        if r.status_code != 200:
            raise OwnerUnavailable(f"POST {url}: {r.status_code} {r.text[:300]}")
        return r

    async def bookings(
        self, *, since: datetime | None, cursor: str | None, limit: int
    ) -> BookingsPage:
        params = {"limit": str(limit)}
        if since is not None:
            params["updatedSince"] = since.isoformat()
        if cursor:
            params["cursor"] = cursor
        r = await self._get(f"{self._scheduling}/internal/bookings", params)
        return BookingsPage.model_validate_json(r.content)

    async def side_effects(self, booking_ids: list[uuid.UUID]) -> list[SideEffectsPage]:
        pages = []
        for i in range(0, len(booking_ids), SIDE_EFFECTS_BATCH):
            chunk = booking_ids[i : i + SIDE_EFFECTS_BATCH]
            params = {"bookingIds": ",".join(str(b) for b in chunk)}
            r = await self._get(f"{self._integrations}/internal/side-effects", params)
            pages.append(SideEffectsPage.model_validate_json(r.content))
        return pages

    async def verify_events(self, booking_ids: list[uuid.UUID]) -> list[VerifiedEvent]:
        """Whether Graph still holds each booking's Outlook event (integrations asks it)."""
        items: list[VerifiedEvent] = []
        for i in range(0, len(booking_ids), SIDE_EFFECTS_BATCH):
            chunk = booking_ids[i : i + SIDE_EFFECTS_BATCH]
            r = await self._post(
                f"{self._integrations}/internal/calendar-events/verify",
                {"bookingIds": [str(b) for b in chunk]},
            )
            items.extend(VerifiedEvents.model_validate_json(r.content).items)
        return items
