"""Building msgraph-sdk's `GraphServiceClient` on our own httpx client.

The construction is the verified one (shared/INTEGRATIONS.md): our `httpx.AsyncClient` (so we
own its timeout and pool) loaded with Graph's default middleware — passing a bare client to
`GraphRequestAdapter` drops the retry and redirect handlers — and the base URL set without a
trailing slash, or the SDK requests `…/v1.0//users/…`. The default middleware is the list
`create_with_default_middleware` builds (kiota's defaults, then Graph's telemetry handler), with
our `ThrottleMeter` appended last so it sees each attempt's answer.

The retry middleware retries 429/503/504 (POST included) honouring an integer or HTTP-date
`Retry-After`; a fractional one is ignored and the backoff (0.5·2ⁿ⁻¹ s + ≤1 s jitter + the
`delay` we set) applies. Retries stay inside one adapter call, which the adapter bounds with an
overall deadline so a long `Retry-After` cannot hold a mailbox slot for minutes.

Each request (retries included) is a CLIENT span of `tracer_provider` when one is given: the
OpenTelemetry httpx instrumentation on our client, outside the SDK's middleware (kiota's own
spans go to the global provider and are INTERNAL), with method, URL and status.

Token providers: a static token for the sandbox and tests; azure-identity's async
`ClientSecretCredential` (client credentials, scope `https://graph.microsoft.com/.default`) in
production. Both hand a token only to the Graph host configured here.
`msgraph_core.authentication.AzureIdentityAuthenticationProvider` does not construct with
kiota 1.16, hence our own small provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from opentelemetry.sdk.trace import TracerProvider
from servicekit.telemetry import instrument_httpx

from integrations_service.graph.errors import GraphError
from integrations_service.graph.metering import ThrottleMeter
from integrations_service.graph.speedups import install as install_speedups

GRAPH_BASE_URL = "https://graph.microsoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class StaticTokenProvider(AccessTokenProvider):
    """A fixed bearer token: the sandbox's fake Graph accepts any non-empty one."""

    def __init__(self, token: str, allowed_hosts: list[str]) -> None:
        self._token = token
        self._hosts = AllowedHostsValidator(allowed_hosts)

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token if self._hosts.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


class ClientSecretTokenProvider(AccessTokenProvider):
    """App-only tokens from Entra ID (client credentials); azure-identity caches and renews."""

    def __init__(
        self, credential: AsyncTokenCredential, allowed_hosts: list[str], scope: str = GRAPH_SCOPE
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._hosts = AllowedHostsValidator(allowed_hosts)

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        if not self._hosts.is_url_host_valid(uri):
            return ""  # never hand the app's token to another host
        try:
            token = await self._credential.get_token(self._scope)
        except ClientAuthenticationError as exc:
            # Wrong secret, tenant or consent: retrying will not help until someone fixes it.
            raise GraphError(401, "token_refused", exc.message or str(exc)) from exc
        except AzureError as exc:
            raise GraphError(None, "token_unavailable", exc.message or str(exc)) from exc
        return token.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts

    async def aclose(self) -> None:
        await self._credential.close()


@dataclass
class GraphClient:
    """The SDK client plus what must be closed with it."""

    sdk: GraphServiceClient
    http: httpx.AsyncClient
    token_provider: AccessTokenProvider
    base_url: str

    async def aclose(self) -> None:
        await self.http.aclose()
        if isinstance(self.token_provider, ClientSecretTokenProvider):
            await self.token_provider.aclose()


def build_graph_client(
    *,
    base_url: str = GRAPH_BASE_URL,
    tenant_id: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    static_token: str | None = None,
    timeout_seconds: float = 10.0,
    max_retries: int = 3,
    retry_delay_seconds: float = 0.5,
    tracer_provider: TracerProvider | None = None,
) -> GraphClient:
    """`base_url` is Graph's root without `/v1.0` (the sandbox: `http://127.0.0.1:8101`).

    `static_token` wins when given (sandbox, tests); otherwise tenant, client id and secret are
    required. `max_retries` counts retries after the first attempt (0 to 10)."""
    root = base_url.rstrip("/")
    if root.endswith("/v1.0"):
        root = root[: -len("/v1.0")]
    host = urlsplit(root).hostname
    if not host:
        raise ValueError(f"not an absolute URL: {base_url!r}")
    provider: AccessTokenProvider
    if static_token:
        provider = StaticTokenProvider(static_token, [host])
    elif tenant_id and client_id and client_secret:
        credential = ClientSecretCredential(tenant_id, client_id, client_secret)
        provider = ClientSecretTokenProvider(credential, [host])
    else:
        raise ValueError("Graph needs static_token, or tenant_id, client_id and client_secret")
    middleware = KiotaClientFactory.get_default_middleware(
        {
            RetryHandlerOption.get_key(): RetryHandlerOption(
                delay=retry_delay_seconds, max_retries=max_retries
            )
        }
    )
    middleware += [GraphTelemetryHandler(), ThrottleMeter()]
    http = GraphClientFactory.create_with_custom_middleware(
        middleware, client=httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))
    )
    if tracer_provider is not None:
        instrument_httpx(http, tracer_provider)
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider), client=http)
    adapter.base_url = f"{root}/v1.0"
    install_speedups()  # halves the CPU of a call that returns an event (speedups.py)
    return GraphClient(
        sdk=GraphServiceClient(request_adapter=adapter),
        http=http,
        token_provider=provider,
        base_url=root,
    )
