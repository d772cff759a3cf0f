"""Access tokens for OAuth2 accounts: refreshed at the token endpoint, cached in memory.

One provider serves every account of a process. Each account has its own lock (two
connects of one account never refresh twice at once) and its own cache entry; the
cache is memory only, so access tokens never reach MongoDB, Kafka or a log.

A server may rotate the refresh token (RFC 6749 section 6: "the authorization server
MAY issue a new refresh token"); the old one may then stop working. The provider keeps
using the new one at once, and every :class:`AccessToken` it hands out carries
``rotated_secret`` (the account's :class:`OAuth2Secret` with the new, encrypted refresh
token) until the account record is republished with it. The ``on_rotation`` hook
(:class:`services.accounts.RotatedSecretWriter` in the services) persists it; until it
reports success it is called again at each login, or the grant would be lost when the
process restarts.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import quote_plus

import httpx

from schemas.account import OAuth2Mechanism, OAuth2Secret
from services.common.oauth2.errors import OAuth2Unavailable
from services.common.oauth2.refresh import (
    check_token_url,
    needs_refresh,
    parse_token_response,
    refresh_form,
)
from services.common.secrets import SecretBox

log = logging.getLogger("mailsync.oauth2")

# (account id, the secret as the record has it, the rotated one) -> persisted?
OnRotation = Callable[[str, OAuth2Secret, OAuth2Secret], Awaitable[bool]]


@dataclass(frozen=True)
class AccessToken:
    """A bearer token to log in with; ``token`` never appears in a repr or a log."""

    token: str = field(repr=False)
    expires_at: dt.datetime
    mechanism: OAuth2Mechanism
    # The secret to persist when the server rotated the refresh token, else None.
    rotated_secret: OAuth2Secret | None = None


@dataclass
class _Entry:
    record: OAuth2Secret  # as the account record has it
    current: OAuth2Secret  # with the newest refresh token (differs after a rotation)
    token: str | None = field(default=None, repr=False)
    expires_at: dt.datetime | None = None
    persisted: OAuth2Secret | None = None  # ``current`` once on_rotation wrote it


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TokenProvider:
    """Use as ``async with TokenProvider(box) as tokens`` (it owns an HTTP client)."""

    def __init__(
        self,
        box: SecretBox,
        *,
        margin_s: float = 60.0,
        timeout_s: float = 10.0,
        clock: Callable[[], dt.datetime] = _utcnow,
        on_rotation: OnRotation | None = None,
    ):
        self._box = box
        self._on_rotation = on_rotation
        self._margin = dt.timedelta(seconds=margin_s)
        self._clock = clock
        self._timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None  # made by the first refresh
        self._closed = False
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.refreshes = 0  # successful refreshes, for logs and tests

    async def __aenter__(self) -> TokenProvider:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.aclose()

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client, made when the first token is refreshed: loading the system
        trust store and making the client took 40 ms of every fetcher's and sender's
        start (bench/RESULTS.md, round 9), where most deployments have no OAuth2 account.
        The system trust store, like the IMAP and SMTP connections; no redirects: a token
        endpoint that redirects a POST carrying a refresh token is misconfigured."""
        if self._closed:
            raise RuntimeError("the token provider is closed")
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._timeout_s,
                verify=ssl.create_default_context(),
                follow_redirects=False,
            )
        return self._http

    def invalidate(self, account_id: str) -> None:
        """Forget the account's access token (the server refused it): the next call
        refreshes. A rotated refresh token is kept."""
        entry = self._entries.get(account_id)
        if entry is not None:
            entry.token, entry.expires_at = None, None

    def forget(self, account_id: str) -> None:
        """The account is gone: drop everything held for it."""
        self._entries.pop(account_id, None)
        self._locks.pop(account_id, None)

    async def access_token(self, account_id: str, secret: OAuth2Secret) -> AccessToken:
        """A token valid for at least the margin; refreshes when needed.

        Raises :class:`OAuth2Revoked` (invalid_grant), :class:`OAuth2Rejected` or
        :class:`OAuth2Unavailable` (retriable).
        """
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(account_id)
            if entry is None or secret not in (entry.record, entry.current):
                # New account, or its record changed (new consent, other client).
                entry = _Entry(record=secret, current=secret)
                self._entries[account_id] = entry
            elif secret == entry.current:
                entry.record = secret  # the owner persisted the rotated token
            now = self._clock()
            if entry.token is None or needs_refresh(entry.expires_at, now, self._margin):
                await self._refresh(account_id, entry)
            assert entry.token is not None and entry.expires_at is not None
            rotated = entry.current if entry.current != entry.record else None
            if rotated is not None and entry.persisted != rotated:
                await self._persist(account_id, entry, rotated)
            return AccessToken(entry.token, entry.expires_at, entry.current.mechanism, rotated)

    async def _persist(self, account_id: str, entry: _Entry, rotated: OAuth2Secret) -> None:
        """Hand the rotated secret to the hook; a failure is retried at the next login."""
        if self._on_rotation is not None and await self._on_rotation(
            account_id, entry.record, rotated
        ):
            entry.persisted = rotated

    async def _refresh(self, account_id: str, entry: _Entry) -> None:
        secret = entry.current
        check_token_url(secret.token_url)
        refresh_token = self._box.decrypt(secret.refresh_token_ciphertext)
        headers = {"Accept": "application/json"}
        public = secret.client_secret_ciphertext is None
        if secret.client_secret_ciphertext is not None:
            # RFC 6749 section 2.3.1: id and secret are form-urlencoded, then HTTP Basic.
            client_secret = self._box.decrypt(secret.client_secret_ciphertext)
            pair = f"{quote_plus(secret.client_id)}:{quote_plus(client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        form = refresh_form(refresh_token, secret.scope, secret.client_id, public=public)
        try:
            response = await self._client().post(secret.token_url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            # The exception names the URL only; the form with the token is not in it.
            raise OAuth2Unavailable(
                f"token endpoint unreachable: {type(exc).__name__}: {exc}"
            ) from None
        grant = parse_token_response(response.status_code, response.content, self._clock())
        entry.token, entry.expires_at = grant.access_token, grant.expires_at
        if grant.refresh_token is not None and grant.refresh_token != refresh_token:
            entry.current = secret.model_copy(
                update={"refresh_token_ciphertext": self._box.encrypt(grant.refresh_token)}
            )
            log.info("%s: the token endpoint rotated the refresh token", account_id)
        self.refreshes += 1
        log.info("%s: access token refreshed, valid until %s", account_id, grant.expires_at)
