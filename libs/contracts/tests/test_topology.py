import pytest
from scheduler_contracts import TOPOLOGY, all_types
from scheduler_contracts.topology import matches

EVENT_TYPES = sorted(name for name, cls in all_types().items() if cls.kind == "event")
COMMAND_TYPES = sorted(name for name, cls in all_types().items() if cls.kind == "command")


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("a.b.c", "a.b.c", True),
        ("a.b.c", "a.b", False),
        ("a.b", "a.b.c", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.c", False),
        ("a.*.c", "a.b.b.c", False),
        ("*", "a", True),
        ("*", "a.b", False),
        ("#", "a.b.c", True),
        ("#", "a", True),
        ("a.#", "a", True),  # '#' may match zero words
        ("a.#", "a.b.c", True),
        ("a.#", "b.a", False),
        ("#.c", "c", True),
        ("#.c", "a.b.c", True),
        ("#.c", "a.b.c.d", False),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.x.y.c", True),
        ("a.#.c", "a.x.y.d", False),
        ("#.b.#", "a.b.c", True),
        ("a.v*", "a.v1", False),  # a wildcard counts only as a whole word
        ("a.v*", "a.v*", True),
        ("scheduling.booking.*.v1", "scheduling.booking.confirmed.v1", True),
        ("scheduling.booking.*.v1", "scheduling.booking.confirmed.v2", False),
    ],
)
def test_matches(pattern: str, key: str, expected: bool) -> None:
    assert matches(pattern, key) is expected


def test_every_binding_routes_some_event() -> None:
    unused = [
        f"{q.name}: {pattern}"
        for q in TOPOLOGY.queues
        for pattern in q.events
        if not any(matches(pattern, t) for t in EVENT_TYPES)
    ]
    assert not unused, f"bindings that match no registered event: {unused}"


def test_binding_words_are_whole_wildcards_or_literals() -> None:
    for q in TOPOLOGY.queues:
        for pattern in q.events:
            for word in pattern.split("."):
                assert word in ("*", "#") or not {"*", "#"} & set(word), (q.name, pattern)


def test_every_command_has_exactly_one_queue() -> None:
    for command in COMMAND_TYPES:
        owners = [q.name for q in TOPOLOGY.queues if command in q.commands]
        assert len(owners) == 1, (command, owners)
        assert TOPOLOGY.command_queue_for(command).name == owners[0]
        # Commands go to the service that owns the thing: the producer prefix names it.
        assert TOPOLOGY.command_queue_for(command).owner == command.split(".")[0]


def test_command_bindings_name_registered_commands() -> None:
    bound = {c for q in TOPOLOGY.queues for c in q.commands}
    assert bound <= set(COMMAND_TYPES), bound - set(COMMAND_TYPES)


def test_every_event_reaches_ops_and_the_expected_consumers() -> None:
    for event in EVENT_TYPES:
        assert "ops.events" in [q.name for q in TOPOLOGY.queues_for_event(event)], event
    routed = {
        "scheduling.booking.confirmed.v1": {"ops", "integrations", "reconciler"},
        "scheduling.request.created.v1": {"ops", "integrations", "reconciler"},
        "integrations.calendar_event.failed.v1": {"ops", "scheduling", "reconciler"},
        "integrations.attention.flagged.v1": {"ops", "scheduling"},
        "reconciler.attention.flagged.v1": {"ops", "scheduling"},
        "ops.attention.dismissed.v1": {"ops", "scheduling"},
        "ops.webhook.retry_requested.v1": {"ops", "integrations"},
        "ops.job.retry_requested.v1": {"ops", "reconciler"},
        "scheduling.worker.heartbeat.v1": {"ops"},
    }
    for event, owners in routed.items():
        assert {q.owner for q in TOPOLOGY.queues_for_event(event)} == owners, event


def test_queue_names_are_unique() -> None:
    names = [q.name for q in TOPOLOGY.queues]
    assert len(names) == len(set(names))
