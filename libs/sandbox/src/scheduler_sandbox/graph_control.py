"""The fake Graph's control API, for tests and `make up`: state, reset, faults, seeding busy
time and directory users, and runtime switches (token, concurrency limit)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from scheduler_sandbox.graph_calendar import Calendar
from scheduler_sandbox.graph_odata import parse_instant
from scheduler_sandbox.graph_store import BusyBlock, GraphState


def add_control(app: FastAPI, st: GraphState, cal: Calendar) -> None:
    @app.get("/_sandbox/state")
    async def state() -> dict[str, Any]:
        acc = st.accounting
        return {
            "events": {
                mailbox: [
                    {
                        **cal.render(e),
                        "_sandbox": {
                            "cancellationComment": e.cancellation_comment,
                            "copyOf": list(e.copy_of) if e.copy_of else None,
                        },
                    }
                    for e in sorted(events.values(), key=lambda e: e.start)
                ]
                for mailbox, events in st.events.items()
                if events
            },
            "mail": {
                mailbox: {"inbox": st.inbox.get(mailbox, []), "sent": st.sent.get(mailbox, [])}
                for mailbox in sorted(set(st.inbox) | set(st.sent))
            },
            "busy": {
                mailbox: [
                    {
                        "start": b.start.isoformat(),
                        "end": b.end.isoformat(),
                        "showAs": b.show_as,
                        "subject": b.subject,
                    }
                    for b in blocks
                ]
                for mailbox, blocks in st.busy.items()
                if blocks
            },
            "directory": list(st.users.values()),
            "requestCounts": dict(acc.counts),
            "inFlight": {k: v for k, v in acc.in_flight.items() if v},
            "maxConcurrent": dict(acc.max_concurrent),
            "throttled": dict(acc.throttled),
            "requests": acc.requests,
            "faults": st.faults.state(),
            "config": {
                "concurrencyLimit": st.concurrency_limit,
                "autoProvision": st.auto_provision,
            },
        }

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        st.reset()
        return {"status": "reset"}

    @app.post("/_sandbox/faults")
    async def faults(request: Request) -> dict[str, Any]:
        """`{"status": 429, "retryAfter": "1", "count": 2, "key": "mailbox", "latencyMs": …,
        "hang": true, "phase": "response", "path": "getSchedule"}`; `{"clear": true}` clears."""
        spec = await request.json()
        if spec.get("clear"):
            st.faults.clear()
        else:
            if spec.get("key"):
                spec = {**spec, "key": st.mailbox_key(str(spec["key"]))}
            st.faults.add(spec)
        return {"faults": st.faults.state()}

    @app.post("/_sandbox/busy")
    async def busy(request: Request) -> dict[str, Any]:
        """`{mailbox, start, end, showAs?, subject?}` or `{"blocks": [...]}`."""
        spec = await request.json()
        blocks = spec.get("blocks", [spec]) if isinstance(spec, dict) else spec
        for b in blocks:
            mailbox = st.mailbox_key(str(b["mailbox"]))
            if st.find_user(mailbox) is None:
                st.add_user({"mail": str(b["mailbox"])})
            show_as = str(b.get("showAs") or "busy")
            start, end = parse_instant(b["start"], "start"), parse_instant(b["end"], "end")
            st.busy[mailbox].append(BusyBlock(start, end, show_as, b.get("subject")))
        return {"busy": sum(len(v) for v in st.busy.values())}

    @app.post("/_sandbox/users")
    async def users(request: Request) -> dict[str, Any]:
        """One user object, a list of them, or `{"users": [...]}`; `mail` is required."""
        spec = await request.json()
        items = spec.get("users", [spec]) if isinstance(spec, dict) else spec
        return {"users": [st.add_user(u) for u in items]}

    @app.post("/_sandbox/config")
    async def config(request: Request) -> dict[str, Any]:
        """`{"concurrencyLimit": 4 | null, "token": "…" | null, "autoProvision": bool}`."""
        spec = await request.json()
        if "concurrencyLimit" in spec:
            st.concurrency_limit = spec["concurrencyLimit"]
        if "token" in spec:
            st.token = spec["token"]
        if "autoProvision" in spec:
            st.auto_provision = bool(spec["autoProvision"])
        return {"concurrencyLimit": st.concurrency_limit, "autoProvision": st.auto_provision}
