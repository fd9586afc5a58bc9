"""The gateway's routing table: DESIGN.md "Public surface", and nothing else.

There is no catch-all: a path not listed here is answered 404 by the gateway itself, so a
service's internal endpoints (free/busy, heartbeats, timelines) are unreachable from outside.
Each route names the access it needs; the target service checks again with the identity token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["public", "webhook", "user", "org", "org_admin", "superadmin"]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    path: str  # a Starlette path template; forwarded to the service unchanged
    service: str
    access: Access

    @property
    def name(self) -> str:
        return f"{'|'.join(self.methods)} {self.path}"


def _r(methods: str, path: str, service: str, access: Access) -> Route:
    return Route(tuple(methods.split("|")), path, service, access)


REQUEST_ACTIONS = ("cancel", "reschedule", "reopen", "resend-link", "book")
PUBLIC_BOOKING_ACTIONS = ("reschedule", "cancel")

ROUTES: tuple[Route, ...] = (
    # scheduling
    _r("GET|POST", "/api/scheduling/requests", "scheduling", "org"),
    # availability for a draft body: creates nothing
    _r("POST", "/api/scheduling/requests/preview", "scheduling", "org"),
    _r("GET", "/api/scheduling/requests/{request_id}", "scheduling", "org"),
    _r("GET", "/api/scheduling/requests/{request_id}/audit", "scheduling", "org"),
    *(
        _r("POST", f"/api/scheduling/requests/{{request_id}}/{action}", "scheduling", "org")
        for action in REQUEST_ACTIONS
    ),
    # the candidate's personal data: org admins only (the service checks again)
    _r("POST", "/api/scheduling/requests/{request_id}/erase", "scheduling", "org_admin"),
    _r("GET|PUT", "/api/scheduling/settings", "scheduling", "org"),
    # integrations
    _r("GET|PUT", "/api/integrations/settings", "integrations", "org_admin"),
    _r("POST", "/api/integrations/settings/test", "integrations", "org_admin"),
    _r("GET", "/api/integrations/directory", "integrations", "org"),
    # the candidate's booking page: public, rate-limited
    _r("GET|POST", "/api/public/bookings/{token}", "scheduling", "public"),
    _r("GET", "/api/public/bookings/{token}/slots", "scheduling", "public"),
    _r("POST", "/api/public/bookings/{token}/holds", "scheduling", "public"),
    *(
        _r("POST", f"/api/public/bookings/{{token}}/{action}", "scheduling", "public")
        for action in PUBLIC_BOOKING_ACTIONS
    ),
    # iCIMS → us: raw body, headers and Host untouched
    _r("POST", "/api/webhooks/icims", "integrations", "webhook"),
    # operators (the runbook's paths)
    _r("GET", "/api/ops/health", "ops", "superadmin"),
    _r("GET", "/api/ops/webhooks", "ops", "superadmin"),
    _r("POST", "/api/ops/webhooks/{webhook_id}/retry", "ops", "superadmin"),
    _r("GET", "/api/ops/reconciliation", "ops", "superadmin"),
    _r("POST", "/api/ops/reconciliation/{job_id}/retry", "ops", "superadmin"),
    _r("GET", "/api/ops/attention", "ops", "superadmin"),
    _r("GET", "/api/ops/attention/{request_id}", "ops", "superadmin"),
    _r("POST", "/api/ops/attention/{request_id}/dismiss", "ops", "superadmin"),
    _r("GET", "/api/ops/actions", "ops", "superadmin"),
    _r("GET", "/api/ops/dlq", "ops", "superadmin"),
    _r("POST", "/api/ops/dlq/{queue}/redrive", "ops", "superadmin"),
)
