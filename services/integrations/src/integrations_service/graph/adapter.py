"""The Microsoft Graph adapter: calendar events, free/busy, mail and the directory, through
msgraph-sdk request builders only, with small typed values in and out.

Every Graph call that touches a mailbox holds one of that mailbox's slots (`MailboxLimiter`)
for the call's whole life, SDK retries included; getSchedule counts against the organizer's
mailbox (the one in the URL), as Graph counts it. Directory searches touch no mailbox and take
no slot. Each call also has an overall deadline, so a long `Retry-After` honoured by the SDK's
retry handler cannot hold a slot for minutes. Each call is counted and timed by operation
(metering.py).
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.location import Location
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.online_meeting_provider_type import OnlineMeetingProviderType
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)
from msgraph.generated.users.item.events.item.cancel.cancel_post_request_body import (
    CancelPostRequestBody,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from servicekit.metrics import record_external

from integrations_service.graph import metering
from integrations_service.graph.client import GraphClient
from integrations_service.graph.errors import GraphError, translate
from integrations_service.graph.limiter import MailboxLimiter

T = TypeVar("T")
BusyStatus = Literal["busy", "tentative", "oof", "workingElsewhere", "unknown"]
MAX_SCHEDULES = 20  # Graph's limit per getSchedule call
MAX_WINDOW = timedelta(days=41)  # Graph wants windows under 42 days
TEAMS_RULE = "________________"  # Exchange's separator line before the Teams blob
USER_FIELDS = ["id", "displayName", "mail", "userPrincipalName", "jobTitle"]


@dataclass(frozen=True)
class EventSpec:
    subject: str
    body_html: str
    start: datetime  # aware
    end: datetime
    attendees: list[tuple[str, str | None]] = field(default_factory=list)  # (email, name)
    online_meeting: bool = True
    location: str | None = None


@dataclass(frozen=True)
class GraphEvent:
    id: str
    join_url: str | None
    ical_uid: str | None
    web_link: str | None
    start: datetime
    end: datetime
    is_cancelled: bool
    body_html: str | None
    transaction_id: str | None = None


@dataclass(frozen=True)
class BusyInterval:
    start: datetime
    end: datetime
    status: BusyStatus


@dataclass(frozen=True)
class ScheduleResult:
    """Busy time per mailbox (lowercase); mailboxes Graph could not read are in `errors`
    (mailbox → Graph's responseCode) and absent from `busy`."""

    busy: dict[str, list[BusyInterval]]
    errors: dict[str, str]


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class MailSpec:
    to: list[tuple[str, str | None]]
    subject: str
    body_html: str
    cc: list[tuple[str, str | None]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    display_name: str | None
    mail: str | None
    job_title: str | None


_Chunk = tuple[dict[str, list[BusyInterval]], dict[str, str]]


class GraphAdapter:
    def __init__(
        self,
        client: GraphClient,
        limiter: MailboxLimiter,
        *,
        cache_seconds: float = 30.0,
        call_deadline_seconds: float = 60.0,
        schedule_concurrency: int = 4,
    ) -> None:
        self._client = client
        self._sdk = client.sdk
        self._limiter = limiter
        self._cache_seconds = cache_seconds
        self._deadline = call_deadline_seconds
        self._schedule_concurrency = schedule_concurrency
        self._cache: dict[tuple[object, ...], tuple[float, _Chunk]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self, operation: str, mailbox: str | None, call: Callable[[], Awaitable[T]]
    ) -> T:
        """One Graph HTTP call (with the SDK's retries): slot, deadline, errors → GraphError."""
        if mailbox is None:
            return await self._metered(operation, call)
        async with self._limiter.slot(mailbox):
            return await self._metered(operation, call)

    async def _metered(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        began = time.perf_counter()
        try:
            with metering.operation(operation):
                result = await self._bounded(call)
        except GraphError as exc:
            record_external(metering.SYSTEM, operation, exc.status, time.perf_counter() - began)
            raise
        record_external(metering.SYSTEM, operation, 200, time.perf_counter() - began)
        return result

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._deadline):
                return await call()
        except GraphError:
            raise
        except TimeoutError as exc:
            message = f"no answer within {self._deadline:.0f} s, retries included"
            raise GraphError(None, "timeout", message) from exc
        except Exception as exc:
            raise translate(exc) from exc

    # -- events ------------------------------------------------------------------------------

    async def create_event(self, mailbox: str, spec: EventSpec, transaction_id: str) -> GraphEvent:
        """Create the event; a retry with the same `transaction_id` gets the original back
        from Graph instead of a duplicate (keep our own record too: the window is unknown)."""
        event = Event(
            subject=spec.subject,
            body=ItemBody(content_type=BodyType.Html, content=spec.body_html),
            start=_dtz(spec.start),
            end=_dtz(spec.end),
            attendees=_attendees(spec.attendees),
            is_online_meeting=spec.online_meeting,
            online_meeting_provider=(
                OnlineMeetingProviderType.TeamsForBusiness if spec.online_meeting else None
            ),
            transaction_id=transaction_id,
            location=Location(display_name=spec.location) if spec.location else None,
        )
        events = self._sdk.users.by_user_id(mailbox).calendar.events
        created = await self._call("create_event", mailbox, lambda: events.post(event))
        return _event(created)

    async def get_event(self, mailbox: str, event_id: str) -> GraphEvent | None:
        """The event, or None when Graph no longer has it (deleted in Outlook)."""
        item = self._sdk.users.by_user_id(mailbox).events.by_event_id(event_id)
        try:
            found = await self._call("get_event", mailbox, item.get)
        except GraphError as exc:
            if exc.not_found:
                return None
            raise
        return _event(found)

    async def update_event(self, mailbox: str, event_id: str, spec: EventSpec) -> GraphEvent:
        """Move or retitle the event, keeping its Teams meeting.

        Replacing an online meeting's body drops the Teams blob Exchange appended to it, and
        with it the join link in the attendees' copies. So the current body is read first and
        its Teams part re-appended to the new text; if that part cannot be found, the body is
        left as it is rather than risk losing the link."""
        item = self._sdk.users.by_user_id(mailbox).events.by_event_id(event_id)
        current = _event(await self._call("get_event", mailbox, item.get))
        patch = Event(
            subject=spec.subject,
            start=_dtz(spec.start),
            end=_dtz(spec.end),
            attendees=_attendees(spec.attendees),
        )
        if spec.location is not None:
            patch.location = Location(display_name=spec.location)
        if current.join_url:
            blob = teams_part(current.body_html or "", current.join_url)
            if blob is not None:
                patch.body = ItemBody(content_type=BodyType.Html, content=spec.body_html + blob)
        else:
            patch.body = ItemBody(content_type=BodyType.Html, content=spec.body_html)
            if spec.online_meeting:  # Graph adds the meeting (and its blob) itself
                patch.is_online_meeting = True
                patch.online_meeting_provider = OnlineMeetingProviderType.TeamsForBusiness
        updated = await self._call("update_event", mailbox, lambda: item.patch(patch))
        return _event(updated)

    async def cancel_event(self, mailbox: str, event_id: str, comment: str) -> bool:
        """Cancel as organizer (attendees get the cancellation). False: it was already gone."""
        cancel = self._sdk.users.by_user_id(mailbox).events.by_event_id(event_id).cancel
        try:
            await self._call(
                "cancel_event",
                mailbox,
                lambda: cancel.post(CancelPostRequestBody(comment=comment)),
            )
        except GraphError as exc:
            if exc.not_found:
                return False
            raise
        return True

    # -- free/busy ---------------------------------------------------------------------------

    async def get_schedule(
        self,
        mailboxes: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        organizer_mailbox: str,
        interval_minutes: int = 15,
        use_cache: bool = True,
    ) -> ScheduleResult:
        """Busy intervals (every non-free status; the caller decides what blocks a slot).

        Split into calls of ≤20 mailboxes and windows under 42 days, run a few at a time,
        merged; each call's answer is cached for `cache_seconds`."""
        wanted = list(dict.fromkeys(m.strip().lower() for m in mailboxes if m.strip()))
        if not wanted or end <= start:
            return ScheduleResult(busy={m: [] for m in wanted}, errors={})
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        windows = []
        lo = start
        while lo < end:
            windows.append((lo, min(lo + MAX_WINDOW, end)))
            lo = windows[-1][1]
        groups = [wanted[i : i + MAX_SCHEDULES] for i in range(0, len(wanted), MAX_SCHEDULES)]
        gate = asyncio.Semaphore(self._schedule_concurrency)

        async def one(group: list[str], window: tuple[datetime, datetime]) -> _Chunk:
            async with gate:
                return await self._schedule_chunk(
                    organizer_mailbox, group, window, interval_minutes, use_cache
                )

        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one(g, w)) for g in groups for w in windows]
        except* GraphError as group_error:
            raise group_error.exceptions[0] from None
        busy: dict[str, set[BusyInterval]] = {m: set() for m in wanted}
        errors: dict[str, str] = {}
        for task in tasks:
            chunk_busy, chunk_errors = task.result()
            errors.update(chunk_errors)
            for mailbox, intervals in chunk_busy.items():
                busy.setdefault(mailbox, set()).update(intervals)
        return ScheduleResult(
            busy={
                m: sorted(v, key=lambda b: (b.start, b.end))
                for m, v in busy.items()
                if m not in errors
            },
            errors=errors,
        )

    async def _schedule_chunk(
        self,
        organizer: str,
        mailboxes: list[str],
        window: tuple[datetime, datetime],
        interval: int,
        use_cache: bool,
    ) -> _Chunk:
        key = (tuple(mailboxes), window, interval)
        now = time.monotonic()
        cached = self._cache.get(key)
        if use_cache and cached and cached[0] > now:
            return cached[1]
        body = GetSchedulePostRequestBody(
            schedules=mailboxes,
            start_time=_dtz(window[0]),
            end_time=_dtz(window[1]),
            availability_view_interval=interval,
        )
        builder = self._sdk.users.by_user_id(organizer).calendar.get_schedule
        request = builder.to_post_request_information(body)
        # The SDK builds, authenticates, retries and maps errors as for any call; only the
        # answer is read as plain JSON: kiota's model parsing of a month of schedule items cost
        # over a second per call (profiled), where json.loads takes milliseconds.
        send: Callable[..., Awaitable[bytes | None]] = builder.request_adapter.send_primitive_async
        raw = await self._call(
            "get_schedule", organizer, lambda: send(request, "bytes", {"XXX": ODataError})
        )
        answer: dict[str, Any] = json.loads(raw) if raw else {}
        busy: dict[str, list[BusyInterval]] = {}
        errors: dict[str, str] = {}
        for info in answer.get("value") or []:
            mailbox = str(info.get("scheduleId") or "").lower()
            error = info.get("error")
            if error:
                errors[mailbox] = str(error.get("responseCode") or error.get("message") or "error")
                continue
            intervals = busy.setdefault(mailbox, [])
            for item in info.get("scheduleItems") or []:
                status = str(item.get("status") or "busy")
                start, end = item.get("start"), item.get("end")
                if status == "free" or not start or not end:
                    continue
                intervals.append(
                    BusyInterval(_parse_wire(start), _parse_wire(end), status)  # type: ignore[arg-type]
                )
        for mailbox in mailboxes:
            if mailbox not in busy and mailbox not in errors:
                errors[mailbox] = "NotReturned"
        chunk = (busy, errors)
        if self._cache_seconds > 0:
            self._remember(key, chunk, now)
        return chunk

    def _remember(self, key: tuple[object, ...], chunk: _Chunk, now: float) -> None:
        if len(self._cache) >= 1024:
            for k in [k for k, (until, _) in self._cache.items() if until <= now]:
                del self._cache[k]
            while len(self._cache) >= 1024:
                del self._cache[next(iter(self._cache))]  # the oldest insertion
        self._cache[key] = (now + self._cache_seconds, chunk)

    # -- mail and directory ------------------------------------------------------------------

    async def send_mail(self, mailbox: str, spec: MailSpec, *, save_to_sent: bool = True) -> None:
        """Send as `mailbox`. Graph takes ≤ ~3 MB of attachments inline in one request."""
        message = Message(
            subject=spec.subject,
            body=ItemBody(content_type=BodyType.Html, content=spec.body_html),
            to_recipients=_recipients(spec.to),
            cc_recipients=_recipients(spec.cc) or None,
            attachments=[
                FileAttachment(name=a.name, content_type=a.content_type, content_bytes=a.content)
                for a in spec.attachments
            ]
            or None,
        )
        body = SendMailPostRequestBody(message=message, save_to_sent_items=save_to_sent)
        send = self._sdk.users.by_user_id(mailbox).send_mail
        await self._call("send_mail", mailbox, lambda: send.post(body))

    async def search_users(self, q: str, limit: int = 10) -> list[DirectoryUser]:
        """People whose name or address starts with `q`.

        `$filter` with `startswith`, not `$search`: it needs no `ConsistencyLevel: eventual`
        (advanced queries, an index that lags behind new hires) and its prefix match is the
        predictable "type the first letters" behaviour a picker wants."""
        params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            top=max(1, min(limit, 999)), select=USER_FIELDS
        )
        term = q.strip()
        if term:
            literal = term.replace("'", "''")  # OData string literal escaping
            params.filter = " or ".join(
                f"startswith({f},'{literal}')"
                for f in ("displayName", "givenName", "surname", "mail", "userPrincipalName")
            )
        config = RequestConfiguration(query_parameters=params)
        page = await self._call(
            "search_users", None, lambda: self._sdk.users.get(request_configuration=config)
        )
        return [
            DirectoryUser(
                id=u.id or "", display_name=u.display_name, mail=u.mail, job_title=u.job_title
            )
            for u in (page.value if page else None) or []
            if u.id
        ]


# -- conversions -----------------------------------------------------------------------------


def teams_part(body_html: str, join_url: str) -> str | None:
    """The Teams blob Exchange appended to an online meeting's body, up to `</body>`.

    It starts at the `<div>` holding the separator line that precedes the join link."""
    at = body_html.find(join_url)
    if at < 0:
        at = body_html.find(html.escape(join_url))
    if at < 0:
        return None
    rule = body_html.rfind(TEAMS_RULE, 0, at)
    if rule < 0:
        return None
    begin = body_html.rfind("<div", 0, rule)
    begin = rule if begin < 0 else begin
    stop = body_html.lower().rfind("</body>")
    return body_html[begin : stop if stop > at else len(body_html)]


def _dtz(moment: datetime) -> DateTimeTimeZone:
    if moment.tzinfo is None:
        raise ValueError("Graph times must be timezone-aware")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return DateTimeTimeZone(date_time=utc.isoformat(timespec="seconds"), time_zone="UTC")


def _parse_wire(value: dict[str, str]) -> datetime:
    """A Graph `{dateTime, timeZone}` from the wire (no offset in dateTime; zone separate)."""
    return _parse_dtz(
        DateTimeTimeZone(date_time=value.get("dateTime"), time_zone=value.get("timeZone"))
    )


def _parse_dtz(value: DateTimeTimeZone | None) -> datetime:
    if value is None or not value.date_time:
        raise GraphError(None, "bad_response", "Graph sent an event without start or end")
    moment = datetime.fromisoformat(value.date_time)
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(value.time_zone or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            # We never send `Prefer: outlook.timezone`, so Graph answers in UTC.
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _attendees(people: list[tuple[str, str | None]]) -> list[Attendee]:
    return [
        Attendee(email_address=EmailAddress(address=a, name=n or a), type=AttendeeType.Required)
        for a, n in people
    ]


def _recipients(people: list[tuple[str, str | None]]) -> list[Recipient]:
    return [Recipient(email_address=EmailAddress(address=a, name=n or a)) for a, n in people]


def _event(event: Event | None) -> GraphEvent:
    if event is None or not event.id:
        raise GraphError(None, "bad_response", "Graph answered without an event")
    return GraphEvent(
        id=event.id,
        join_url=event.online_meeting.join_url if event.online_meeting else None,
        ical_uid=event.i_cal_u_id,
        web_link=event.web_link,
        start=_parse_dtz(event.start),
        end=_parse_dtz(event.end),
        is_cancelled=bool(event.is_cancelled),
        body_html=event.body.content if event.body else None,
        transaction_id=event.transaction_id,
    )
