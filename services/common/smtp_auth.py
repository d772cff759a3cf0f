"""SMTP AUTH (RFC 4954) for an account's secret: LOGIN/PLAIN with its password, or
XOAUTH2 / OAUTHBEARER (RFC 7628) with an OAuth2 access token from the token provider.

For the sender: call it on a connected, TLS-protected ``aiosmtplib.SMTP`` client.
"""

from __future__ import annotations

import aiosmtplib
from aiosmtplib import SMTPAuthenticationError, SMTPStatus

from schemas.account import AccountSecret, OAuth2Mechanism, OAuth2Secret
from services.common.oauth2 import (
    AccessToken,
    OAuth2Rejected,
    TokenProvider,
    error_ack,
    initial_response,
)
from services.common.secrets import SecretBox


async def _bearer(client: aiosmtplib.SMTP, username: str, token: AccessToken) -> None:
    if client.last_ehlo_response is None:
        await client.ehlo()
    if token.mechanism.value.lower() not in client.server_auth_methods:
        raise OAuth2Rejected(f"the SMTP server does not offer AUTH {token.mechanism}")
    if token.mechanism is OAuth2Mechanism.XOAUTH2:
        # aiosmtplib answers the error challenge itself and raises on 535.
        await client.auth_xoauth2(username, token.token)
        return
    host = client.hostname or ""
    port = client.port or 0
    initial = initial_response(token.mechanism, username, token.token, host, port)
    response = await client.execute_command(
        b"AUTH", token.mechanism.value.encode(), initial.encode()
    )
    if response.code == SMTPStatus.auth_continue:
        # RFC 7628 3.2.3: the challenge is the server's error; ^A ends the exchange.
        response = await client.execute_command(error_ack(token.mechanism).encode())
    if response.code != SMTPStatus.auth_successful:
        raise SMTPAuthenticationError(response.code, response.message)


async def smtp_login(
    client: aiosmtplib.SMTP,
    username: str,
    secret: AccountSecret,
    box: SecretBox,
    tokens: TokenProvider,
    *,
    account_id: str,
) -> AccessToken | None:
    """Authenticate ``client`` as ``username``; returns the access token used (its
    ``rotated_secret`` must be persisted when set), or None for a password.

    Raises ``aiosmtplib.SMTPAuthenticationError`` when the server refuses (for a token,
    after one retry with a fresh one), and the token provider's errors
    (:class:`~services.common.oauth2.OAuth2Revoked` when consent was withdrawn).
    """
    if not isinstance(secret, OAuth2Secret):
        await client.login(username, box.decrypt(secret.ciphertext))
        return None
    token = await tokens.access_token(account_id, secret)
    try:
        await _bearer(client, username, token)
    except SMTPAuthenticationError:
        # A token revoked before its expiry: one fresh one, then the refusal stands.
        tokens.invalidate(account_id)
        token = await tokens.access_token(account_id, secret)
        await _bearer(client, username, token)
    return token


async def smtp_token_login(client: aiosmtplib.SMTP, username: str, token: AccessToken) -> None:
    """Authenticate with an access token in hand (the API's sign-in checks a new grant
    with it); raises ``SMTPAuthenticationError`` when the server refuses."""
    await _bearer(client, username, token)
