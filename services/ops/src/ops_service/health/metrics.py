"""The health figures as Prometheus gauges, so alert rules read the numbers `/api/ops/health`
shows. Computed from one `HealthOut` per scrape (endpoints.scrape): nothing is kept between
scrapes, so a worker ops forgot or a drained queue simply drops out (an expected worker comes
back as missing).

Label values are worker names (from heartbeats, forgotten after `worker_forget_after_hours`,
and the expected ones) and queue names: bounded by what is deployed."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ops_service.health.schemas import HealthOut

STATUS_VALUES = {"healthy": 0, "degraded": 1, "critical": 2}

# `HealthOut.metrics` key → gauge; absent when ops' own database could not be read.
_COUNTS = {
    "webhookFailures24h": (
        "ops_webhook_failures_24h",
        "Webhook deliveries that ran out of attempts in the failure window, not processed since",
    ),
    "reconciliationFailures": (
        "ops_reconciliation_failures",
        "Reconciliation jobs failed for good with no completed retry since",
    ),
    "needsAttention": ("ops_needs_attention", "Requests flagged for attention, not dismissed"),
    "dismissalsUnconfirmed": (
        "ops_dismissals_unconfirmed",
        "Dismissals scheduling has not confirmed in time",
    ),
}


def gauges(health: HealthOut) -> list[Metric]:
    out: list[Metric] = [
        GaugeMetricFamily(
            "ops_health_status",
            "Overall health as /api/ops/health judges it: 0 healthy, 1 degraded, 2 critical",
            value=STATUS_VALUES[health.status],
        )
    ]
    figures = health.metrics
    for key, (name, documentation) in _COUNTS.items():
        if figures.get(key) is not None:
            out.append(GaugeMetricFamily(name, documentation, value=figures[key]))
    if "dlqDepths" in figures:
        dlq = GaugeMetricFamily(
            "ops_dlq_depth", "Messages on a dead-letter queue, by queue", labels=["queue"]
        )
        for queue, depth in sorted(figures["dlqDepths"].items()):
            dlq.add_metric([queue], depth)
        out.append(dlq)
    if "workers" in figures:
        silent = GaugeMetricFamily(
            "ops_worker_silent",
            "1 when a long-lived worker is silent for more than its allowed intervals, by worker",
            labels=["worker"],
        )
        missing = GaugeMetricFamily(
            "ops_worker_missing",
            "1 when an expected worker has sent no heartbeat at all, by worker",
            labels=["worker"],
        )
        for name, worker in sorted(figures["workers"].items()):
            silent.add_metric([name], 1 if worker["state"] == "silent" else 0)
            missing.add_metric([name], 1 if worker["state"] == "missing" else 0)
        out += [silent, missing]
    return out
