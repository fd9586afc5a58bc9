"""The local sign-in provider: `oidc-provider-mock`, with every email verified.

Google only signs in verified addresses of real accounts; the mock, asked for an unknown
subject, invents one whose claims carry no `email_verified`, which our gateway (rightly)
refuses. This wrapper registers each new subject as a verified Google-like account before the
mock sees it: `email`, `email_verified: true`, `name`, and `hd` (the Workspace domain) for any
domain but gmail.com. For tests of refusals, an address whose local part ends in `+unverified`
signs in with `email_verified: false`.

The mock does not enforce PKCE; the gateway's tests assert `code_challenge_method=S256`
themselves. Non-interactive sign-in (tests): follow the app's redirect to the authorize URL and
POST it with form `sub=<email>` (`action=deny` refuses consent).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
import oidc_provider_mock
import werkzeug.serving
from oidc_provider_mock import User

UNVERIFIED_MARK = "+unverified@"
CONSUMER_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def claims_for(email: str) -> dict[str, Any]:
    email = email.strip()
    local, _, domain = email.partition("@")
    claims: dict[str, Any] = {
        "email": email,
        "email_verified": UNVERIFIED_MARK not in email,
        "name": local.split("+")[0].replace(".", " ").title() or email,
    }
    if domain and domain.lower() not in CONSUMER_DOMAINS:
        claims["hd"] = domain.lower()
    return claims


def create_app() -> flask.Flask:
    app: flask.Flask = oidc_provider_mock.app(require_nonce=True)

    @app.before_request
    def register_as_google_would() -> None:
        # Runs after the mock's own hook, which puts its storage on flask.g.
        if flask.request.method != "POST" or not flask.request.path.endswith("/oauth2/authorize"):
            return
        sub = flask.request.form.get("sub")
        storage = getattr(flask.g, "oidc_provider_mock_storage", None)
        if sub and storage is not None and storage.get_user(sub) is None:
            storage.store_user(User(sub=sub, claims=claims_for(sub)))

    @app.get("/_sandbox/state")
    def state() -> flask.Response:
        storage = flask.g.oidc_provider_mock_storage
        return flask.jsonify({"recentSubjects": list(storage.get_recent_subjects())})

    return app


@contextmanager
def run_in_thread(port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve on a background thread; yields the issuer URL."""
    import threading

    server = werkzeug.serving.make_server(host, port, create_app(), threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="sandbox-oidc")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    args = parser.parse_args()
    print(f"sandbox OIDC provider on http://{args.host}:{args.port} (any email signs in, verified)")
    werkzeug.serving.run_simple(args.host, args.port, create_app(), threaded=True)
