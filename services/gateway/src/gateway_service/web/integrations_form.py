"""The form on `/settings/integrations`: its fields, what a submission changes, and which field
an error from the integrations service belongs to. No I/O here; pages.py makes the calls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from servicekit.errors import AppError

SECTIONS = {"graph": "Microsoft 365 (Graph)", "icims": "iCIMS"}
SOURCES = {
    "org": "your organization's own settings",
    "default": "this installation's defaults",
    "none": "nothing yet",
}
WAS = "was_"  # hidden inputs: each field's value as the page showed it
REMOVE = "_remove"  # checkbox beside a secret: clear the stored one


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", key).lower()


@dataclass(frozen=True)
class Field:
    section: str
    key: str  # the integrations API's camelCase name
    label: str
    hint: str = ""
    kind: str = "text"  # the input type; "password" is a write-only secret
    max_length: int = 100
    credential: bool = False

    @property
    def name(self) -> str:
        return f"{self.section}_{_snake(self.key)}"

    @property
    def secret(self) -> bool:
        return self.kind == "password"

    @property
    def set_flag(self) -> str:
        return f"{self.key}Set"


FIELDS = (
    Field("graph", "tenantId", "Tenant id", "contoso.onmicrosoft.com or the directory id.",
          credential=True),
    Field("graph", "clientId", "Application (client) id", credential=True),
    Field("graph", "clientSecret", "Client secret", kind="password", max_length=500,
          credential=True),
    Field("graph", "organizerMailbox", "Organizer mailbox",
          "Calendar invitations and booking links are sent from this mailbox.", kind="email",
          max_length=320),
    Field("icims", "customerId", "Customer id", credential=True),
    Field("icims", "clientId", "Client id", max_length=200, credential=True),
    Field("icims", "clientSecret", "Client secret", kind="password", max_length=500,
          credential=True),
    Field("icims", "tokenUrl", "Token URL", "Keep it unless iCIMS gave you another.", kind="url",
          max_length=2048, credential=True),
    Field("icims", "webhookSecret", "Webhook secret",
          "iCIMS signs its webhooks with it; at least 16 characters.", kind="password",
          max_length=500),
    Field("icims", "noteField", "Note field",
          "The application field scheduling notes are written to."),
    Field("icims", "scheduleStatusId", "Status that starts scheduling",
          "Moving an application to this status opens a scheduling request."),
    Field("icims", "scheduledStatusId", "Status once booked",
          "The application moves to this status when the candidate books."),
)  # fmt: skip
_BY_KEY = {(f.section, f.key): f for f in FIELDS}


def checked(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict) or not all(isinstance(answer.get(s), dict) for s in SECTIONS):
        raise AppError(
            "The integrations service gave an unexpected answer.",
            code="upstream_error",
            status=502,
        )
    return answer


def shown(current: dict[str, Any]) -> dict[str, str]:
    """The inputs' values for the stored settings. Secrets are write-only: never among them."""
    return {f.name: str(current[f.section].get(f.key) or "") for f in FIELDS if not f.secret}


def submitted(form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(what the admin typed, what the page had shown), for showing the form again."""
    fields = [f for f in FIELDS if not f.secret]
    return (
        {f.name: form.get(f.name, "") for f in fields},
        {f.name: form.get(WAS + f.name, "") for f in fields},
    )


def changes(form: dict[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The PUT body for a submitted form, and errors found before asking (by field name).

    A field goes out only when it differs from what the page showed: absent keeps the stored
    value, so an unchanged form changes nothing, and a value shown from the installation's
    defaults is not copied into the org's own settings. A secret goes out only when typed
    (or as null when "remove" is ticked).
    """
    body: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    errors: dict[str, str] = {}
    for f in FIELDS:
        value = form.get(f.name, "").strip()
        if f.secret:
            remove = bool(form.get(f.name + REMOVE))
            if value and remove:
                errors[f.name] = "Type a new secret or tick remove, not both."
            elif value or remove:
                body[f.section][f.key] = value or None
        elif value != form.get(WAS + f.name, "").strip():
            body[f.section][f.key] = value or None
    # The service resolves credentials as a group (the org's own tenant, client id and secret,
    # or the installation's): changing one sends the section's others as shown, so the org
    # never ends up with its own client id beside no tenant.
    for section, sent in body.items():
        if any(_BY_KEY[section, key].credential for key in sent):
            for f in FIELDS:
                if f.section == section and f.credential and not f.secret:
                    sent.setdefault(f.key, form.get(f.name, "").strip() or None)
    return {s: sent for s, sent in body.items() if sent}, errors


def _camel(part: str) -> str:
    head, *rest = part.split("_")
    return head + "".join(p.title() for p in rest)


def _readable(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").strip() or "Not valid"
    return msg[0].upper() + msg[1:] + ("" if msg.endswith(".") else ".")


def field_errors(details: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A 422's `details.errors[]` as (message by field name, messages without a field).

    `loc` names the body path, e.g. ["body", "graph", "organizerMailbox"].
    """
    fields: dict[str, str] = {}
    general: list[str] = []
    problems = details.get("errors")
    for problem in problems if isinstance(problems, list) else []:
        if not isinstance(problem, dict):
            continue
        loc = [str(p) for p in problem.get("loc") or []]
        loc = loc[1:] if loc[:1] == ["body"] else loc
        msg = _readable(str(problem.get("msg") or ""))
        field = _BY_KEY.get((loc[0], _camel(loc[1]))) if len(loc) >= 2 else None
        if field is not None:
            fields.setdefault(field.name, msg)
        else:
            where = ".".join(loc)
            general.append(f"{where}: {msg}" if where else msg)
    if not fields and not general:
        general.append("The settings are not valid.")
    return fields, general


def when(value: Any) -> str:
    """An ISO 8601 time as the page shows it: minutes, in UTC."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
