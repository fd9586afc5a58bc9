"""Versioned event and command schemas, and the broker's names, shared by every service."""

from scheduler_contracts.envelope import Envelope, EventData
from scheduler_contracts.registry import UnknownEventType, all_types, data_class_for
from scheduler_contracts.topology import TOPOLOGY, QueueSpec, Topology

__all__ = [
    "TOPOLOGY",
    "Envelope",
    "EventData",
    "QueueSpec",
    "Topology",
    "UnknownEventType",
    "all_types",
    "data_class_for",
]
