"""Metrics of what integrations does: Graph and iCIMS call outcomes and throttling (the real
adapters against the sandbox fakes), job attempts by kind, webhook processing outcomes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integrations_service.graph.adapter import EventSpec, GraphAdapter
from integrations_service.graph.client import build_graph_client
from integrations_service.graph.limiter import MailboxLimiter
from integrations_service.icims.client import IcimsClient, IcimsError
from integrations_service.jobs import repository
from integrations_service.jobs.repository import Job
from integrations_service.jobs.runner import Completion, JobFailed, JobRunner
from integrations_service.webhooks.process import Delivery, process_batch
from prometheus_client import REGISTRY
from scheduler_contracts import Envelope
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.icims import create_app as create_icims
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine, unit_of_work
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .conftest import add, due_now

ORGANIZER = "scheduling@example.com"
START = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """The change of some samples between `Delta(...)` and `.now()`."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def now(self) -> list[float]:
        return [
            value(name, **labels) - before
            for (name, labels), before in zip(self.samples, self.before, strict=True)
        ]


# -- Graph -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture
async def fake_graph(graph_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=graph_url, timeout=10) as control:
        await control.post("/_sandbox/reset")
        yield control
        await control.post("/_sandbox/faults", json={"clear": True})


@pytest.fixture
async def engine(integrations_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(integrations_db, pool_size=5, application_name="metrics-tests")
    yield engine
    await engine.dispose()


@pytest.fixture
async def graph(graph_url: str, engine: AsyncEngine) -> AsyncIterator[GraphAdapter]:
    client = build_graph_client(base_url=graph_url, static_token="sandbox", max_retries=3)
    adapter = GraphAdapter(client, MailboxLimiter(engine))
    yield adapter
    await adapter.aclose()


def spec() -> EventSpec:
    return EventSpec(
        subject="Interview",
        body_html="<p>Interview</p>",
        start=START,
        end=START + timedelta(hours=1),
        attendees=[("avery.chen@example.com", "Avery Chen")],
    )


async def test_a_graph_429_is_counted_as_throttling_with_its_retry_after(
    graph: GraphAdapter, fake_graph: httpx.AsyncClient
) -> None:
    await fake_graph.post(
        "/_sandbox/faults", json={"status": 429, "retryAfter": "1", "count": 1, "key": ORGANIZER}
    )
    delta = Delta(
        ("external_throttled_total", {"system": "graph", "operation": "create_event"}),
        ("external_retry_after_seconds_count", {"system": "graph"}),
        ("external_retry_after_seconds_sum", {"system": "graph"}),
        (
            "external_requests_total",
            {"system": "graph", "operation": "create_event", "status_class": "2xx"},
        ),
    )
    await graph.create_event(ORGANIZER, spec(), f"metrics-{uuid.uuid4().hex}")
    # One 429 (waited out by the SDK's retry handler, so the call itself succeeded).
    assert delta.now() == [1, 1, 1.0, 1]


async def test_graph_call_outcomes_are_counted_by_operation_and_status_class(
    graph: GraphAdapter, fake_graph: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    delta = Delta(
        (
            "external_requests_total",
            {"system": "graph", "operation": "get_event", "status_class": "4xx"},
        ),
        (
            "external_requests_total",
            {"system": "graph", "operation": "search_users", "status_class": "no_answer"},
        ),
        ("external_request_duration_seconds_count", {"system": "graph", "operation": "get_event"}),
    )
    assert await graph.get_event(ORGANIZER, "AAMkAGgone=") is None  # Graph answered 404
    nowhere = GraphAdapter(
        build_graph_client(base_url="http://127.0.0.1:9", static_token="x", max_retries=0),
        MailboxLimiter(engine),
    )
    try:
        with pytest.raises(Exception, match="unreachable"):
            await nowhere.search_users("a")
    finally:
        await nowhere.aclose()
    assert delta.now() == [1, 1, 1]


# -- iCIMS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def icims_url() -> Iterator[str]:
    with serve_in_thread(create_icims()) as url:
        yield url


@pytest.fixture
async def icims(icims_url: str) -> AsyncIterator[tuple[IcimsClient, httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=icims_url, timeout=10) as control,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await control.post("/_sandbox/reset")
        client = IcimsClient(
            base_url=icims_url,
            token_url=f"{icims_url}/oauth/token",
            client_id="scheduler",
            client_secret="secret",
            http=http,
        )
        yield client, control
        await control.post("/_sandbox/faults", json={"clear": True})


async def test_an_icims_429_is_counted_as_throttling_with_its_retry_after(icims) -> None:
    client, control = icims
    await control.post("/_sandbox/faults", json={"status": 429, "retryAfter": "7", "count": 1})
    delta = Delta(
        ("external_throttled_total", {"system": "icims", "operation": "get_workflow"}),
        ("external_retry_after_seconds_sum", {"system": "icims"}),
        (
            "external_requests_total",
            {"system": "icims", "operation": "get_workflow", "status_class": "4xx"},
        ),
        (
            "external_requests_total",
            {"system": "icims", "operation": "token", "status_class": "2xx"},
        ),
    )
    with pytest.raises(IcimsError) as caught:
        await client.get_workflow("1234", "W1")
    assert caught.value.status == 429 and caught.value.retry_after == 7
    assert delta.now() == [1, 7.0, 1, 1]


async def test_a_call_our_own_icims_budget_refuses_is_counted_as_refused(icims) -> None:
    _, control = icims

    async def spent(customer_id: str) -> None:
        raise IcimsError(429, "daily budget spent", retry_after=3600)

    async with httpx.AsyncClient() as http:
        client = IcimsClient(
            base_url=str(control.base_url),
            token_url=f"{control.base_url}oauth/token",
            client_id="scheduler",
            client_secret="secret",
            http=http,
            budget=spent,
        )
        delta = Delta(
            (
                "external_requests_total",
                {"system": "icims", "operation": "add_note", "status_class": "refused"},
            ),
            ("external_throttled_total", {"system": "icims", "operation": "add_note"}),
        )
        with pytest.raises(IcimsError):
            await client.add_note("1234", "W1", "notes", "hello")
    assert delta.now() == [1, 0]  # iCIMS was never asked, so it throttled nothing


# -- jobs and webhook processing ---------------------------------------------------------------


class Kind:
    def __init__(self, error: JobFailed | None = None) -> None:
        self.error = error

    async def run(self, job: Job) -> Completion:
        if self.error is not None:
            raise self.error

        async def complete(session: AsyncSession) -> Sequence[Envelope]:
            return []

        return complete

    async def failed(
        self, session: AsyncSession, job: Job, error: JobFailed, *, final: bool
    ) -> Sequence[Envelope]:
        return []


async def test_job_attempts_are_counted_by_kind_and_outcome(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tag = uuid.uuid4().hex[:8]
    kinds = {
        f"ok-{tag}": Kind(),
        f"flaky-{tag}": Kind(JobFailed("Graph 503", code="graph_unavailable")),
        f"broken-{tag}": Kind(JobFailed("bad mailbox", retryable=False)),
    }
    async with unit_of_work(sessions) as session:
        await session.execute(text("DELETE FROM jobs"))  # as the side-effect tests do
        for kind in kinds:
            await repository.enqueue(
                session,
                queue="graph",
                kind=kind,
                key=f"{kind}-1",
                org_id=uuid.uuid4(),
                payload={},
                max_attempts=3,
            )
    summary = await JobRunner(sessions=sessions, queue="graph", kinds=kinds).run_once()
    assert (summary.done, summary.retrying, summary.failed) == (1, 1, 1)
    assert value("jobs_total", kind=f"ok-{tag}", outcome="done") == 1
    assert value("jobs_total", kind=f"flaky-{tag}", outcome="retrying") == 1
    assert value("jobs_total", kind=f"broken-{tag}", outcome="failed") == 1


async def test_webhook_processing_outcomes_are_counted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, bad = await add(sessions, 2)

    async def translate(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        if delivery.id == bad:
            raise RuntimeError("iCIMS 503")
        return []

    outcomes = ("processed", "retrying", "failed")
    delta = Delta(*(("jobs_total", {"kind": "webhook.process", "outcome": o}) for o in outcomes))
    await process_batch(sessions, translate, batch_size=10)
    assert delta.now() == [1, 1, 0]
    for _ in range(2):  # its last two attempts
        await due_now(sessions)
        await process_batch(sessions, translate, batch_size=10)
    assert delta.now() == [1, 2, 1]
