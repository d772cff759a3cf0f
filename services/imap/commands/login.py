"""LOGIN with a password (RFC 3501 6.2.3), or AUTHENTICATE XOAUTH2/OAUTHBEARER (RFC 3501
6.2.2, RFC 7628) with an OAuth2 access token the caller got from the token provider."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from services.common.oauth2 import AccessToken, error_ack, initial_response
from services.imap.errors import AuthenticationFailed, ImapUnavailable

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def login(imap: ImapSession, credential: str | AccessToken) -> bytes:
    """Authenticate; a refusal (NO, or AUTHENTICATIONFAILED, RFC 5530) is the
    credential's fault, anything else the server's. Returns the tagged OK's text (it
    may list the capabilities, RFC 3501 6.2.3)."""
    ep, client = imap.endpoint, imap.client
    how = "login"
    if isinstance(credential, AccessToken):
        how = f"{credential.mechanism} login"
        initial = initial_response(
            credential.mechanism, ep.username, credential.token, ep.host, ep.port
        )
        response = await asyncio.wait_for(
            client.protocol.authenticate(
                credential.mechanism.value, initial, error_ack(credential.mechanism)
            ),
            imap.timeout,
        )
    else:
        response = await client.login(ep.username, credential)
    if response.result != "OK":
        text = b" ".join(bytes(x) for x in response.lines).decode(errors="replace")
        if "AUTHENTICATIONFAILED" in text.upper() or response.result == "NO":
            raise AuthenticationFailed(f"IMAP {how} refused for {ep.username}: {text}")
        raise ImapUnavailable(f"IMAP {how} failed: {text}")
    return bytes(response.lines[-1]) if response.lines else b""
