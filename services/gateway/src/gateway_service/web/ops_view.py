"""How the `/ops` dashboard shows ops' answers: tabs and their filters (page query ↔ ops API
query), times, the runbook's key metrics with their thresholds, and timeline lines. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args
from urllib.parse import urlencode

from scheduler_contracts.events.common import JobType


@dataclass(frozen=True)
class Filter:
    name: str  # the ops API's parameter (the runbook's name)
    label: str
    choices: tuple[str, ...]
    multiple: bool = True


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    api: str
    filters: tuple[Filter, ...] = ()


TABS = (
    Tab("attention", "Attention", "/api/ops/attention"),
    Tab(
        "webhooks",
        "Webhooks",
        "/api/ops/webhooks",
        (
            Filter("status", "Status", ("received", "processing", "processed", "failed")),
            Filter("provider", "Provider", ("icims", "graph"), multiple=False),
        ),
    ),
    Tab(
        "reconciliation",
        "Reconciliation",
        "/api/ops/reconciliation",
        (
            Filter("status", "Status", ("pending", "processing", "completed", "failed")),
            Filter(
                "jobType",
                "Job type",
                get_args(JobType),
                multiple=False,
            ),
        ),
    ),
    Tab("dlq", "Dead letters", "/api/ops/dlq"),
    Tab(
        "audit",
        "Audit",
        "/api/ops/actions",
        (
            Filter(
                "action",
                "Action",
                ("attention.dismiss", "webhook.retry", "job.retry", "dlq.redrive"),
                multiple=False,
            ),
        ),
    ),
)
TAB_BY_KEY = {t.key: t for t in TABS}
DEFAULT_TAB = "attention"
PAGE_SIZE = 25

# The runbook's "Key Metrics": metric, threshold and action, word for word.
KEY_METRICS = (
    (
        "webhookFailures24h",
        "Webhook failures (24h)",
        "Check signature verification, review failed events",
    ),
    (
        "reconciliationFailures",
        "Reconciliation failures",
        "Review job details, check external API status",
    ),
    ("needsAttention", "Needs attention count", "Review flagged requests, take manual action"),
)
STATUS_WORDS = {"healthy": "Healthy", "degraded": "Degraded", "critical": "Critical"}
NOTICES = {
    "dismissed": "Dismissed. Scheduling clears the flag and records that you did.",
    "webhook-retry": "Retry requested: integrations processes the webhook again.",
    "job-retry": "Retry requested: the reconciler runs the job again.",
    "redrive": "Redrive requested: the ops worker moves the dead letters back to their queue.",
}


def tab_of(params: Any) -> Tab:
    return TAB_BY_KEY.get(str(params.get("tab") or DEFAULT_TAB), TAB_BY_KEY[DEFAULT_TAB])


def chosen(tab: Tab, params: Any) -> dict[str, list[str]]:
    """The tab's filter values as the page's query has them (checkboxes repeat a name)."""
    out: dict[str, list[str]] = {}
    for f in tab.filters:
        values = [
            v.strip() for raw in params.getlist(f.name) for v in str(raw).split(",") if v.strip()
        ]
        if values:
            out[f.name] = values
    return out


def api_query(tab: Tab, params: Any) -> str:
    """The ops API query for the page's: only the tab's own filters and the cursor."""
    query: list[tuple[str, str]] = [("limit", str(PAGE_SIZE))]
    for name, values in chosen(tab, params).items():
        query.append((name, ",".join(values)))
    if cursor := params.get("cursor"):
        query.append(("cursor", str(cursor)[:500]))
    return urlencode(query)


def page_query(tab: Tab, params: Any, **changes: str | None) -> str:
    """This page's query string (tab, filters, cursor), with `changes` applied."""
    query: list[tuple[str, str]] = [("tab", tab.key)]
    for name, values in chosen(tab, params).items():
        query += [(name, v) for v in values]
    if cursor := params.get("cursor"):
        query.append(("cursor", str(cursor)))
    query = [(k, v) for k, v in query if k not in changes]
    query += [(k, v) for k, v in changes.items() if v is not None]
    return urlencode(query)


def when(value: Any) -> str:
    """ "2026-11-27 08:31:05 UTC" (operators compare times across services: one zone)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    if at.tzinfo is None:
        return ""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return ""
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def short(value: Any, length: int = 8) -> str:
    return str(value or "")[:length]


# What a timeline line says about an event, beyond its type.
_SUMMARY_KEYS = (
    "reason",
    "from_status",
    "to_status",
    "job_type",
    "attempts",
    "final",
    "last_error",
    "resolution",
    "outcome",
    "queue",
)


def summary(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    parts = []
    if data.get("from_status") and data.get("to_status"):
        parts.append(f"{data['from_status']} → {data['to_status']}")
    for key in _SUMMARY_KEYS:
        if key in ("from_status", "to_status") or data.get(key) in (None, "", []):
            continue
        parts.append(f"{key.replace('_', ' ')}: {str(data[key])[:200]}")
    for who in ("dismissed_by", "cleared_by", "requested_by"):
        person = data.get(who)
        if isinstance(person, dict) and person.get("email"):
            parts.append(f"{who.replace('_', ' ')}: {person['email']}")
    return "; ".join(parts)
