import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError
from scheduler_contracts import Envelope, EventData, UnknownEventType, all_types, data_class_for
from scheduler_contracts.events.common import ATTENTION_REASONS
from scheduler_contracts.events.scheduling import BookingConfirmed, RequestCreated
from scheduler_contracts.registry import register

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SLOT = {"start": NOW.isoformat(), "end": (NOW + timedelta(minutes=45)).isoformat()}
LATER_SLOT = {
    "start": (NOW + timedelta(days=1)).isoformat(),
    "end": (NOW + timedelta(days=1, minutes=45)).isoformat(),
}
USER = {"user_id": str(uuid.uuid4()), "email": "ops@example.com"}
CANDIDATE = {"name": "Ada Lovelace", "email": "ada@example.com", "time_zone": "Europe/London"}
INTERVIEWERS = [{"email": "grace@example.com", "name": "Grace"}, {"email": "alan@example.com"}]

# One valid value per field name used anywhere in the catalog. A new field without a sample here
# fails `test_every_field_has_a_sample`, so every field is exercised by the round trip.
SAMPLES: dict[str, Any] = {
    "actor": {"kind": "user", "user_id": USER["user_id"], "email": USER["email"]},
    "attempts": 3,
    "body_sha256": "ab" * 32,
    "booked_by": "candidate",
    "booking_id": str(uuid.uuid4()),
    "booking_link_expires_at": NOW.isoformat(),
    "booking_status": "cancelled",
    "booking_url": "https://scheduler.example.com/book/tok_123",
    "buffer_after_minutes": 10,
    "buffer_before_minutes": 5,
    "cancelled_by": "coordinator",
    "candidate": CANDIDATE,
    "cleared_by": USER,
    "created_by": {"kind": "system", "name": "scheduler-webhook-process"},
    "current_status_id": "C51218",
    "current_status_name": "Phone Screen",
    "customer_id": "1234",
    "description": "booking confirmed 26h ago, no calendar event",
    "dismissed_by": USER,
    "duplicate": False,
    "duplicate_of": str(uuid.uuid4()),
    "duration_minutes": 45,
    "error_code": "ErrorItemNotFound",
    "error_message": "The specified object was not found in the store.",
    "event_type": "application.status_changed",
    "expected_status": "booked",
    "final": True,
    "from_status": "open",
    "graph_event_id": "AAMkAGI2TG93AAA=",
    "hours_before": 24,
    "http_status": 404,
    "ical_uid": "040000008200E00074C5B7101A82E008",
    "icims_application_id": "98765",
    "icims_job_id": "555",
    "icims_person_id": "4242",
    "icims_user_id": "77",
    "idempotency_key": "job-1:attempt",
    "instance_id": "host-1:4242:abcd",
    "interval_seconds": 15.0,
    "interviewers": INTERVIEWERS,
    "job": {"icims_job_id": "555", "title": "Engineer", "job_number": "REQ-1"},
    "job_id": str(uuid.uuid4()),
    "job_type": "calendar_event_missing",
    "last_error": "503 Service Unavailable",
    "last_run_ok": True,
    "last_run_summary": "processed 3 webhooks",
    "max_attempts": 5,
    "max_messages": 100,
    "minimum_notice_minutes": 720,
    "mode": "panel",
    "new_slot": LATER_SLOT,
    "new_status_id": "C51218",
    "next_attempt_at": NOW.isoformat(),
    "note": "fixed the organizer mailbox",
    "note_id": str(uuid.uuid4()),
    "note_kind": "booking_confirmed",
    "observed_status": "open",
    "old_status_id": "C100",
    "operation": "create",
    "organizer_email": "recruiting@example.com",
    "coordinator_email": "coordinator@example.com",
    "recruiter_email": "recruiter@example.com",
    "triggers_scheduling": True,
    "organizer_mailbox": "recruiting@example.com",
    "origin": "icims_webhook",
    "outcome": "forwarded",
    "person": {"icims_person_id": "4242", "first_name": "Ada", "email": "ada@example.com"},
    "pool_size": 1,
    "previous_slot": SLOT,
    "provider": "icims",
    "provider_event_type": "WorkFlowStatusChangeEvent",
    "queue": "integrations.events",
    "reason": ATTENTION_REASONS[0],
    "reasons": list(ATTENTION_REASONS),
    "received_at": NOW.isoformat(),
    "request_id": str(uuid.uuid4()),
    "requested_by": USER,
    "reread_at": NOW.isoformat(),
    "rescheduled_by": "candidate",
    "resent_by": {"kind": "user", "email": "coordinator@example.com"},
    "resolution": "repaired",
    "revision": 2,
    "sent_at": NOW.isoformat(),
    "service": "integrations",
    "slot": SLOT,
    "source": "icims_sync",
    "started_at": NOW.isoformat(),
    "state": "running",
    "sync_job_id": str(uuid.uuid4()),
    "system_id": "31337",
    "teams_join_url": "https://teams.microsoft.com/l/meetup-join/abc",
    "title": "Onsite interview",
    "to_status": "booked",
    "verification_error": "signature mismatch",
    "verified": True,
    "webhook_id": str(uuid.uuid4()),
    "web_link": "https://outlook.office365.com/owa/?itemid=abc",
    "window_end": "2026-03-20",
    "window_start": "2026-03-02",
    "worker": "scheduler-sync",
}
# Where one field name means different things in different types.
OVERRIDES: dict[tuple[str, str], Any] = {
    **{(f"{s}.worker.heartbeat.v1", "mode"): "loop" for s in ("gateway", "scheduling")},
    **{(f"{s}.worker.heartbeat.v1", "mode"): "once" for s in ("integrations", "reconciler", "ops")},
    ("reconciler.attention.flagged.v1", "source"): "reconciliation",
    ("reconciler.attention.flagged.v1", "reason"): "Reconciliation failed",
}

TYPES = sorted(all_types())


def sample(type_name: str, *, minimal: bool) -> dict[str, Any]:
    fields = data_class_for(type_name).model_fields
    chosen = [n for n, f in fields.items() if f.is_required() or not minimal]
    return {n: OVERRIDES.get((type_name, n), SAMPLES[n]) for n in chosen}


def test_every_field_has_a_sample() -> None:
    missing = {n for cls in all_types().values() for n in cls.model_fields} - SAMPLES.keys()
    assert not missing, f"add samples for {sorted(missing)}"


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("minimal", [True, False], ids=["minimal", "full"])
def test_parse_data_round_trips(type_name: str, minimal: bool) -> None:
    cls = data_class_for(type_name)
    data = cls.model_validate(sample(type_name, minimal=minimal))
    envelope = Envelope.build(data, source="test", org_id=uuid.uuid4(), subject="r-1")

    received = Envelope.model_validate_json(envelope.model_dump_json())

    assert received == envelope
    assert received.type == type_name
    parsed = received.parse_data()
    assert type(parsed) is cls
    assert parsed == data


def test_unknown_fields_survive_the_round_trip() -> None:
    # A producer on a newer release may add optional fields; older consumers must keep them.
    data = BookingConfirmed.model_validate(
        {**sample("scheduling.booking.confirmed.v1", minimal=True), "location": "Room 4"}
    )
    envelope = Envelope.model_validate_json(Envelope.build(data, source="t").model_dump_json())
    assert envelope.parse_data().model_extra == {"location": "Room 4"}


def test_build_sets_type_and_starts_a_correlation() -> None:
    data = RequestCreated.model_validate(sample("scheduling.request.created.v1", minimal=True))
    envelope = Envelope.build(data, source="scheduling", subject=str(data.request_id))

    assert envelope.type == "scheduling.request.created.v1"
    assert envelope.source == "scheduling"
    assert envelope.correlation_id == envelope.id
    assert envelope.causation_id is None
    assert envelope.time.tzinfo is not None


def test_build_inherits_from_its_cause() -> None:
    org = uuid.uuid4()
    cause = Envelope.build(
        RequestCreated.model_validate(sample("scheduling.request.created.v1", minimal=True)),
        source="scheduling",
        org_id=org,
        subject="request-1",
    )
    effect = Envelope.build(
        BookingConfirmed.model_validate(sample("scheduling.booking.confirmed.v1", minimal=True)),
        source="scheduling",
        causation=cause,
    )
    grandchild = Envelope.build(effect.parse_data(), source="integrations", causation=effect)

    assert effect.causation_id == cause.id
    assert effect.correlation_id == cause.correlation_id == cause.id
    assert (effect.org_id, effect.subject) == (org, "request-1")
    assert grandchild.correlation_id == cause.id
    assert grandchild.causation_id == effect.id
    assert effect.id not in (cause.id, grandchild.id)


def test_explicit_values_win_over_the_cause() -> None:
    cause = Envelope.build(
        RequestCreated.model_validate(sample("scheduling.request.created.v1", minimal=True)),
        source="scheduling",
        org_id=uuid.uuid4(),
        subject="request-1",
    )
    org = uuid.uuid4()
    effect = Envelope.build(
        cause.parse_data(), source="scheduling", causation=cause, org_id=org, subject="other"
    )
    assert (effect.org_id, effect.subject) == (org, "other")


def test_unknown_type_raises() -> None:
    envelope = Envelope(type="scheduling.request.teleported.v1", source="test", data={})
    with pytest.raises(UnknownEventType):
        envelope.parse_data()
    with pytest.raises(LookupError):
        data_class_for("nope.nothing.here.v1")


@pytest.mark.parametrize(
    "bad", ["Scheduling.request.created.v1", "scheduling", "scheduling.request.created", "a b.v1"]
)
def test_envelope_rejects_invalid_type_names(bad: str) -> None:
    with pytest.raises(ValidationError):
        Envelope(type=bad, source="test")


@pytest.mark.parametrize(
    "bad", ["scheduling.request.v1", "scheduling.request.created.v0", "Scheduling.x.y.v1", "a.b.c"]
)
def test_register_rejects_invalid_type_names(bad: str) -> None:
    class Bad(EventData):
        type_name: ClassVar[str] = bad

    with pytest.raises(ValueError, match="invalid type_name"):
        register(Bad)


def test_register_rejects_a_second_class_for_a_name() -> None:
    class Duplicate(EventData):
        type_name: ClassVar[str] = "scheduling.request.created.v1"

    with pytest.raises(ValueError, match="registered twice"):
        register(Duplicate)


def test_payloads_reject_invalid_values() -> None:
    valid = sample("scheduling.request.created.v1", minimal=True)
    for field, value in [
        ("window_end", str(date(2026, 3, 1))),  # before window_start
        ("interviewers", []),
        ("duration_minutes", 0),
        ("booking_url", "javascript:alert(1)"),
        ("candidate", {**CANDIDATE, "email": "not-an-email"}),
    ]:
        with pytest.raises(ValidationError):
            RequestCreated.model_validate({**valid, field: value})
    booking = sample("scheduling.booking.confirmed.v1", minimal=True)
    for slot in [
        {"start": SLOT["end"], "end": SLOT["start"]},  # ends before it starts
        {"start": "2026-03-02T09:30:00", "end": "2026-03-02T10:15:00"},  # no offset
    ]:
        with pytest.raises(ValidationError):
            BookingConfirmed.model_validate({**booking, "slot": slot})


def test_commands_and_events_are_told_apart() -> None:
    commands = {name for name, cls in all_types().items() if cls.kind == "command"}
    assert commands == {
        "integrations.calendar_event.ensure.v1",
        "integrations.icims_note.ensure.v1",
        "scheduling.request.repair_status.v1",
    }
    for name in commands:
        assert "idempotency_key" in data_class_for(name).model_fields
