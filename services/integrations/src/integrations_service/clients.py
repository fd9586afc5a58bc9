"""Adapters built from an org's connection, cached per credential set.

One Graph adapter (and its httpx pool) per distinct Graph credential set, one iCIMS client per
iCIMS credential set: orgs sharing the install's connection share its clients and its token
cache. Every Graph adapter shares the one cross-process mailbox limiter (PostgreSQL advisory
locks), so Graph's four concurrent requests per mailbox hold however many replicas run.
"""

from __future__ import annotations

import httpx
from servicekit.db import create_engine
from servicekit.telemetry import tracer_provider
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations_service.connections.service import GraphConnection, IcimsConnection
from integrations_service.graph.adapter import GraphAdapter
from integrations_service.graph.client import build_graph_client
from integrations_service.graph.limiter import MailboxLimiter
from integrations_service.icims.budget import IcimsBudget
from integrations_service.icims.client import IcimsClient
from integrations_service.settings import Settings


class Clients:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._graph: dict[str, GraphAdapter] = {}
        self._icims: dict[str, IcimsClient] = {}
        self._http: list[httpx.AsyncClient] = []
        # The limiter holds a connection (an advisory lock) for every Graph call in flight. It has
        # a pool of its own: drawing from the request pool would deadlock once every request
        # connection waits for a lock connection that can no longer be had.
        self._limiter_engine = create_engine(
            settings.sqlalchemy_url,
            pool_size=settings.graph_limiter_pool_size,
            application_name="integrations-graph-limiter",
        )
        self.limiter = MailboxLimiter(
            self._limiter_engine, per_mailbox=settings.graph_concurrency_per_mailbox
        )
        self._budget = IcimsBudget(engine, settings.icims_daily_budget)

    def graph(self, conn: GraphConnection) -> GraphAdapter:
        key = conn.fingerprint()
        adapter = self._graph.get(key)
        if adapter is None:
            s = self._settings
            client = build_graph_client(
                base_url=conn.base_url,
                tenant_id=conn.tenant_id,
                client_id=conn.client_id,
                client_secret=conn.client_secret,
                static_token=conn.static_token,
                timeout_seconds=s.graph_timeout_seconds,
                max_retries=s.graph_max_retries,
                tracer_provider=tracer_provider(s.service_name, s.otel_exporter_otlp_endpoint),
            )
            adapter = GraphAdapter(client, self.limiter, cache_seconds=s.freebusy_cache_seconds)
            self._graph[key] = adapter
        return adapter

    def icims(self, conn: IcimsConnection) -> IcimsClient:
        key = conn.fingerprint()
        client = self._icims.get(key)
        if client is None:
            assert conn.client_id and conn.client_secret
            http = httpx.AsyncClient(timeout=self._settings.icims_timeout_seconds)
            self._http.append(http)
            client = IcimsClient(
                base_url=conn.base_url,
                token_url=conn.token_url,
                client_id=conn.client_id,
                client_secret=conn.client_secret,
                http=http,
                budget=self._budget,
            )
            self._icims[key] = client
        return client

    async def aclose(self) -> None:
        for http in self._http:
            await http.aclose()
        for adapter in self._graph.values():
            await adapter.aclose()
        await self._limiter_engine.dispose()
