"""`/metrics`: the gateway's own answers on its port; no service's can be reached through it."""

from __future__ import annotations

from gateway_service.routing.table import ROUTES

from .conftest import SUPERADMIN, GatewayFactory

# Paths a caller might try to reach a service's /metrics through the gateway with (dot segments
# percent-encoded: a client resolves literal ones itself, to the gateway's own /metrics).
ATTEMPTS = [
    "/api/scheduling/metrics",
    "/api/integrations/metrics",
    "/api/reconciler/metrics",
    "/api/ops/metrics",
    "/api/public/bookings/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fmetrics",
    "/api/ops/dlq/..%2F..%2F..%2Fmetrics/redrive",
    "/api/scheduling/requests/%2e%2e/%2e%2e/%2e%2e/metrics",
]


def test_no_route_in_the_table_leads_to_a_services_metrics() -> None:
    for route in ROUTES:
        assert route.path.startswith("/api/") and "metrics" not in route.path


async def test_a_services_metrics_cannot_be_reached_through_the_gateway(
    gateway: GatewayFactory, seed
) -> None:
    root = await seed(SUPERADMIN)  # the most any caller could be
    async with gateway() as client:
        client.cookies.update(root.cookies)
        for path in ATTEMPTS:
            r = await client.get(path)
            # Answered by the gateway itself: the echo upstream would have answered 200 (JSON).
            assert r.status_code == 404, (path, r.text)
            assert r.json()["error"]["code"] == "not_found"


async def test_the_gateways_own_metrics_are_on_its_port(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        await client.get("/api/public/bookings/tok-secret-7")
        r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert (
        'http_requests_total{method="GET",route="/api/public/bookings/{token}",status_class="2xx"}'
        in r.text
    )
    assert "tok-secret-7" not in r.text
