"""SASL initial responses for a bearer token, base64-encoded as IMAP ``AUTHENTICATE``
(RFC 3501 6.2.2, with SASL-IR RFC 4959) and SMTP ``AUTH`` (RFC 4954) carry them.

When the server refuses a token it sends a JSON error as a challenge and waits for
one more client response before its final NO/535: :func:`error_ack` is that response.
"""

from __future__ import annotations

import base64

from schemas.account import OAuth2Mechanism


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def xoauth2_response(user: str, token: str) -> str:
    """XOAUTH2 (Google, Microsoft): ``user=U^Aauth=Bearer T^A^A``."""
    return _b64(f"user={user}\x01auth=Bearer {token}\x01\x01")


def _saslname(user: str) -> str:
    # RFC 5801 section 4 (the GS2 header RFC 7628 reuses): "," and "=" are escaped.
    return user.replace("=", "=3D").replace(",", "=2C")


def oauthbearer_response(user: str, token: str, host: str, port: int) -> str:
    """OAUTHBEARER (RFC 7628 section 3.1): GS2 header, then host, port and the token as
    ``^A``-separated key/value pairs."""
    return _b64(
        f"n,a={_saslname(user)},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    )


def initial_response(
    mechanism: OAuth2Mechanism, user: str, token: str, host: str, port: int
) -> str:
    if mechanism is OAuth2Mechanism.OAUTHBEARER:
        return oauthbearer_response(user, token, host, port)
    return xoauth2_response(user, token)


def error_ack(mechanism: OAuth2Mechanism) -> str:
    """The client's answer to an error challenge: a single ^A for OAUTHBEARER (RFC 7628
    section 3.2.3), an empty response for XOAUTH2."""
    return _b64("\x01") if mechanism is OAuth2Mechanism.OAUTHBEARER else ""
