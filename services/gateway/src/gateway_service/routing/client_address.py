"""The caller's address behind our own reverse proxies (`TRUSTED_PROXIES`).

Behind an ingress every connection comes from the proxy, so the public rate limit, the audit
trail and the X-Forwarded-For sent to the services would all see one address. When the
connection comes from a trusted network, the client is the right-most X-Forwarded-For entry
that is not itself trusted: each proxy appends the address it received the request from, so the
entries right of that one were written by our proxies, and everything left of it by the client,
who can write anything there (taking the left-most would let a flood pick a fresh bucket per
request). X-Forwarded-Proto from a trusted peer sets the scheme, so redirects built from the
request URL stay on https behind a TLS-terminating ingress.

This is ours rather than uvicorn's ProxyHeadersMiddleware (which has the same right-most rule)
because uvicorn keeps an entry it cannot parse as a trusted literal without a word, lets a
non-address X-Forwarded-For entry become the client (the audit trail stores `inet`), and drops
the connection's own address, which a webhook's forwarded chain needs. The API runs uvicorn
with `proxy_headers=False` (servicekit.cli), so `FORWARDED_ALLOW_IPS` means nothing to it: this
middleware is the only place forwarding headers are believed, and only with TRUSTED_PROXIES set.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

# The connection's own (peer) address, kept in the scope when `client` is replaced.
PEER_KEY = "gateway.peer"
SCHEMES = frozenset({"http", "https"})


def parse_networks(value: str) -> tuple[Network, ...]:
    """Comma-separated addresses (one host) and CIDR networks; ValueError names the bad one."""
    networks: list[Network] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ip_network(item))  # strict: 10.0.0.1/8 is a typo, not 10.0.0.0/8
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or CIDR network ({exc})") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    """An address as proxies write it: bare, `v4:port` or `[v6]:port`; None if it is none."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        parsed = ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def peer_host(request: Request) -> str:
    """The address of the connection itself (our proxy, when one is trusted)."""
    peer = request.scope.get(PEER_KEY) or request.scope.get("client")
    return str(peer[0]) if peer else ""


class TrustedProxyHeaders:
    """Replaces the scope's `client` (and `scheme`) from a trusted peer's forwarding headers."""

    def __init__(self, app: ASGIApp, networks: Sequence[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        address = _address(str(peer[0])) if peer else None
        if scope["type"] != "http" or address is None or not self._trusted(address):
            await self.app(scope, receive, send)
            return
        forwarded: list[str] = []
        proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded += value.decode("latin-1").split(",")
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        client = address
        for entry in reversed(forwarded):
            hop = _address(entry)
            if hop is None:
                break  # not an address: keep the last one a trusted proxy vouched for
            client = hop
            if not self._trusted(hop):
                break
        scope = {**scope, PEER_KEY: peer}
        if client != address:
            scope["client"] = (str(client), 0)
        if proto in SCHEMES:
            scope["scheme"] = proto
        await self.app(scope, receive, send)
