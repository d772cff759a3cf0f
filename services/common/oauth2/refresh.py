"""The refresh-token grant (RFC 6749 section 6) as data: when to refresh, what to send,
and what the answer means. No I/O here; :mod:`.provider` does the HTTP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.common.oauth2.errors import OAuth2Rejected, OAuth2Revoked, OAuth2Unavailable


@dataclass(frozen=True)
class TokenGrant:
    """A successful token response (RFC 6749 section 5.1)."""

    access_token: str = field(repr=False)
    expires_at: dt.datetime
    # Present when the server rotated the refresh token: the old one may stop working.
    refresh_token: str | None = field(default=None, repr=False)


def needs_refresh(expires_at: dt.datetime | None, now: dt.datetime, margin: dt.timedelta) -> bool:
    """True when a token expiring at ``expires_at`` should be replaced before use.

    ``margin`` covers the time between asking and the server checking the token (a
    connect, a TLS handshake, a slow introspection), so a token is never presented in
    its last moments.
    """
    return expires_at is None or now + margin >= expires_at


def check_token_url(url: str) -> None:
    """RFC 6749 section 3.2: the token endpoint requires TLS. Plain http is allowed to a
    loopback host only (local development and the tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise OAuth2Rejected(f"token endpoint {url!r} refused: use https")


def refresh_form(refresh_token: str, scope: str, client_id: str, *, public: bool) -> dict[str, str]:
    """The form body of a refresh request (RFC 6749 section 6).

    A confidential client authenticates with HTTP Basic (section 2.3.1) instead of
    putting its id in the body; a public client names itself with ``client_id``
    (section 3.2.1).
    """
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope:
        form["scope"] = scope
    if public:
        form["client_id"] = client_id
    return form


def client_credentials_form(scope: str) -> dict[str, str]:
    """The form body of a client-credentials request (RFC 6749 section 4.4.2); the client
    authenticates with HTTP Basic (section 2.3.1)."""
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    return form


def parse_token_response(
    status: int, body: bytes, now: dt.datetime, *, grant: str = "refresh"
) -> TokenGrant:
    """Interpret the token endpoint's answer, or raise the error it amounts to.

    ``grant`` names the request in error messages ("refresh", "client-credentials grant").

    Error bodies (section 5.2) are JSON with ``error`` and maybe ``error_description``;
    only those two are ever put into a message, never the request or a token.
    """
    if status >= 500 or status == 429:
        raise OAuth2Unavailable(f"token endpoint answered HTTP {status}; will retry")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        if status == 200:
            raise OAuth2Unavailable("token endpoint answered 200 without a JSON object")
        raise OAuth2Rejected(f"token endpoint answered HTTP {status} without an OAuth2 error")
    if status != 200:
        error = str(data.get("error", f"http_{status}"))
        description = str(data.get("error_description", ""))[:300]
        detail = f"{error}: {description}" if description else error
        if error == "invalid_grant":
            raise OAuth2Revoked(f"refresh token revoked or expired ({detail}); sign in again")
        raise OAuth2Rejected(f"token endpoint refused the {grant} ({detail})")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuth2Rejected("token response has no access_token")
    token_type = str(data.get("token_type", ""))
    if token_type.lower() != "bearer":  # section 7.1: the type is case-insensitive
        raise OAuth2Rejected(f"token type {token_type!r} is not Bearer")
    expires_in = data.get("expires_in")
    # expires_in is RECOMMENDED, not required: without it the token is used for this
    # connection only and refreshed on the next.
    lifetime = dt.timedelta(seconds=expires_in) if isinstance(expires_in, int | float) else None
    rotated = data.get("refresh_token")
    return TokenGrant(
        access_token=token,
        expires_at=now + lifetime if lifetime is not None else now,
        refresh_token=rotated if isinstance(rotated, str) and rotated else None,
    )
