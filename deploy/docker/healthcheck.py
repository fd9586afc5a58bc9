"""Container health probe: `python /app/healthcheck.py [/healthz|/readyz]`.

Exits 0 when this container's service API answers the route with 200, else 1. The service is
named by SCHEDULER_SERVICE (the image sets it); its address and port come from that service's own
Settings, so every override the service itself follows (`<SERVICE>_PORT`, `PORT`, `HOST`, ...)
is followed here too. Standard library only, apart from the service's settings module.
"""

from __future__ import annotations

import http.client
import importlib
import ipaddress
import os
import sys

ROUTES = ("/healthz", "/readyz")
TIMEOUT_SECONDS = 4.0


def loopback_if_unspecified(host: str) -> str:
    """A service listening on every interface (0.0.0.0, ::) is asked over loopback."""
    try:
        unspecified = not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        return host
    return "127.0.0.1" if unspecified else host


def probe(path: str) -> tuple[bool, str]:
    service = os.environ.get("SCHEDULER_SERVICE", "").strip()
    if not service:
        return False, "SCHEDULER_SERVICE is not set"
    try:
        settings = importlib.import_module(f"{service}_service.settings").Settings()
    except Exception as exc:
        return False, f"cannot read the {service} settings: {exc}"
    host = loopback_if_unspecified(settings.host)
    conn = http.client.HTTPConnection(host, settings.listen_port, timeout=TIMEOUT_SECONDS)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except OSError as exc:
        return False, f"{host}:{settings.listen_port}{path}: {exc}"
    finally:
        conn.close()
    return status == 200, f"{host}:{settings.listen_port}{path}: HTTP {status}"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/healthz"
    if path not in ROUTES:
        print(f"usage: healthcheck.py [{'|'.join(ROUTES)}]", file=sys.stderr)
        return 1  # Docker reserves exit code 2
    ok, detail = probe(path)
    print(detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
