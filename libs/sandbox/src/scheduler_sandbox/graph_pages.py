"""The fake Graph's pages for people: mailboxes, an inbox with calendar and sent items, one
message (its HTML body in a sandboxed frame, so the candidate's booking link can be clicked)
and its attachments. Everything is escaped except the message body inside the frame."""

from __future__ import annotations

import base64
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from scheduler_sandbox.graph_odata import graph_time
from scheduler_sandbox.graph_store import GraphState

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
    "table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}"
    "td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left}"
    "iframe{width:100%;height:32rem;border:1px solid #ccc}.muted{color:#777}"
)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class='muted'>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _who(message: dict[str, Any], key: str) -> str:
    value = message.get(key)
    people = [value] if isinstance(value, dict) else (value or [])
    return ", ".join(escape(str(p["emailAddress"]["address"])) for p in people)


def add_pages(app: FastAPI, st: GraphState) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        rows = []
        for mailbox in st.known_mailboxes():
            user = st.find_user(mailbox)
            link = f"<a href='/mailboxes/{quote(mailbox)}'>{escape(mailbox)}</a>"
            rows.append(
                [
                    link,
                    escape(str(user["displayName"]))
                    if user
                    else "<span class=muted>external</span>",
                    escape(str((user or {}).get("jobTitle") or "")),
                    str(len(st.inbox.get(mailbox, []))),
                    str(len(st.events.get(mailbox, {}))),
                ]
            )
        table = _table(["Mailbox", "Name", "Title", "Inbox", "Events"], rows, "No mailboxes.")
        return _page("Fake Microsoft 365", f"<h1>Fake Microsoft 365 mailboxes</h1>{table}")

    @app.get("/mailboxes/{mailbox}", response_class=HTMLResponse)
    async def mailbox_page(mailbox: str) -> HTMLResponse:
        mailbox = mailbox.lower()
        base = f"/mailboxes/{quote(mailbox)}/messages/"

        def rows(messages: list[dict[str, Any]], who: str) -> list[list[str]]:
            return [
                [
                    f"<a href='{base}{quote(m['id'], safe='')}'>"
                    f"{escape(m['subject'] or '(no subject)')}</a>",
                    _who(m, who),
                    escape(m["receivedDateTime"]),
                    "📎" if m["attachments"] else "",
                ]
                for m in reversed(messages)
            ]

        events = sorted(st.events.get(mailbox, {}).values(), key=lambda e: e.start)
        event_rows = [
            [
                f"<span id='event-{escape(e.wire['id'])}'>{escape(e.wire['subject'])}</span>",
                escape(graph_time(e.start)[:16])
                + " to "
                + escape(graph_time(e.end)[11:16])
                + " UTC",
                escape(str(e.wire.get("showAs"))),
                "cancelled" if e.wire.get("isCancelled") else "",
                (
                    f"<a href='{escape(e.wire['onlineMeeting']['joinUrl'])}'>Teams</a>"
                    if e.wire.get("onlineMeeting")
                    else ""
                ),
            ]
            for e in events
        ]
        busy_rows = [
            [escape(graph_time(b.start)[:16]), escape(graph_time(b.end)[:16]), escape(b.show_as)]
            for b in st.busy.get(mailbox, [])
        ]
        body = (
            f"<p><a href='/'>← all mailboxes</a></p><h1>{escape(mailbox)}</h1>"
            "<h2>Inbox</h2>"
            + _table(
                ["Subject", "From", "Received", ""],
                rows(st.inbox.get(mailbox, []), "from"),
                "No messages.",
            )
            + "<h2>Calendar</h2>"
            + _table(["Subject", "When", "Show as", "", ""], event_rows, "No events.")
            + _table(["Busy from", "To", "Show as"], busy_rows, "No seeded busy time.")
            + "<h2>Sent items</h2>"
            + _table(
                ["Subject", "To", "Sent", ""],
                rows(st.sent.get(mailbox, []), "toRecipients"),
                "Nothing sent.",
            )
        )
        return _page(mailbox, body)

    @app.get("/mailboxes/{mailbox}/messages/{message_id}", response_class=HTMLResponse)
    async def message_page(mailbox: str, message_id: str) -> HTMLResponse:
        message = st.find_message(mailbox.lower(), message_id)
        if message is None:
            return HTMLResponse("<p>No such message.</p>", 404)
        content = str(message["body"]["content"])
        if message["body"]["contentType"].lower() != "html":
            content = f"<pre style='white-space:pre-wrap'>{escape(content)}</pre>"
        # Links in the mail open in the whole window, so the booking page works as in Outlook.
        srcdoc = escape("<base target='_top'>" + content, quote=True)
        base = f"/mailboxes/{quote(mailbox.lower())}/messages/{quote(message_id, safe='')}"
        attachments = [
            [
                f"<a href='{base}/attachments/{quote(a['id'], safe='')}'>{escape(a['name'])}</a>",
                escape(a["contentType"]),
                str(a["size"]),
            ]
            for a in message["attachments"]
        ]
        body = (
            f"<p><a href='/mailboxes/{quote(mailbox.lower())}'>← {escape(mailbox)}</a></p>"
            f"<h1>{escape(message['subject'] or '(no subject)')}</h1>"
            f"<p>From: {_who(message, 'from')}<br>To: {_who(message, 'toRecipients')}<br>"
            f"Cc: {_who(message, 'ccRecipients')}<br>Date: {escape(message['sentDateTime'])}</p>"
            + _table(["Attachment", "Type", "Bytes"], attachments, "No attachments.")
            + "<iframe sandbox='allow-popups allow-popups-to-escape-sandbox "
            f'allow-top-navigation-by-user-activation\' srcdoc="{srcdoc}"></iframe>'
        )
        return _page(str(message["subject"]), body)

    @app.get("/mailboxes/{mailbox}/messages/{message_id}/attachments/{attachment_id}")
    async def attachment(mailbox: str, message_id: str, attachment_id: str) -> Response:
        message = st.find_message(mailbox.lower(), message_id)
        for a in (message or {}).get("attachments", []):
            if a["id"] == attachment_id:
                filename = quote(a["name"])
                return Response(
                    base64.b64decode(a["contentBytes"]),
                    media_type=a["contentType"],
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
                )
        return Response("No such attachment.", 404)

    @app.get("/teams/meetup-join/{meeting_id}", response_class=HTMLResponse)
    async def teams(meeting_id: str) -> HTMLResponse:
        return _page(
            "Teams meeting",
            f"<h1>Fake Teams meeting {escape(meeting_id)}</h1><p>You would join here.</p>",
        )
