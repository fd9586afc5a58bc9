"""`GET /api/integrations/directory?q=`: people in the org's Microsoft 365 directory, for the
coordinator's interviewer picker (any member of the org)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from servicekit.errors import AppError
from servicekit.identity import OrgIdentity

from integrations_service.graph.errors import GraphError

router = APIRouter(prefix="/api/integrations/directory", tags=["directory"])


class Person(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str
    display_name: str | None
    email: str | None
    job_title: str | None


class People(BaseModel):
    items: list[Person]


@router.get("", response_model=People, response_model_by_alias=True)
async def search(
    identity: OrgIdentity,
    request: Request,
    q: str = Query(min_length=1, max_length=100),
    limit: int = Query(default=10, ge=1, le=50),
) -> People:
    assert identity.org_id is not None
    async with request.app.state.sessions() as session:  # not held while Graph answers
        conns = await request.app.state.connections.for_org(session, identity.org_id)
    if not conns.graph.has_credentials:
        raise AppError(
            "Microsoft Graph is not connected for this organization.",
            status=409,
            code="graph_not_configured",
        )
    try:
        users = await request.app.state.clients.graph(conns.graph).search_users(q.strip(), limit)
    except GraphError as exc:
        raise AppError(
            f"The directory did not answer: {exc.message}",
            status=503 if exc.retryable else 502,
            code="graph_unavailable" if exc.retryable else "graph_error",
        ) from exc
    return People(
        items=[
            Person(id=u.id, display_name=u.display_name, email=u.mail, job_title=u.job_title)
            for u in users
        ]
    )
