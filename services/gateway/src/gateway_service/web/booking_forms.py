"""The candidate's forms: a signed token instead of the session CSRF token.

The gateway's CSRF token belongs to a session row (`auth/sessions.py`), and a candidate has no
session, so it cannot protect `/book/{token}`. Every form there carries `<expiry>.<mac>` instead:
an HMAC-SHA256 over the booking token and the expiry, keyed by a key derived from
SESSION_SECRET. It proves the form was rendered by us for this very link within the last hour;
it is not bound to a browser (there is nothing to bind to), which is acceptable because the
link itself is the credential: whoever can post with it could open the page anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from servicekit.errors import AppError

from gateway_service.settings import Settings

FIELD = "form_token"
LIFETIME_SECONDS = 3600
_PURPOSE = b"gateway/booking-form/v1"


class FormRefused(AppError):
    status = 403
    code = "form_token_invalid"


def _key(settings: Settings) -> bytes:
    assert settings.session_secret is not None  # the settings refuse to start without one
    # A key of its own: a MAC made here can never stand in for anything else signed with the
    # session secret (or the other way round).
    return hmac.new(
        settings.session_secret.get_secret_value().encode(), _PURPOSE, hashlib.sha256
    ).digest()


def _mac(settings: Settings, booking_token: str, expires: int) -> str:
    message = f"{booking_token}\n{expires}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def issue(settings: Settings, booking_token: str, *, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + LIFETIME_SECONDS
    return f"{expires}.{_mac(settings, booking_token, expires)}"


def check(
    settings: Settings, booking_token: str, presented: str | None, *, now: float | None = None
) -> None:
    expiry, _, mac = (presented or "").partition(".")
    if (
        not expiry.isdigit()
        or len(expiry) > 12
        or not hmac.compare_digest(
            mac.encode(), _mac(settings, booking_token, int(expiry)).encode()
        )
    ):
        raise FormRefused(
            "We could not confirm that this form came from your booking page. "
            "Open your booking link again and repeat your choice."
        )
    if int(expiry) < (now if now is not None else time.time()):
        raise FormRefused(
            "This page was open for too long. Open your booking link again to see the "
            "current times.",
            code="form_expired",
        )
