"""The tenant-isolation sweep: org B's people and key try every route with org A's ids.

The routes come from the gateway itself (its routing table and its own `/api` router), so a
route added later is swept without anyone remembering to; a path parameter the sweep cannot
fill with one of A's objects fails the sweep until someone teaches it here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.routing import APIRoute
from gateway_service.orgs.endpoints import router as gateway_api
from gateway_service.routing.table import ROUTES

from .hostile_world import ALL_DAY, Org

# Parameters that are credentials, not object ids: holding one is being its owner (the
# candidate's booking link, the invitee's link). B uses its own booking link; A's pending
# invitation is tried, and must be refused to anyone but the invitee.
CREDENTIALS = frozenset({"token"})
OPEN = frozenset({"public", "webhook"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    access: str  # the routing table's, or "user" for the gateway's own API

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def surface() -> list[Route]:
    """Every JSON route the gateway answers: the routed table and its own `/api` routes."""
    routes = [Route(m, r.path, r.access) for r in ROUTES for m in r.methods]
    for r in gateway_api.routes:
        assert isinstance(r, APIRoute)
        routes += [Route(m, r.path, "user") for m in sorted(r.methods)]
    return routes


@dataclass
class Attacker:
    name: str
    org: Org
    client: httpx.AsyncClient  # a session's client, or one sending the org's API key
    superadmin: bool = False
    session: bool = True


@dataclass
class Targets:
    """A's objects by path parameter; ops objects (webhooks, DLQs) belong to no org."""

    values: dict[str, list[str]]

    def fill(self, route: Route, attacker: Attacker, victim: Org) -> list[dict[str, str]]:
        """The ways to aim this route at A: each of A's ids in turn; with the attacker's own
        org id beside A's other ids where a route has both."""
        params = route.params
        unknown = [p for p in params if p not in self.values and p != "token"]
        assert not unknown, f"{route.label}: the sweep cannot fill {unknown}; add A's objects"
        if not params:
            return [{}]
        token = (
            victim.invitation_token
            if route.path.startswith("/api/invitations/")
            else attacker.org.tokens[2]  # B's own link; A's ids go in the body
        )
        widest = max(len(self.values.get(p, [token])) for p in params)
        aims = [
            {
                p: (token if p == "token" else self.values[p][i % len(self.values[p])])
                for p in params
            }
            for i in range(widest)
        ]
        if "org_id" in params and len(params) > 1:
            aims += [{**aim, "org_id": attacker.org.id} for aim in aims]
        return aims

    @staticmethod
    def guess(aim: dict[str, str], attacker: Attacker) -> dict[str, str]:
        """The same aim with made-up ids in place of A's (credentials and the attacker's own
        org id kept)."""
        return {
            p: (v if p in CREDENTIALS or v == attacker.org.id else str(uuid.uuid4()))
            for p, v in aim.items()
        }

    @staticmethod
    def own(route: Route, attacker: Attacker) -> dict[str, str]:
        """The route aimed at the attacker's own objects."""
        mine = {
            "org_id": attacker.org.id,
            "request_id": attacker.org.request_ids[0],
            "token": attacker.org.tokens[2],
        }
        unknown = [p for p in route.params if p not in mine]
        assert not unknown, f"{route.label}: the sweep has no own object for {unknown}"
        return {p: mine[p] for p in route.params}


def _start() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0).isoformat()


# Valid bodies, so every attempt reaches the code that decides whose object it is (an invalid
# one is refused before that, and would prove nothing). A's ids go wherever a body names one.
BODIES: dict[str, Callable[[Org, Org], Any]] = {
    "POST /api/scheduling/requests": lambda a, b: request_body(b),
    "POST /api/scheduling/requests/preview": lambda a, b: request_body(b),
    "POST /api/scheduling/requests/{request_id}/book": lambda a, b: {"start": _start()},
    "POST /api/scheduling/requests/{request_id}/reschedule": lambda a, b: {"start": _start()},
    "POST /api/scheduling/requests/{request_id}/cancel": lambda a, b: {"reason": "sweep"},
    "POST /api/scheduling/requests/{request_id}/reopen": lambda a, b: {"reason": "sweep"},
    "PUT /api/scheduling/settings": lambda a, b: {"timeZone": "UTC", "workingHours": ALL_DAY},
    "PUT /api/integrations/settings": lambda a, b: {},
    "POST /api/integrations/settings/test": lambda a, b: {},
    "POST /api/public/bookings/{token}": lambda a, b: {"start": _start(), "holdId": a.hold_id},
    "POST /api/public/bookings/{token}/holds": lambda a, b: {"start": _start()},
    "POST /api/public/bookings/{token}/reschedule": lambda a, b: {
        "start": _start(),
        "holdId": a.hold_id,
    },
    "POST /api/public/bookings/{token}/cancel": lambda a, b: {"reason": "sweep"},
    "POST /api/webhooks/icims": lambda a, b: {
        "customerId": a.id,
        "eventType": "WorkFlowStatusChangeEvent",
        "systemId": a.request_ids[0],
    },
    "POST /api/ops/attention/{request_id}/dismiss": lambda a, b: {"note": "sweep"},
    "POST /api/ops/dlq/{queue}/redrive": lambda a, b: {"maxMessages": 1, "reason": "sweep"},
    "POST /api/orgs": lambda a, b: {"name": f"{b.word} extra"},
    "PUT /api/orgs/{org_id}": lambda a, b: {"name": f"{b.word} took this"},
    "PUT /api/orgs/{org_id}/members/{user_id}": lambda a, b: {"role": "admin"},
    "POST /api/orgs/{org_id}/invitations": lambda a, b: {
        "email": b.email("admin"),
        "role": "admin",
    },
    "POST /api/orgs/{org_id}/api-keys": lambda a, b: {"name": f"{b.word} stolen"},
}
# Query parameters that search or filter: each is tried with A's names, emails and ids.
SEARCHES = {
    "GET /api/scheduling/requests": ("q", "interviewer", "status", "cursor"),
    "GET /api/integrations/directory": ("q",),
    "GET /api/orgs/{org_id}/audit": ("cursor",),
    "GET /api/scheduling/requests/{request_id}/audit": ("cursor",),
}
MOVES = frozenset({"POST /api/orgs", "POST /api/invitations/{token}/accept"})


def request_body(org: Org) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {
        "candidate": {"name": "Sweep", "email": org.email("sweep"), "timeZone": "UTC"},
        "title": "sweep",
        "interviewers": [{"email": f"{org.word}.judge9@example.com"}],
        "durationMinutes": 30,
        "windowStart": (today + timedelta(days=1)).isoformat(),
        "windowEnd": (today + timedelta(days=5)).isoformat(),
    }


def strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(strings(v) for v in value.values()), set()) | set(value)
    if isinstance(value, list):
        return set().union(*(strings(v) for v in value), set())
    return {str(value)} if value is not None else set()


@dataclass
class Sweep:
    victim: Org
    targets: Targets
    calls: int = 0
    routes: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    async def send(
        self,
        who: Attacker,
        route: Route,
        aim: dict[str, str],
        query: dict[str, str] | None = None,
    ) -> httpx.Response:
        path = route.path.format(**aim)
        body = BODIES.get(route.label, lambda a, b: None)(self.victim, who.org)
        if body is None and route.method in ("POST", "PUT"):
            body = {}
        self.calls += 1
        self.routes.add(route.label)
        r = await who.client.request(
            route.method, path, params=query, json=body if body is not None else None
        )
        if r.status_code >= 500:
            self.problems.append(f"{who.name} {route.method} {path} {query or ''}: {r.status_code}")
        sent = " ".join(strings(aim) | strings(query or {}) | strings(body)).lower()
        markers = self.victim.markers()
        if route.label == "GET /api/integrations/directory":
            # The directory is the org's Microsoft 365 tenant, and here every org uses the
            # install's one: A's interviewers are people of that tenant, not A's data.
            markers -= self.victim.mailboxes
        text = r.text.lower()
        # What the attacker sent may come back (an error naming the bad value): not a leak.
        leaked = sorted(m for m in markers if m.lower() in text and m.lower() not in sent)
        if leaked:
            self.problems.append(
                f"{who.name} {route.method} {path} {query or ''}: {r.status_code} shows A's "
                f"{leaked}: {r.text[:300]}"
            )
        if who.session and route.label in MOVES and r.status_code < 300:
            back = await who.client.post(f"/api/orgs/{who.org.id}/activate")
            assert back.status_code == 204, back.text
        return r

    async def attack(self, who: Attacker, route: Route) -> None:
        if who.superadmin and route.access == "superadmin":
            return  # an operator sees every org's operational data, by design
        for aim in self.targets.fill(route, who, self.victim):
            aimed = await self.send(who, route, aim)
            objects = [p for p in aim if p not in CREDENTIALS and aim[p] != who.org.id]
            if not objects:
                continue
            guessed = await self.send(who, route, self.targets.guess(aim, who))
            if aimed.status_code not in (401, 403, 404):
                self.problems.append(
                    f"{who.name} {route.method} {route.path} at A's {aim}: "
                    f"{aimed.status_code} {aimed.text[:200]}"
                )
            if guessed.status_code not in (401, 403, 404):
                self.problems.append(
                    f"{who.name} {route.label} with made-up ids: {guessed.status_code}"
                )
            # No oracle: A's object is answered exactly like one that does not exist.
            if (aimed.status_code, _code(aimed)) != (guessed.status_code, _code(guessed)):
                self.problems.append(
                    f"{who.name} {route.label}: A's {aim} answers {aimed.status_code} "
                    f"{_code(aimed)}, a made-up id {guessed.status_code} {_code(guessed)}"
                )
        for name in SEARCHES.get(route.label, ()):
            for value in self.probes():  # A's names, emails and ids in the attacker's own lists
                await self.send(who, route, self.targets.own(route, who), {name: value})

    def probes(self) -> list[str]:
        a = self.victim
        return [
            f"{a.word.title()} Candidate 1",
            a.email("candidate1"),
            f"{a.word}.judge1@example.com",
            a.word,
            a.request_ids[1],
            a.id,
        ]


def _code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("error", {}).get("code") if isinstance(body, dict) else None
