"""`/api/ops/health`: Healthy, Degraded or Critical, with the reasons and the figures behind it.

The rules (README "Operations" says the same for operators):

Degraded — any of the runbook's thresholds exceeded, or a failure an operator should look at:
- webhook failures (24h) > 0: deliveries whose attempts ran out in the last 24 hours and that
  were not processed successfully since (a successful retry takes one out at once);
- reconciliation failures > 0: jobs that failed for good and no retry has completed since;
- needs attention > 0: requests flagged and not dismissed;
- a `--once` worker run whose last run failed (such runs are judged by outcome, not liveness);
- a `--once` worker whose newest run is older than 3 of the schedule periods it announced
  (`ONCE_SCHEDULE_SECONDS`; none announced: not judged), unless a long-lived instance of the same
  worker is alive (it does the work): the CronJob stopped running;
- a dismissal scheduling has not confirmed within `dismissal_confirm_seconds` (120 s).

Critical — the system itself is failing, whatever else holds:
- a long-lived worker silent for more than 3 of the intervals it announced (every instance of
  that worker name silent; an instance that said it was stopping is not silent, it stopped);
- an expected worker (`expected_workers`, by default every worker the system has) with no
  heartbeat at all, of either mode, within `worker_forget_after_hours`: never started, crashing
  before its first heartbeat, or gone so long it was forgotten. Judged only once ops has been
  watching for `worker_missing_grace_seconds` (120 s), counted from the earliest `started_at`
  among the heartbeats it has (the system has been up since then, so every worker that runs
  has had time to report), or from this API process's start when it has none (a fresh
  install: the workers are starting too);
- any dead-letter queue not empty (a message no consumer could handle: nothing retries it);
- the broker unreachable: the ops worker's last probe failed, or none succeeded within 3 probe
  intervals (which is also what an ops worker that is down looks like);
- ops' own database unreachable (the endpoint answers Critical with that reason).
A service whose database is unreachable shows up as its workers falling silent: heartbeats go
through each service's own outbox, in its own database.

Several degraded conditions at once stay Degraded: breadth is not severity, and Critical is
kept for the system failing to do its work, which is what should wake someone up.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.attention import repository as attention
from ops_service.dlq import repository as dlq
from ops_service.health.schemas import Condition, HealthOut, WorkerHealth
from ops_service.models import worker_heartbeats as H
from ops_service.reconciliation import repository as jobs
from ops_service.settings import SYSTEM_WORKERS, Settings
from ops_service.webhooks import repository as webhooks

# The runbook's key metrics: above the threshold is Degraded.
THRESHOLDS = {"webhookFailures24h": 0, "reconciliationFailures": 0, "needsAttention": 0}


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _live(instances: list[Any], settings: Settings, now: datetime) -> list[Any]:
    """Loop instances not stopping and heard from within their allowed intervals."""
    return [
        i
        for i in instances
        if i.state != "stopping"
        and i.interval_seconds
        and (now - i.sent_at).total_seconds()
        <= settings.silent_after_intervals * i.interval_seconds
    ]


def judge_workers(
    rows: list[Any], settings: Settings, now: datetime, watching_since: datetime
) -> dict[str, WorkerHealth]:
    """One entry per worker name and mode: loop workers by liveness, once runs by outcome and
    schedule; then one per expected worker not heard from at all (`missing`), once ops has
    been watching long enough. `watching_since`: when this ops process started."""
    forget = timedelta(hours=settings.worker_forget_after_hours)
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for r in rows:
        if now - r.sent_at <= forget:
            groups[(r.service, r.worker, r.mode)].append(r)
    alive_loops = {
        worker
        for (_, worker, mode), instances in groups.items()
        if mode == "loop" and _live(instances, settings, now)
    }
    out: dict[str, WorkerHealth] = {}
    for (service, worker, mode), instances in sorted(groups.items()):
        newest = max(instances, key=lambda r: r.sent_at)
        silent = max(0.0, (now - newest.sent_at).total_seconds())
        if mode == "loop":
            running = [i for i in instances if i.state != "stopping"]
            live = _live(instances, settings, now)
            key, alive = worker, bool(live)
            state = "running" if live else ("silent" if running else "stopped")
            if running and not live:
                newest = max(running, key=lambda r: r.sent_at)
                silent = max(0.0, (now - newest.sent_at).total_seconds())
            count = len(live) if live else len(running)
        else:
            key, alive, state, count = f"{worker} --once", None, newest.state, 1
            # The newest run's announced schedule; a live long-lived instance does the work,
            # so runs that stopped coming matter only without one.
            period = newest.interval_seconds
            if (
                period
                and silent > settings.silent_after_intervals * period
                and worker not in alive_loops
            ):
                state = "overdue"
        out[key] = WorkerHealth(
            service=service,
            worker=worker,
            mode=mode,
            alive=alive,
            state=state,
            instances=count,
            interval_seconds=newest.interval_seconds,
            silent_for_seconds=round(silent, 1),
            last_seen_at=newest.sent_at,
            last_run_ok=newest.last_run_ok,
            last_run_summary=newest.last_run_summary,
            last_error=newest.last_error,
        )
    heard = {worker for _, worker, _ in groups}
    starts = [r.started_at for instances in groups.values() for r in instances]
    since = min(starts, default=watching_since)
    if (now - since).total_seconds() > settings.worker_missing_grace_seconds:
        for name in settings.expected:
            if name not in heard:
                out[name] = WorkerHealth(
                    service=SYSTEM_WORKERS.get(name, ""),
                    worker=name,
                    mode="loop",
                    alive=False,
                    state="missing",
                    instances=0,
                    interval_seconds=None,
                    silent_for_seconds=None,
                    last_seen_at=None,
                    last_run_ok=None,
                    last_run_summary=None,
                    last_error=None,
                )
    return out


async def evaluate(
    session: AsyncSession, settings: Settings, now: datetime, *, watching_since: datetime
) -> HealthOut:
    window = timedelta(hours=settings.webhook_failure_window_hours)
    webhook_failures = await webhooks.failures_since(session, now - window)
    job_failures = await jobs.failures(session)
    needs_attention, unconfirmed = await attention.counts(
        session, now - timedelta(seconds=settings.dismissal_confirm_seconds)
    )
    beats = list((await session.execute(select(H))).all())
    workers = judge_workers(beats, settings, now, watching_since)
    depths = await dlq.depths(session)
    probe = await dlq.probe(session)

    conditions: list[Condition] = []

    def flag(code: str, severity: Literal["degraded", "critical"], message: str) -> None:
        conditions.append(Condition(code=code, severity=severity, message=message))

    # -- critical ---------------------------------------------------------------------------
    for name, w in workers.items():
        if w.mode == "loop" and w.state == "silent":
            flag(
                "worker_silent",
                "critical",
                f"Worker {name} ({w.service}) silent for {w.silent_for_seconds:.0f} s "
                f"(more than {settings.silent_after_intervals:g} of its {w.interval_seconds:g} s "
                "intervals)",
            )
        elif w.state == "missing":
            hours = settings.worker_forget_after_hours
            flag(
                "worker_missing",
                "critical",
                f"Worker {name}{f' ({w.service})' if w.service else ''} missing: no heartbeat "
                f"in the last {hours:g} h (not running, or failing before its first heartbeat)",
            )
    dead = {r.queue: r.depth for r in depths if r.depth > 0}
    if dead:
        listed = ", ".join(f"{q}.dlq: {n}" for q, n in sorted(dead.items()))
        flag(
            "dlq_not_empty",
            "critical",
            f"{_plural(sum(dead.values()), 'dead-lettered message')} ({listed})",
        )
    if probe is not None:
        stale = timedelta(seconds=settings.silent_after_intervals * probe.interval_seconds)
        if not probe.ok:
            flag("broker_unreachable", "critical", f"Broker unreachable: {probe.error}")
        elif probe.last_ok_at is None or now - probe.last_ok_at > stale:
            flag(
                "broker_unchecked",
                "critical",
                f"Broker not checked for {(now - probe.checked_at).total_seconds():.0f} s "
                "(is the ops worker running?)",
            )

    # -- degraded (the runbook's thresholds) ---------------------------------------------------
    if webhook_failures > THRESHOLDS["webhookFailures24h"]:
        flag(
            "webhook_failures",
            "degraded",
            f"{_plural(webhook_failures, 'webhook failure')} in the last "
            f"{settings.webhook_failure_window_hours:g} hours",
        )
    if job_failures > THRESHOLDS["reconciliationFailures"]:
        flag(
            "reconciliation_failures",
            "degraded",
            f"{_plural(job_failures, 'reconciliation job')} failed",
        )
    if needs_attention > THRESHOLDS["needsAttention"]:
        flag(
            "needs_attention",
            "degraded",
            f"{_plural(needs_attention, 'request needs', 'requests need')} attention",
        )
    for name, w in workers.items():
        if w.mode == "once" and w.last_run_ok is False:
            flag(
                "once_run_failed",
                "degraded",
                f"Last run of {name} failed: {w.last_error or 'no detail'}",
            )
        if w.mode == "once" and w.state == "overdue":
            flag(
                "once_run_overdue",
                "degraded",
                f"{name} last ran {_duration(w.silent_for_seconds or 0)} ago; scheduled every "
                f"{_duration(w.interval_seconds or 0)}: is its CronJob running?",
            )
    if unconfirmed:
        flag(
            "dismissal_unconfirmed",
            "degraded",
            f"{_plural(unconfirmed, 'dismissal')} not confirmed by scheduling after "
            f"{settings.dismissal_confirm_seconds:g} s",
        )

    severities = {c.severity for c in conditions}
    status = "critical" if "critical" in severities else "degraded" if severities else "healthy"
    conditions.sort(key=lambda c: c.severity != "critical")
    return HealthOut(
        status=status,
        reasons=[c.message for c in conditions],
        conditions=conditions,
        metrics={
            "webhookFailures24h": webhook_failures,
            "reconciliationFailures": job_failures,
            "needsAttention": needs_attention,
            "dismissalsUnconfirmed": unconfirmed,
            "dlqDepth": sum(r.depth for r in depths) if depths else None,
            "dlqDepths": {r.queue: r.depth for r in depths},
            "broker": None
            if probe is None
            else {
                "ok": probe.ok,
                "checkedAt": probe.checked_at.isoformat(),
                "lastOkAt": probe.last_ok_at.isoformat() if probe.last_ok_at else None,
                "error": probe.error,
            },
            "workers": {k: w.model_dump(by_alias=True, mode="json") for k, w in workers.items()},
        },
        thresholds=THRESHOLDS,
        checked_at=now,
    )


def unreachable(now: datetime, what: str) -> HealthOut:
    return HealthOut(
        status="critical",
        reasons=[what],
        conditions=[Condition(code="database_unreachable", severity="critical", message=what)],
        metrics={},
        thresholds=THRESHOLDS,
        checked_at=now,
    )
