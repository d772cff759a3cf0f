"""OAUTHBEARER for Kafka (KIP-255/KIP-768): access tokens by the client-credentials grant.

aiokafka asks :meth:`ClientCredentialsTokens.token` at every SASL handshake; the token is
kept until shortly before it expires (the same margin as the mailbox logins), so a
reconnect storm is not a token-endpoint storm.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
from urllib.parse import quote_plus

import httpx
from aiokafka.abc import AbstractTokenProvider
from pydantic import SecretStr

from services.common.oauth2.errors import OAuth2Rejected, OAuth2Revoked, OAuth2Unavailable
from services.common.oauth2.refresh import (
    check_token_url,
    client_credentials_form,
    needs_refresh,
    parse_token_response,
)


class ClientCredentialsTokens(AbstractTokenProvider):  # type: ignore[misc]
    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str = "",
        *,
        margin_s: float = 60.0,
        timeout_s: float = 10.0,
    ):
        check_token_url(token_url)
        self._url = token_url
        self._client_id = client_id
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret.get_secret_value())}"
        self._headers = {
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
        }
        self._form = client_credentials_form(scope)
        self._margin = dt.timedelta(seconds=margin_s)
        self._timeout = timeout_s
        self._token: str | None = None
        self._expires_at: dt.datetime | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            now = dt.datetime.now(dt.UTC)
            if self._token is None or needs_refresh(self._expires_at, now, self._margin):
                await self._fetch(now)
            assert self._token is not None
            return self._token

    async def _fetch(self, now: dt.datetime) -> None:
        # A client per fetch: tokens live for minutes to hours, and a client kept open
        # would need a close hook that aiokafka never calls.
        verify = ssl.create_default_context()
        async with httpx.AsyncClient(timeout=self._timeout, verify=verify) as http:
            try:
                response = await http.post(self._url, data=self._form, headers=self._headers)
            except httpx.HTTPError as exc:
                raise OAuth2Unavailable(
                    f"Kafka token endpoint unreachable: {type(exc).__name__}: {exc}"
                ) from None
        try:
            grant = parse_token_response(
                response.status_code, response.content, now, grant="client-credentials grant"
            )
        except (OAuth2Rejected, OAuth2Revoked) as exc:
            # A refusal is a setting to fix (invalid_client: the id or secret; invalid_scope),
            # not a token to retry: RFC 6749 section 5.2.
            raise OAuth2Rejected(
                f"Kafka {exc} for client {self._client_id!r} at {self._url}: check "
                "MAILSYNC_KAFKA_OAUTH_CLIENT_ID, MAILSYNC_KAFKA_OAUTH_CLIENT_SECRET and "
                "MAILSYNC_KAFKA_OAUTH_SCOPE"
            ) from None
        self._token, self._expires_at = grant.access_token, grant.expires_at
