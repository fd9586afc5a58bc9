"""Exchange, queue and routing names: the single source of truth for the broker's layout.

Every service declares the whole topology at start (idempotently), so a consumer's queue exists
and keeps messages even while that consumer is down. Queue arguments cannot change once a queue
is declared (PRECONDITION_FAILED): changing a queue's arguments means a new queue name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

EVENTS_EXCHANGE = "scheduler.events"  # topic; routing key = event type
COMMANDS_EXCHANGE = "scheduler.commands"  # direct; routing key = command type
RETRY_EXCHANGE = "scheduler.retry"  # direct; routing key = target queue name
DEAD_LETTER_EXCHANGE = "scheduler.dlx"  # direct; routing key = source queue name
DELAY_EXCHANGE_PREFIX = "scheduler.delay."  # one fanout exchange + queue per delay tier

DLQ_SUFFIX = ".dlq"

# Application headers (the broker's own redelivery counters are not used for retries).
ATTEMPT_HEADER = "x-attempt"
LAST_ERROR_HEADER = "x-last-error"
ORIGINAL_QUEUE_HEADER = "x-original-queue"
TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's durable quorum queue and what is routed to it."""

    name: str
    owner: str  # the service that consumes it
    events: tuple[str, ...] = ()  # binding patterns on EVENTS_EXCHANGE
    commands: tuple[str, ...] = ()  # command types on COMMANDS_EXCHANGE
    description: str = ""

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


@dataclass(frozen=True)
class Topology:
    queues: tuple[QueueSpec, ...] = field(default_factory=tuple)
    prefix: str = ""  # lets two systems (or two test runs) share one vhost

    def name(self, base: str) -> str:
        return self.prefix + base

    def queue(self, name: str) -> QueueSpec:
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)

    def queues_for_event(self, event_type: str) -> tuple[QueueSpec, ...]:
        """The queues an event published with routing key `event_type` reaches."""
        return tuple(q for q in self.queues if any(matches(p, event_type) for p in q.events))

    def command_queue_for(self, command_type: str) -> QueueSpec:
        for q in self.queues:
            if command_type in q.commands:
                return q
        raise KeyError(command_type)


def matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic-exchange binding `pattern` routes `routing_key`, as RabbitMQ decides.

    Words are separated by dots; `*` is exactly one word, `#` zero or more. A wildcard only counts
    as a whole word: `v*` is the literal word "v*" and matches nothing we publish.
    """
    return _match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


@cache
def _match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return _match(rest, key) or (bool(key) and _match(pattern, key[1:]))
    return bool(key) and head in ("*", key[0]) and _match(rest, key[1:])


# Bindings name the version explicitly: while a v1 and its v2 are published side by side (with
# different event ids, so inbox dedupe cannot tell them apart), each consumer must take exactly
# one of them, and moves to v2 by changing its binding.
QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec(
        name="ops.events",
        owner="ops",
        events=("#",),
        description="every event, for ops read models, heartbeats and timelines",
    ),
    QueueSpec(
        name="scheduling.events",
        owner="scheduling",
        events=(
            "integrations.calendar_event.*.v1",
            "integrations.icims_note.created.v1",
            "integrations.icims_sync.failed.v1",
            "integrations.icims.application_status_changed.v1",
            "integrations.attention.flagged.v1",
            "reconciler.attention.flagged.v1",
            "ops.attention.dismissed.v1",
        ),
    ),
    QueueSpec(
        name="scheduling.commands",
        owner="scheduling",
        commands=("scheduling.request.repair_status.v1",),
    ),
    QueueSpec(
        name="integrations.events",
        owner="integrations",
        events=(
            "scheduling.request.created.v1",
            "scheduling.request.link_resent.v1",
            "scheduling.request.reminder_due.v1",
            "scheduling.booking.*.v1",
            "ops.webhook.retry_requested.v1",
        ),
    ),
    QueueSpec(
        name="integrations.commands",
        owner="integrations",
        commands=("integrations.calendar_event.ensure.v1", "integrations.icims_note.ensure.v1"),
    ),
    QueueSpec(
        name="reconciler.events",
        owner="reconciler",
        events=(
            "scheduling.request.*.v1",
            "scheduling.booking.*.v1",
            "integrations.calendar_event.*.v1",
            "integrations.icims_note.created.v1",
            "integrations.icims_sync.failed.v1",
            "ops.job.retry_requested.v1",
        ),
    ),
)

TOPOLOGY = Topology(queues=QUEUES)
