"""Calendar behaviour of the fake Graph: events (create with transactionId dedupe, Teams link,
patch, cancel, delete, attendee copies and invitations) and getSchedule free/busy."""

from __future__ import annotations

import html
import math
import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from scheduler_sandbox.graph_odata import (
    GraphProblem,
    bad_request,
    dtz,
    now_iso,
    parse_dtz,
    pick,
)
from scheduler_sandbox.graph_store import GraphState, StoredEvent, opaque_id

MAX_ATTENDEES = 500
MAX_SCHEDULES = 20
MAX_WINDOW = timedelta(days=42)
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
DIGIT = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}
# Which status an availabilityView slot shows when items overlap.
PRIORITY = {"free": 0, "tentative": 1, "workingElsewhere": 2, "busy": 3, "oof": 4}
# Fields Graph sets itself: a PATCH cannot change them.
READ_ONLY = {"id", "iCalUId", "createdDateTime", "lastModifiedDateTime", "changeKey", "webLink"}
TEAMS_RULE = "_" * 80


def teams_blob(join_url: str, meeting_id: str, content_type: str) -> str:
    """What Exchange appends to an online meeting's body (shape of the real one, shortened)."""
    if content_type.lower() != "html":
        return f"\n\n{TEAMS_RULE}\nMicrosoft Teams meeting\nJoin: {join_url}\nID: {meeting_id}\n"
    rule = (
        '<div style="width:100%"><span style="white-space:nowrap;color:#5F5F5F;opacity:.36">'
        f"{TEAMS_RULE}</span></div>"
    )
    return (
        f'{rule}<div class="me-email-text" lang="en-US" style="color:#252424">'
        '<div style="margin-top:24px;margin-bottom:20px"><span style="font-size:24px">'
        "Microsoft Teams meeting</span></div>"
        f'<div><a class="me-email-headline" href="{html.escape(join_url)}" target="_blank">'
        f"Join the meeting now</a></div><div>Meeting ID: {meeting_id}</div></div>{rule}"
    )


def preview(content: str) -> str:
    text = re.sub(r"<(style|head)[^>]*>.*?</\1>|<[^>]+>", " ", content, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()[:255]


def _attendees(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("'attendees' must be a list.")
    if len(raw) > MAX_ATTENDEES:
        raise bad_request(f"An event can have at most {MAX_ATTENDEES} attendees.")
    out = []
    for a in raw:
        address = pick(pick(a, "emailAddress"), "address")
        if not isinstance(address, str) or "@" not in address:
            raise bad_request("At least one attendee is not valid.", "ErrorInvalidRecipients")
        out.append(
            {
                "type": pick(a, "type") or "required",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {
                    "name": pick(pick(a, "emailAddress"), "name") or address,
                    "address": address,
                },
            }
        )
    return out


def _times(body: Any, current: StoredEvent | None) -> tuple[datetime, datetime]:
    raw_start, raw_end = pick(body, "start"), pick(body, "end")
    if current is None and (raw_start is None or raw_end is None):
        raise bad_request("An event needs 'start' and 'end'.")
    start = parse_dtz(raw_start, "start") if raw_start is not None else current.start  # type: ignore[union-attr]
    end = parse_dtz(raw_end, "end") if raw_end is not None else current.end  # type: ignore[union-attr]
    if end < start:
        raise bad_request("The event's end is before its start.")
    return start, end


def _show_as(value: Any) -> str:
    if value is None:
        return "busy"
    if value not in SHOW_AS:
        raise bad_request(f"Invalid value '{value}' for showAs.")
    return str(value)


class Calendar:
    def __init__(self, state: GraphState) -> None:
        self.st = state

    def get(self, mailbox: str, event_id: str) -> StoredEvent:
        event = self.st.events.get(mailbox, {}).get(event_id)
        if event is None:
            raise GraphProblem(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return event

    def render(self, event: StoredEvent, zone_name: str = "UTC") -> dict[str, Any]:
        return {
            **event.wire,
            "start": dtz(event.start, zone_name),
            "end": dtz(event.end, zone_name),
        }

    def create(self, mailbox: str, body: Any, base_url: str) -> StoredEvent:
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        transaction_id = pick(body, "transactionId")
        if transaction_id:
            # Graph's idempotency: a retried POST gets the original event, never a twin.
            known = self.st.transactions.get((mailbox, str(transaction_id)))
            if known and known in self.st.events[mailbox]:
                return self.st.events[mailbox][known]
        start, end = _times(body, None)
        attendees = _attendees(pick(body, "attendees"))
        event_id = opaque_id()
        online = bool(pick(body, "isOnlineMeeting"))
        provider = pick(body, "onlineMeetingProvider") or ("teamsForBusiness" if online else None)
        content_type = str(pick(pick(body, "body"), "contentType") or "text")
        content = str(pick(pick(body, "body"), "content") or "")
        online_meeting = None
        if online and provider == "teamsForBusiness":
            meeting_id = f"{secrets.randbelow(10**12):012d}"
            join_url = f"{base_url}/teams/meetup-join/{meeting_id}"
            online_meeting = {"joinUrl": join_url, "conferenceId": meeting_id}
            content += teams_blob(join_url, meeting_id, content_type)
            if content_type.lower() == "html" and "<html" not in content.lower():
                content = f"<html><head></head><body>{content}</body></html>"
        now = now_iso()
        organizer = {"emailAddress": {"name": self.st.display_name(mailbox), "address": mailbox}}
        location = pick(body, "location") or {"displayName": ""}
        wire: dict[str, Any] = {
            "@odata.etag": "",
            "id": event_id,
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "changeKey": "",
            "categories": pick(body, "categories") or [],
            "transactionId": transaction_id,
            "originalStartTimeZone": pick(pick(body, "start"), "timeZone"),
            "originalEndTimeZone": pick(pick(body, "end"), "timeZone"),
            "iCalUId": "040000008200E00074C5B7101A82E00800000000" + uuid.uuid4().hex.upper(),
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "hasAttachments": False,
            "subject": pick(body, "subject") or "",
            "bodyPreview": preview(content),
            "importance": pick(body, "importance") or "normal",
            "sensitivity": pick(body, "sensitivity") or "normal",
            "isAllDay": bool(pick(body, "isAllDay")),
            "isCancelled": False,
            "isOrganizer": True,
            "responseRequested": True,
            "showAs": _show_as(pick(body, "showAs")),
            "type": "singleInstance",
            "webLink": f"{base_url}/mailboxes/{mailbox}#event-{event_id}",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": online,
            "onlineMeetingProvider": provider or "unknown",
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": content_type, "content": content},
            "location": location,
            "locations": [location] if pick(location, "displayName") else [],
            "attendees": attendees,
            "organizer": organizer,
            "onlineMeeting": online_meeting,
        }
        event = StoredEvent(mailbox=mailbox, wire=wire, start=start, end=end)
        self._touch(event)
        self.st.events[mailbox][event_id] = event
        if transaction_id:
            self.st.transactions[(mailbox, str(transaction_id))] = event_id
        self._sync_copies(event)
        self._invite(event, attendees, "meetingRequest", wire["subject"])
        return event

    def patch(self, mailbox: str, event_id: str, body: Any) -> StoredEvent:
        event = self.get(mailbox, event_id)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        tx = pick(body, "transactionId")
        if tx is not None and tx != event.wire.get("transactionId"):
            raise bad_request(
                "transactionId cannot be changed once set.",
                "ErrorInvalidPropertyUpdateSentToServer",
            )
        event.start, event.end = _times(body, event)
        for key, value in body.items():
            if key in READ_ONLY or key.lower() in {"start", "end", "transactionid"}:
                continue
            if key == "attendees":
                value = _attendees(value)
            elif key == "showAs":
                value = _show_as(value)
            # Graph replaces nested objects wholesale: a new `body` drops the Teams blob.
            event.wire[key] = value
        if "body" in body:
            event.wire["bodyPreview"] = preview(str(pick(body["body"], "content")))
        self._touch(event)
        if event.copy_of is None:
            self._sync_copies(event)
        return event

    def cancel(self, mailbox: str, event_id: str, body: Any) -> None:
        event = self.get(mailbox, event_id)
        if not event.wire.get("isOrganizer"):
            raise bad_request(
                "Your request can't be completed. You need to be an organizer to cancel a meeting.",
                "ErrorAccessDenied",
            )
        comment = pick(body, "comment")
        event.cancellation_comment = None if comment is None else str(comment)
        self._mark_cancelled(event)

    def delete(self, mailbox: str, event_id: str) -> None:
        event = self.get(mailbox, event_id)
        del self.st.events[mailbox][event_id]
        tx = event.wire.get("transactionId")
        if tx:
            self.st.transactions.pop((mailbox, str(tx)), None)
        if event.wire.get("isOrganizer") and not event.wire.get("isCancelled"):
            self._mark_cancelled(event)  # deleting a meeting sends its cancellation

    def _mark_cancelled(self, event: StoredEvent) -> None:
        if event.wire.get("isCancelled"):
            return
        event.wire["isCancelled"] = True
        self._touch(event)
        for copy in self._copies(event):
            copy.wire["isCancelled"] = True
            copy.cancellation_comment = event.cancellation_comment
            self._touch(copy)
        comment = html.escape(event.cancellation_comment or "")
        self._invite(
            event,
            event.wire["attendees"],
            "meetingCancelled",
            f"Canceled: {event.wire['subject']}",
            {"contentType": "html", "content": f"<p>{comment}</p>"},
        )

    def _touch(self, event: StoredEvent) -> None:
        event.wire["lastModifiedDateTime"] = now_iso()
        event.wire["changeKey"] = secrets.token_urlsafe(18)
        event.wire["@odata.etag"] = f'W/"{event.wire["changeKey"]}"'

    def _copies(self, event: StoredEvent) -> list[StoredEvent]:
        key = (event.mailbox, event.wire["id"])
        return [e for cal in self.st.events.values() for e in cal.values() if e.copy_of == key]

    def _sync_copies(self, event: StoredEvent) -> None:
        """Internal attendees (directory users) get the meeting in their own calendar, as
        Exchange does: tentative until they answer, so their free/busy shows it."""
        wanted = {
            a["emailAddress"]["address"].lower()
            for a in event.wire["attendees"]
            if self.st.find_user(a["emailAddress"]["address"])
        } - {event.mailbox}
        for copy in self._copies(event):
            if copy.mailbox not in wanted:
                del self.st.events[copy.mailbox][copy.wire["id"]]
            else:
                wanted.discard(copy.mailbox)
                self._copy_fields(event, copy)
        for mailbox in wanted:
            copy_id = opaque_id()
            wire = {**event.wire, "id": copy_id, "transactionId": None, "isOrganizer": False}
            wire["responseStatus"] = {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
            wire["webLink"] = wire["webLink"].replace(event.mailbox, mailbox)
            copy = StoredEvent(mailbox, wire, event.start, event.end, None, event_key(event))
            self._copy_fields(event, copy)
            self.st.events[mailbox][copy_id] = copy

    def _copy_fields(self, event: StoredEvent, copy: StoredEvent) -> None:
        for key in (
            "subject",
            "body",
            "bodyPreview",
            "location",
            "locations",
            "attendees",
            "onlineMeeting",
            "isOnlineMeeting",
            "isCancelled",
        ):
            copy.wire[key] = event.wire.get(key)
        copy.wire["showAs"] = "free" if event.wire.get("showAs") == "free" else "tentative"
        copy.start, copy.end = event.start, event.end
        self._touch(copy)

    def _invite(
        self,
        event: StoredEvent,
        attendees: list[dict[str, Any]],
        kind: str,
        subject: str,
        body: dict[str, Any] | None = None,
    ) -> None:
        recipients = [{"emailAddress": a["emailAddress"]} for a in attendees]
        if not recipients:
            return
        self.st.deliver(
            event.mailbox,
            subject=subject,
            body=body or event.wire["body"],
            to=recipients,
            save_to_sent=False,
            extra={"meetingMessageType": kind, "event": {"id": event.wire["id"]}},
        )

    # -- free/busy ---------------------------------------------------------------------------

    def get_schedule(
        self, body: Any, zone_name: str, organizer: str | None = None
    ) -> list[dict[str, Any]]:
        schedules = pick(body, "schedules")
        if not isinstance(schedules, list) or not schedules:
            raise bad_request("The 'schedules' parameter is required.")
        if len(schedules) > MAX_SCHEDULES:
            raise bad_request(f"At most {MAX_SCHEDULES} schedules can be requested at once.")
        start = parse_dtz(pick(body, "startTime"), "startTime")
        end = parse_dtz(pick(body, "endTime"), "endTime")
        if end <= start:
            raise bad_request("endTime must be after startTime.")
        if end - start >= MAX_WINDOW:
            raise bad_request("The requested time duration must be less than 42 days.")
        interval = pick(body, "availabilityViewInterval")
        interval = 30 if interval is None else interval
        if not isinstance(interval, int) or not 5 <= interval <= 1440:
            raise bad_request("availabilityViewInterval must be between 5 and 1440 minutes.")
        domain = organizer.rsplit("@", 1)[-1].lower() if organizer and "@" in organizer else None
        return [
            self._one_schedule(str(s), start, end, interval, zone_name, domain) for s in schedules
        ]

    def _one_schedule(
        self,
        schedule_id: str,
        start: datetime,
        end: datetime,
        interval: int,
        zone_name: str,
        domain: str | None = None,
    ) -> dict[str, Any]:
        user = self.st.find_user(schedule_id)
        if (
            user is None
            and self.st.auto_provision
            and domain
            and schedule_id.lower().endswith("@" + domain)
        ):
            # The sandbox's tenant has every address at the organizer's own domain (people a
            # developer types in exist); other domains are outside it, as in Graph.
            user = self.st.add_user({"mail": schedule_id.strip()})
        if user is None:
            return {
                "scheduleId": schedule_id,
                "availabilityView": "",
                "scheduleItems": [],
                "error": {
                    "@odata.type": "#microsoft.graph.freeBusyError",
                    "message": f"The mailbox '{schedule_id}' could not be found.",
                    "responseCode": "ErrorMailboxNotFound",
                },
            }
        mailbox = str(user["mail"]).lower()
        items: list[tuple[datetime, datetime, str, str | None]] = [
            (e.start, e.end, str(e.wire.get("showAs") or "busy"), e.wire.get("subject"))
            for e in self.st.events.get(mailbox, {}).values()
            if not e.wire.get("isCancelled")
        ]
        items += [(b.start, b.end, b.show_as, b.subject) for b in self.st.busy.get(mailbox, [])]
        items = [i for i in items if i[2] in PRIORITY and i[2] != "free"]
        items = sorted(i for i in items if i[0] < end and i[1] > start)
        step = timedelta(minutes=interval)
        view = []
        for n in range(math.ceil((end - start) / step)):
            lo, hi = start + n * step, min(start + (n + 1) * step, end)
            statuses = [s for (s0, s1, s, _) in items if s0 < hi and s1 > lo]
            view.append(DIGIT[max(statuses, key=PRIORITY.__getitem__, default="free")])
        return {
            "scheduleId": schedule_id,
            "availabilityView": "".join(view),
            "scheduleItems": [
                {
                    "isPrivate": False,
                    "status": status,
                    **({"subject": subject} if subject else {}),
                    "start": dtz(s0, zone_name),
                    "end": dtz(s1, zone_name),
                }
                for (s0, s1, status, subject) in items
            ],
            "workingHours": user.get("workingHours"),
        }


def event_key(event: StoredEvent) -> tuple[str, str]:
    return (event.mailbox, str(event.wire["id"]))
