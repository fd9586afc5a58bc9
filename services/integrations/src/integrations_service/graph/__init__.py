"""Microsoft Graph: msgraph-sdk client, the adapter the job kinds use, the mailbox limiter."""

from integrations_service.graph.adapter import (
    Attachment,
    BusyInterval,
    DirectoryUser,
    EventSpec,
    GraphAdapter,
    GraphEvent,
    MailSpec,
    ScheduleResult,
)
from integrations_service.graph.client import GraphClient, build_graph_client
from integrations_service.graph.errors import GraphError
from integrations_service.graph.limiter import MailboxLimiter

__all__ = [
    "Attachment",
    "BusyInterval",
    "DirectoryUser",
    "EventSpec",
    "GraphAdapter",
    "GraphClient",
    "GraphError",
    "GraphEvent",
    "MailSpec",
    "MailboxLimiter",
    "ScheduleResult",
    "build_graph_client",
]
