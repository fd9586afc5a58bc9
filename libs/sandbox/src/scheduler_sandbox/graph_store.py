"""The fake Graph's memory: directory, mailboxes (calendar, inbox, sent items), seeded busy
blocks, fault switches and the accounting tests read (requests, in-flight and peak concurrency
per mailbox)."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler_sandbox.faults import Faults
from scheduler_sandbox.graph_odata import GraphProblem, bad_request, now_iso, pick

DEFAULT_DIRECTORY: list[tuple[str, str, str]] = [
    ("Avery Chen", "avery.chen@example.com", "Senior Software Engineer"),
    ("Blake Okafor", "blake.okafor@example.com", "Engineering Manager"),
    ("Carmen Diaz", "carmen.diaz@example.com", "Staff Engineer"),
    ("Devin Patel", "devin.patel@example.com", "Product Designer"),
    ("Emma Lindqvist", "emma.lindqvist@example.com", "Technical Recruiter"),
    ("Farah Haddad", "farah.haddad@example.com", "Data Scientist"),
    ("Gabriel Moreau", "gabriel.moreau@example.com", "Principal Engineer"),
    ("Hana Suzuki", "hana.suzuki@example.com", "QA Lead"),
    ("Interview Scheduling", "scheduling@example.com", "Service mailbox"),
]

DEFAULT_WORKING_HOURS: dict[str, Any] = {
    "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
    "startTime": "09:00:00.0000000",
    "endTime": "17:00:00.0000000",
    "timeZone": {"name": "UTC"},
}

USER_FIELDS = (
    "id",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
    "jobTitle",
    "officeLocation",
    "businessPhones",
    "mobilePhone",
    "preferredLanguage",
)


def opaque_id(prefix: str = "AAMkAGI2") -> str:
    # Shaped like Exchange ids: long, url-safe base64, often ending in '='.
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(45)).decode() + "AAA="


@dataclass
class StoredEvent:
    mailbox: str
    wire: dict[str, Any]  # Graph's JSON; start/end are kept in UTC here
    start: datetime
    end: datetime
    cancellation_comment: str | None = None
    copy_of: tuple[str, str] | None = None  # an attendee's copy: (organizer mailbox, event id)


@dataclass
class BusyBlock:
    start: datetime
    end: datetime
    show_as: str = "busy"
    subject: str | None = None


@dataclass
class Accounting:
    requests: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_concurrent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    throttled: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class GraphState:
    def __init__(
        self,
        *,
        token: str | None = None,
        concurrency_limit: int | None = 4,
        auto_provision: bool = True,
    ) -> None:
        self.token = token  # None = any non-empty bearer
        self.concurrency_limit = concurrency_limit  # Graph: 4 concurrent requests per mailbox
        self.auto_provision = auto_provision
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, StoredEvent]] = defaultdict(dict)
        self.transactions: dict[tuple[str, str], str] = {}
        self.inbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.busy: dict[str, list[BusyBlock]] = defaultdict(list)
        self.accounting = Accounting()
        self.faults = Faults()
        for name, mail, title in DEFAULT_DIRECTORY:
            self.add_user({"displayName": name, "mail": mail, "jobTitle": title})

    # -- directory ---------------------------------------------------------------------------

    def add_user(self, spec: dict[str, Any]) -> dict[str, Any]:
        mail = pick(spec, "mail") or pick(spec, "userPrincipalName")
        if not isinstance(mail, str) or "@" not in mail:
            raise bad_request("A user needs a mail address.")
        existing = self.find_user(mail)
        local = mail.split("@", 1)[0]
        parts = [p.capitalize() for p in local.replace("_", ".").split(".") if p]
        user: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + mail.lower())),
            "displayName": " ".join(parts) or local,
            "givenName": parts[0] if parts else None,
            "surname": parts[-1] if len(parts) > 1 else None,
            "mail": mail,
            "userPrincipalName": mail,
            "jobTitle": None,
            "officeLocation": None,
            "businessPhones": [],
            "mobilePhone": None,
            "preferredLanguage": "en-US",
            "workingHours": DEFAULT_WORKING_HOURS,
            **(existing or {}),
            **spec,
        }
        if "displayName" in spec and "givenName" not in spec and " " in spec["displayName"]:
            user["givenName"], _, user["surname"] = spec["displayName"].partition(" ")
        self.users[user["id"]] = user
        return user

    def find_user(self, ref: str) -> dict[str, Any] | None:
        if ref in self.users:
            return self.users[ref]
        lowered = ref.strip().lower()
        for user in self.users.values():
            if lowered in (
                str(user.get("mail") or "").lower(),
                str(user.get("userPrincipalName") or "").lower(),
                str(user.get("id")).lower(),
            ):
                return user
        return None

    def mailbox_key(self, ref: str) -> str:
        """The accounting key of a URL user: its mail, lowercase (an unknown ref as given)."""
        user = self.find_user(ref)
        return str(user["mail"]).lower() if user else ref.strip().lower()

    def mailbox(self, ref: str) -> str:
        """The mailbox a URL user names; unknown addresses are provisioned when allowed."""
        user = self.find_user(ref)
        if user is None and self.auto_provision and "@" in ref:
            user = self.add_user({"mail": ref.strip()})
        if user is None:
            raise GraphProblem(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        return str(user["mail"]).lower()

    def display_name(self, address: str) -> str:
        user = self.find_user(address)
        return str(user["displayName"]) if user else address

    def public_user(self, user: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        fields = select or list(USER_FIELDS)
        out = {"id": user["id"]}
        for name in fields:
            for key in USER_FIELDS:
                if key.lower() == name.strip().lower():
                    out[key] = user.get(key)
        return out

    def known_mailboxes(self) -> list[str]:
        names = {str(u["mail"]).lower() for u in self.users.values()}
        names.update(self.inbox, self.sent, self.events, self.busy)
        return sorted(names)

    # -- mail --------------------------------------------------------------------------------

    def send_mail(self, sender: str, body: Any) -> dict[str, Any]:
        message = pick(body, "message")
        if not isinstance(message, dict):
            raise bad_request("The 'message' parameter is required.")
        save = pick(body, "saveToSentItems")
        to, cc, bcc = (
            _recipients(pick(message, kind))
            for kind in ("toRecipients", "ccRecipients", "bccRecipients")
        )
        if not (to or cc or bcc):
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        stored = self.deliver(
            sender,
            subject=str(pick(message, "subject") or ""),
            body=pick(message, "body") or {"contentType": "text", "content": ""},
            to=to,
            cc=cc,
            bcc=bcc,
            attachments=[_attachment(a) for a in pick(message, "attachments") or []],
            save_to_sent=save is not False,
        )
        return stored

    def deliver(
        self,
        sender: str,
        *,
        subject: str,
        body: dict[str, Any],
        to: list[dict[str, Any]],
        cc: list[dict[str, Any]] | None = None,
        bcc: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        save_to_sent: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = now_iso()
        message = {
            "id": opaque_id("AAMkAGMs"),
            "internetMessageId": f"<{uuid.uuid4().hex}@sandbox.example.com>",
            "subject": subject,
            "body": {
                "contentType": pick(body, "contentType") or "text",
                "content": pick(body, "content") or "",
            },
            "from": {"emailAddress": {"address": sender, "name": self.display_name(sender)}},
            "toRecipients": to,
            "ccRecipients": cc or [],
            "bccRecipients": bcc or [],
            "sentDateTime": now,
            "receivedDateTime": now,
            "hasAttachments": bool(attachments),
            "attachments": attachments or [],
            **(extra or {}),
        }
        message["sender"] = message["from"]
        for r in [*to, *(cc or []), *(bcc or [])]:
            self.inbox[r["emailAddress"]["address"].lower()].append(message)
        if save_to_sent:
            self.sent[sender].append(message)
        return message

    def find_message(self, mailbox: str, message_id: str) -> dict[str, Any] | None:
        for m in [*self.inbox.get(mailbox, []), *self.sent.get(mailbox, [])]:
            if m["id"] == message_id:
                return m
        return None


def _recipients(raw: Any) -> list[dict[str, Any]]:
    out = []
    for r in raw or []:
        address = pick(pick(r, "emailAddress"), "address")
        if not isinstance(address, str) or "@" not in address:
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        name = pick(pick(r, "emailAddress"), "name") or address
        out.append({"emailAddress": {"address": address, "name": name}})
    return out


def _attachment(raw: Any) -> dict[str, Any]:
    kind = pick(raw, "@odata.type") or "#microsoft.graph.fileAttachment"
    if kind != "#microsoft.graph.fileAttachment":
        raise bad_request(f"Attachment type '{kind}' is not supported by the sandbox.")
    content = pick(raw, "contentBytes")
    try:
        size = len(base64.b64decode(str(content), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise bad_request("contentBytes is not valid base64.") from exc
    return {
        "@odata.type": kind,
        "id": opaque_id("AAMkAGAt"),
        "name": str(pick(raw, "name") or "attachment"),
        "contentType": str(pick(raw, "contentType") or "application/octet-stream"),
        "size": size,
        "isInline": bool(pick(raw, "isInline")),
        "contentBytes": content,
    }
