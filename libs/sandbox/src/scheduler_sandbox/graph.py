"""Fake Microsoft Graph v1.0: the calendar, mail and directory calls we use, on Graph's wire.

- Every `/v1.0` route needs a bearer token (any non-empty one, or the app's `token`); errors
  are OData `{"error": {"code", "message", "innerError"}}`. `/v1.0//users/…` (what msgraph-sdk
  sends without an explicit base URL) works like `/v1.0/users/…`.
- Events: create (with `transactionId` dedupe and a Teams link appended to the body), get,
  list (`$filter`, `$top`, `$skip`), patch, delete, cancel. Internal attendees get a tentative
  copy in their calendars and everyone invited gets the invitation in their inbox.
- `calendar/getSchedule` (camelCase or PascalCase keys, Graph's limits), `sendMail`, the
  directory (`GET /users` with `$filter`, `$search` + `ConsistencyLevel`, `$top`, `$select`).
- Per-mailbox accounting: requests, in flight, peak concurrency; by default the 5th concurrent
  request for one mailbox gets 429 `ApplicationThrottled`, as Graph answers.
- Control: `GET /_sandbox/state`, `POST /_sandbox/reset`, `POST /_sandbox/faults`,
  `POST /_sandbox/busy`, `POST /_sandbox/users`, `POST /_sandbox/config`. Pages for people at `/`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from scheduler_sandbox.graph_calendar import Calendar
from scheduler_sandbox.graph_control import add_control
from scheduler_sandbox.graph_odata import (
    GraphProblem,
    bad_request,
    filter_matches,
    odata_error,
    parse_filter,
    pick,
    preferred_zone,
    search_matches,
)
from scheduler_sandbox.graph_pages import add_pages
from scheduler_sandbox.graph_store import GraphState

FAULT_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
Work = Callable[[Any], Awaitable[Response]]


class CollapseSlashes:
    """Graph tolerates `//` in paths and msgraph-sdk can send it: route as if single."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = {**scope, "path": re.sub(r"/{2,}", "/", scope["path"])}
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def create_app(
    *, token: str | None = None, concurrency_limit: int | None = 4, auto_provision: bool = True
) -> FastAPI:
    app = FastAPI(title="fake Microsoft Graph")
    st = GraphState(token=token, concurrency_limit=concurrency_limit, auto_provision=auto_provision)
    cal = Calendar(st)
    app.state.graph = st
    app.add_middleware(CollapseSlashes)

    @app.exception_handler(GraphProblem)
    async def problem(request: Request, exc: GraphProblem) -> JSONResponse:
        return odata_error(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/v1.0"):
            segment = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            return odata_error(
                request, 400, "BadRequest", f"Resource not found for the segment '{segment}'."
            )
        return JSONResponse({"detail": exc.detail}, exc.status_code)

    def error(
        request: Request, status: int, code: str, message: str, retry_after: str | None
    ) -> JSONResponse:
        headers = {"Retry-After": retry_after} if retry_after else None
        return odata_error(request, status, code, message, headers)

    async def graph_call(request: Request, user: str | None, work: Work) -> Response:
        """Auth, per-mailbox accounting and faults around one Graph request."""
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not bearer or (st.token is not None and bearer != st.token):
            code, text = "InvalidAuthenticationToken", "Access token is empty or invalid."
            return error(request, 401, code, text, None)
        body: Any = None
        if request.method in ("POST", "PATCH") and await request.body():
            try:
                body = json.loads(await request.body())
            except ValueError:
                return error(
                    request, 400, "BadRequest", "Unable to read JSON request payload.", None
                )
        key = st.mailbox_key(user) if user else None
        acc = st.accounting
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "mailbox": key,
            "transactionId": pick(body, "transactionId"),
            "status": None,
        }
        acc.requests.append(entry)
        response: Response | None = None
        if key:
            acc.counts[key] += 1
            acc.in_flight[key] += 1
            acc.max_concurrent[key] = max(acc.max_concurrent[key], acc.in_flight[key])
        try:
            if key and st.concurrency_limit and acc.in_flight[key] > st.concurrency_limit:
                acc.throttled[key] += 1
                message = "Application is over its MailboxConcurrency limit."
                response = error(request, 429, "ApplicationThrottled", message, "1")
                return response
            path = request.url.path
            fault = await st.faults.apply(key, path=path, disconnected=request.is_disconnected)
            if fault is not None and fault.status is not None:
                code = FAULT_CODES.get(fault.status, "ErrorInvalidRequest")
                response = error(request, fault.status, code, "Injected fault", fault.retry_after)
                return response
            try:
                response = await work(body)
            except GraphProblem as exc:
                response = odata_error(request, exc.status, exc.code, exc.message, exc.headers)
            fault = await st.faults.apply(
                key, phase="response", path=path, disconnected=request.is_disconnected
            )
            if fault is not None and fault.status is not None:
                code = FAULT_CODES.get(fault.status, "ErrorInvalidRequest")
                response = error(request, fault.status, code, "Injected fault", fault.retry_after)
            return response
        finally:
            if key:
                acc.in_flight[key] -= 1
            entry["status"] = response.status_code if response is not None else 499

    def route(path: str, methods: list[str], *extra: str) -> Callable[[Any], Any]:
        def register(fn: Any) -> Any:
            for p in (path, *extra):
                app.add_api_route("/v1.0" + p, fn, methods=methods, include_in_schema=False)
            return fn

        return register

    # -- directory ---------------------------------------------------------------------------

    @route("/users", ["GET"])
    async def list_users(request: Request) -> Response:
        async def work(_: Any) -> Response:
            q = request.query_params
            top = _top(q.get("$top"), default=100, maximum=999)
            users = sorted(st.users.values(), key=lambda u: str(u.get("displayName")).lower())
            if q.get("$filter"):
                groups = parse_filter(q["$filter"])
                users = [u for u in users if filter_matches(u, groups)]
            if q.get("$search"):
                if request.headers.get("consistencylevel", "").lower() != "eventual":
                    raise bad_request(
                        "Request with $search query parameter only works through MSGraph with "
                        "a special request header: 'ConsistencyLevel: eventual'",
                        "Request_UnsupportedQuery",
                    )
                users = [u for u in users if search_matches(u, q["$search"])]
            select = [s for s in q.get("$select", "").split(",") if s.strip()] or None
            value = [st.public_user(u, select) for u in users[:top]]
            return JSONResponse({"@odata.context": "$metadata#users", "value": value})

        return await graph_call(request, None, work)

    @route("/users/{user}", ["GET"])
    async def get_user(user: str, request: Request) -> Response:
        async def work(_: Any) -> Response:
            found = st.find_user(user)
            if found is None:
                raise GraphProblem(
                    404, "Request_ResourceNotFound", f"Resource '{user}' does not exist."
                )
            select = [s for s in request.query_params.get("$select", "").split(",") if s] or None
            return JSONResponse(st.public_user(found, select))

        return await graph_call(request, None, work)

    # -- events ------------------------------------------------------------------------------

    @route("/users/{user}/calendar/events", ["POST"], "/users/{user}/events")
    async def create_event(user: str, request: Request) -> Response:
        async def work(body: Any) -> Response:
            event = cal.create(st.mailbox(user), body, str(request.base_url).rstrip("/"))
            return JSONResponse(cal.render(event, preferred_zone(request)), 201)

        return await graph_call(request, user, work)

    @route("/users/{user}/calendar/events", ["GET"], "/users/{user}/events")
    async def list_events(user: str, request: Request) -> Response:
        async def work(_: Any) -> Response:
            q = request.query_params
            events = sorted(st.events.get(st.mailbox(user), {}).values(), key=lambda e: e.start)
            zone_name = preferred_zone(request)
            value = [cal.render(e, zone_name) for e in events]
            if q.get("$filter"):
                groups = parse_filter(q["$filter"])
                value = [v for v in value if filter_matches(v, groups)]
            top, skip = _top(q.get("$top"), default=10, maximum=1000), _top(q.get("$skip"), 0)
            page: dict[str, Any] = {"value": value[skip : skip + top]}
            if skip + top < len(value):
                page["@odata.nextLink"] = str(
                    request.url.include_query_params(**{"$skip": skip + top})
                )
            return JSONResponse(page)

        return await graph_call(request, user, work)

    @route("/users/{user}/events/{event_id}", ["GET"], "/users/{user}/calendar/events/{event_id}")
    async def get_event(user: str, event_id: str, request: Request) -> Response:
        async def work(_: Any) -> Response:
            event = cal.get(st.mailbox(user), event_id)
            return JSONResponse(cal.render(event, preferred_zone(request)))

        return await graph_call(request, user, work)

    @route("/users/{user}/events/{event_id}", ["PATCH"], "/users/{user}/calendar/events/{event_id}")
    async def patch_event(user: str, event_id: str, request: Request) -> Response:
        async def work(body: Any) -> Response:
            event = cal.patch(st.mailbox(user), event_id, body)
            return JSONResponse(cal.render(event, preferred_zone(request)))

        return await graph_call(request, user, work)

    @route(
        "/users/{user}/events/{event_id}", ["DELETE"], "/users/{user}/calendar/events/{event_id}"
    )
    async def delete_event(user: str, event_id: str, request: Request) -> Response:
        async def work(_: Any) -> Response:
            cal.delete(st.mailbox(user), event_id)
            return Response(status_code=204)

        return await graph_call(request, user, work)

    @route(
        "/users/{user}/events/{event_id}/cancel",
        ["POST"],
        "/users/{user}/calendar/events/{event_id}/cancel",
    )
    async def cancel_event(user: str, event_id: str, request: Request) -> Response:
        async def work(body: Any) -> Response:
            cal.cancel(st.mailbox(user), event_id, body)
            return Response(status_code=202)

        return await graph_call(request, user, work)

    @route("/users/{user}/calendar/getSchedule", ["POST"])
    async def get_schedule(user: str, request: Request) -> Response:
        async def work(body: Any) -> Response:
            organizer = st.mailbox(user)
            value = cal.get_schedule(body, preferred_zone(request), organizer)
            context = "$metadata#Collection(microsoft.graph.scheduleInformation)"
            return JSONResponse({"@odata.context": context, "value": value})

        return await graph_call(request, user, work)

    @route("/users/{user}/sendMail", ["POST"])
    async def send_mail(user: str, request: Request) -> Response:
        async def work(body: Any) -> Response:
            st.send_mail(st.mailbox(user), body)
            return Response(status_code=202)

        return await graph_call(request, user, work)

    @app.api_route(
        "/v1.0/{rest:path}",
        methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        include_in_schema=False,
    )
    async def unknown(rest: str, request: Request) -> Response:
        segment = rest.rstrip("/").rsplit("/", 1)[-1]
        return odata_error(
            request, 400, "BadRequest", f"Resource not found for the segment '{segment}'."
        )

    add_control(app, st, cal)
    add_pages(app, st)
    return app


def _top(raw: str | None, default: int, maximum: int | None = None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid value '{raw}' for a paging parameter.", "BadRequest") from exc
    if value < 0 or (maximum is not None and value > maximum):
        raise bad_request(f"Invalid page size specified: '{raw}'.", "Request_BadRequest")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(prog="sandbox-graph")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--token", default=None, help="accept only this bearer token")
    parser.add_argument(
        "--no-throttle", action="store_true", help="allow more than 4 concurrent per mailbox"
    )
    args = parser.parse_args()
    app = create_app(token=args.token, concurrency_limit=None if args.no_throttle else 4)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
