"""The data the hostile-input tests attack: organizations with members, API keys, requests
(one booked, one held), all made through the public API as a user would.

Every string that belongs to an org carries the org's marker word, so a leak is found by
looking for it (and for the org's ids) in any answer given to someone else.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .conftest import RunningStack
from .test_system import eventually, signed_in

ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def from_address(client: httpx.AsyncClient, ip: str, base_url: str) -> httpx.AsyncClient:
    """The same credentials (cookies, headers) sent from another client address."""
    return httpx.AsyncClient(
        base_url=base_url,
        cookies=client.cookies,
        headers=dict(client.headers),
        transport=loopback_transport(ip),
        timeout=30,
    )


def loopback_transport(ip: str) -> httpx.AsyncHTTPTransport:
    """Requests from another loopback address: the gateway sees another client IP (Linux
    routes all of 127.0.0.0/8 to the loopback device)."""
    return httpx.AsyncHTTPTransport(local_address=ip)


# 127.100.x.x and up are the fuzzing workers' (hostile_fuzz.py).
_addresses = (f"127.{a}.{b}.{c}" for a in range(10, 100) for b in range(1, 255) for c in (1, 2))


def fresh_ip() -> str:
    """A client address nobody used yet: its own bucket of the public rate limit."""
    return next(_addresses)


def loopback_works() -> bool:
    with contextlib.closing(socket.socket()) as s:
        try:
            s.bind(("127.0.0.9", 0))
        except OSError:
            return False
    return True


@dataclass
class Org:
    """One organization, its people and its data, as its admin sees it."""

    word: str  # the marker in every name, title and email of this org
    id: str = ""
    name: str = ""
    admin: httpx.AsyncClient | None = None
    member: httpx.AsyncClient | None = None
    api_key: str = ""
    api_key_id: str = ""
    spare_key_id: str = ""  # a key the fuzzing may revoke
    admin_id: str = ""
    member_id: str = ""
    spare_member_id: str = ""  # a member the fuzzing may demote or remove
    invitation_token: str = ""  # pending, for someone who never accepts
    request_ids: list[str] = field(default_factory=list)
    member_request_id: str = ""
    booked_request_id: str = ""
    booking_id: str = ""
    tokens: list[str] = field(default_factory=list)  # booking links (a credential each)
    held_token: str = ""
    hold_id: str = ""
    hold_start: str = ""
    strings: set[str] = field(default_factory=set)
    mailboxes: set[str] = field(default_factory=set)  # its interviewers, in the M365 tenant

    @property
    def ids(self) -> set[str]:
        found = {
            self.id,
            self.api_key_id,
            self.spare_key_id,
            self.admin_id,
            self.member_id,
            self.spare_member_id,
            self.booking_id,
            self.hold_id,
            *self.request_ids,
        }
        return {i for i in found if i}

    @property
    def secrets(self) -> set[str]:
        """Credentials of this org: they must never appear in another org's answers."""
        return {s for s in (self.api_key, self.invitation_token, *self.tokens) if s}

    def email(self, who: str) -> str:
        return f"{who}@{self.word}-hostile.example"

    def markers(self) -> set[str]:
        """What no answer to anyone outside this org may contain."""
        return (
            self.ids
            | self.secrets
            | self.strings
            | self.mailboxes
            | {f"{self.word}-hostile.example"}
        )

    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def aclose(self) -> None:
        for client in (self.admin, self.member):
            if client is not None:
                await client.aclose()


def _request_body(org: Org, n: int, *, notice: int = 0) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {
        "candidate": {
            "name": f"{org.word.title()} Candidate {n}",
            "email": org.email(f"candidate{n}"),
            "timeZone": "Europe/Berlin",
        },
        "title": f"{org.word.title()} interview {n}",
        # the sandbox tenant has every mailbox at the organizer's domain, example.com
        "interviewers": [
            {"email": f"{org.word}.judge{n}@example.com", "name": f"{org.word} judge"}
        ],
        "durationMinutes": 30,
        "windowStart": (today + timedelta(days=1)).isoformat(),
        "windowEnd": (today + timedelta(days=10)).isoformat(),
        "minimumNoticeMinutes": notice,
        "cancelCutoffMinutes": 0,
    }


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text)
    return dict(response.json()) if response.content else {}


async def build_org(system: RunningStack, word: str, admin_email: str | None = None) -> Org:
    org = Org(word=word, name=f"{word.title()} Hostile Org")
    org.strings |= {org.name}
    org.admin = await signed_in(system, admin_email or org.email("admin"))
    a = org.admin
    created = await _ok(await a.post("/api/orgs", json={"name": org.name}), 201)
    org.id = created["id"]
    await _ok(
        await a.put("/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": ALL_DAY})
    )
    me = await _ok(await a.get("/api/me"))
    org.admin_id = me["userId"]

    async def join(who: str, role: str = "member") -> tuple[httpx.AsyncClient, str]:
        invited = await _ok(
            await a.post(
                f"/api/orgs/{org.id}/invitations", json={"email": org.email(who), "role": role}
            ),
            201,
        )
        client = await signed_in(system, org.email(who))
        token = invited["acceptUrl"].rsplit("/", 1)[-1]
        await _ok(await client.post(f"/api/invitations/{token}/accept"))
        user = await _ok(await client.get("/api/me"))
        return client, user["userId"]

    org.member, org.member_id = await join("member")
    spare, org.spare_member_id = await join("spare")
    await spare.aclose()
    pending = await _ok(
        await a.post(f"/api/orgs/{org.id}/invitations", json={"email": org.email("never")}), 201
    )
    org.invitation_token = pending["acceptUrl"].rsplit("/", 1)[-1]
    key = await _ok(
        await a.post(f"/api/orgs/{org.id}/api-keys", json={"name": f"{word} robot"}), 201
    )
    org.api_key, org.api_key_id = key["key"], key["id"]
    spare_key = await _ok(
        await a.post(f"/api/orgs/{org.id}/api-keys", json={"name": f"{word} spare robot"}), 201
    )
    org.spare_key_id = spare_key["id"]

    for n, client in enumerate((a, a, a, org.member)):
        made = await _ok(
            await client.post("/api/scheduling/requests", json=_request_body(org, n)), 201
        )
        org.request_ids.append(made["id"])
        org.tokens.append(made["bookingUrl"].rsplit("/", 1)[-1])
        if client is org.member:
            org.member_request_id = made["id"]
    for n in range(4):
        org.strings |= {f"{word.title()} Candidate {n}", f"{word.title()} interview {n}"}
        org.mailboxes.add(f"{word}.judge{n}@example.com")

    # One booked (a booking id), one held (a hold id): as the candidate, from its own address.
    async with httpx.AsyncClient(
        base_url=system.url("gateway"), transport=loopback_transport(fresh_ip())
    ) as candidate:
        org.booked_request_id = org.request_ids[0]
        slots = (await _ok(await candidate.get(f"/api/public/bookings/{org.tokens[0]}/slots")))[
            "slots"
        ]
        assert slots, "all-day working hours offer slots"
        booked = await _ok(
            await candidate.post(
                f"/api/public/bookings/{org.tokens[0]}", json={"start": slots[0]["start"]}
            ),
            201,
        )
        org.booking_id = booked["booking"]["id"]
        org.held_token = org.tokens[1]
        slots = (await _ok(await candidate.get(f"/api/public/bookings/{org.held_token}/slots")))[
            "slots"
        ]
        org.hold_start = slots[-1]["start"]
        held = await _ok(
            await candidate.post(
                f"/api/public/bookings/{org.held_token}/holds", json={"start": org.hold_start}
            ),
            201,
        )
        org.hold_id = held["holdId"]
    return org


async def settled_view(system: RunningStack, org: Org) -> dict[str, Any]:
    """Everything the org's admin can see, once the booking's side effects stopped moving."""
    last: dict[str, Any] = {}

    async def stable() -> dict[str, Any] | None:
        nonlocal last
        now = await view(system, org)
        same = now == last
        last = now
        return now if same else None

    return dict(await eventually(stable, timeout=60))


async def view(system: RunningStack, org: Org) -> dict[str, Any]:
    assert org.admin is not None
    a = org.admin
    out: dict[str, Any] = {}
    for path in (
        f"/api/orgs/{org.id}",
        f"/api/orgs/{org.id}/members",
        f"/api/orgs/{org.id}/api-keys",
        f"/api/orgs/{org.id}/audit?limit=200",
        "/api/scheduling/requests?limit=200",
        "/api/scheduling/settings",
        "/api/integrations/settings",
        *(f"/api/scheduling/requests/{r}" for r in org.request_ids),
        *(f"/api/scheduling/requests/{r}/audit" for r in org.request_ids),
    ):
        out[path] = await _ok(await a.get(path))
    for key in out[f"/api/orgs/{org.id}/api-keys"]["items"]:
        key.pop("lastUsedAt", None)  # the key's owner may use it meanwhile; not a change
    async with httpx.AsyncClient(
        base_url=system.url("gateway"), transport=loopback_transport(fresh_ip())
    ) as public:
        for token in org.tokens:
            out[f"public {token[:6]}"] = await _ok(
                await public.get(f"/api/public/bookings/{token}")
            )
    return out
