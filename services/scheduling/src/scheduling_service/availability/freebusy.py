"""Integrations' free/busy, over HTTP with a service identity (DESIGN: reads a person waits on
are HTTP calls to the owner). A mailbox Graph could not read comes back as unavailable, and the
slot engine then offers no time for it rather than a wrong one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
from servicekit import identity as tokens
from servicekit.errors import AppError

from scheduling_service.availability.slots import Interval


@dataclass(frozen=True)
class BusyTimes:
    busy: dict[str, list[Interval]]
    unavailable: dict[str, str]  # mailbox → why


class FreeBusyUnavailable(AppError):
    status = 503
    code = "calendars_unavailable"


class FreeBusyClient:
    def __init__(self, base_url: str, secret: str, http: httpx.AsyncClient) -> None:
        self._url = base_url.rstrip("/") + "/internal/freebusy"
        self._secret = secret
        self._http = http

    def _headers(self) -> dict[str, str]:
        who = tokens.Identity(kind="service", subject="scheduling")
        return {tokens.HEADER: tokens.sign(who, self._secret)}

    async def busy(
        self,
        org_id: uuid.UUID,
        mailboxes: list[str],
        start: datetime,
        end: datetime,
        organizer: str | None,
        *,
        fresh: bool = False,
    ) -> BusyTimes:
        body = {
            "orgId": str(org_id),
            "mailboxes": mailboxes,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "organizerEmail": organizer,
            "noCache": fresh,
        }
        try:
            r = await self._http.post(self._url, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise FreeBusyUnavailable(
                "Interviewers' calendars cannot be read right now; please try again shortly.",
                headers={"Retry-After": "5"},
            ) from exc
        if r.status_code != 200:
            try:
                error = r.json()["error"]
                message, code = str(error["message"]), str(error["code"])
            except (ValueError, KeyError, TypeError):
                message, code = f"free/busy answered {r.status_code}", "calendars_unavailable"
            raise FreeBusyUnavailable(
                "Interviewers' calendars cannot be read right now: " + message,
                code=code,
                headers={"Retry-After": "5"},
            )
        data = r.json()
        busy = {
            mailbox: [
                Interval(datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]))
                for b in blocks
                if b.get("status") != "free"
            ]
            for mailbox, blocks in data.get("busy", {}).items()
        }
        return BusyTimes(busy=busy, unavailable=dict(data.get("errors") or {}))
