"""SMTP I/O for one send: a thin layer over aiosmtplib; the verdicts live in smtp_failure.

Like a mail client (not an MTA), a message goes to all its recipients or to none: if
any RCPT is refused the transaction is reset and the whole send fails (permanently if
one refusal was permanent), so a retry never delivers twice to the ones that took it.

Sessions come from a per-account :class:`~services.sender.pool.Pool`: a burst for one
account is sent over a few authenticated sessions, each transaction begun with RSET
(RFC 5321 4.1.1.5), which also proves an idle session still alive. A reused session
that fails before any recipient was given (dropped while idle, timed out by the
server, or its login no longer honoured: 530/535, RFC 4954 6) is thrown away and the
message goes over a fresh connection with a fresh login; nothing was sent on it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import aiosmtplib

from schemas.account import Endpoint, Security
from services.common.loopback import is_loopback
from services.sender.errors import SendRefused, SmtpFailure
from services.sender.pool import Pool
from services.sender.smtp_failure import (
    SmtpVerdict,
    classify_network_failure,
    classify_smtp_reply,
    worst,
)

_NETWORK = (aiosmtplib.SMTPException, OSError, TimeoutError)


class _Stale(Exception):
    """A reused session failed before RCPT: try again over a new one."""


def _failure(verdict: SmtpVerdict, reply: str | None = None) -> SmtpFailure:
    return SmtpFailure(
        verdict.reason,
        retriable=verdict.retriable,
        reply=reply,
        maybe_delivered=verdict.maybe_delivered,
        last_step=verdict.last_step,
    )


def _reply_failure(exc: aiosmtplib.SMTPResponseException, stage: str) -> SmtpFailure:
    verdict = classify_smtp_reply(exc.code, exc.message, stage=stage)
    return _failure(verdict, f"{exc.code} {exc.message}")


async def close_session(client: aiosmtplib.SMTP) -> None:
    """QUIT (RFC 5321 4.1.1.10), or just drop the link if the server is not answering."""
    if not client.is_connected:
        return
    try:
        await client.quit(timeout=5)
    except _NETWORK:
        client.close()


class SmtpTransport:
    def __init__(
        self,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext,
        local_hostname: str,
        pool: Pool[aiosmtplib.SMTP],
    ):
        self._timeout = timeout
        self._ssl = ssl_context
        self._local_hostname = local_hostname
        self._pool = pool

    def hold(self, account_id: str) -> AbstractAsyncContextManager[None]:
        """Work for ``account_id`` is in hand: its sessions stay open until let go."""
        return self._pool.hold(account_id)

    def _client(self, ep: Endpoint) -> aiosmtplib.SMTP:
        if ep.security is Security.PLAIN and not is_loopback(ep.host):
            raise SendRefused(f"plaintext SMTP to {ep.host} refused: use TLS or STARTTLS")
        return aiosmtplib.SMTP(
            hostname=ep.host,
            port=ep.port,
            use_tls=ep.security is Security.TLS,  # RFC 8314: implicit TLS (465)
            start_tls=ep.security is Security.STARTTLS,  # RFC 3207, required when asked
            tls_context=self._ssl,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )

    async def send(
        self,
        account_id: str,
        identity: object,
        endpoint: Endpoint,
        login: Callable[[aiosmtplib.SMTP], Awaitable[object]],
        mail_from: str,
        recipients: Sequence[str],
        message: bytes,
        before_data: Callable[[], Awaitable[None]],
    ) -> str:
        """Deliver ``message``; returns the server's final reply (e.g. ``250 2.0.0 Ok``).

        ``login`` authenticates a newly connected client (see
        ``services.common.smtp_auth``); ``identity`` is what the session was opened with
        (endpoint and secret), so a changed account is not served by an old session.

        ``before_data`` (the durable ``sending``: from DATA on the server may have the
        message even if we never hear its reply) runs once, begun with the transaction,
        while the session is taken and MAIL and RCPT go; DATA waits for it to end, and
        never begins if it failed. A failure before DATA is raised only once it ended,
        so the caller knows which state the request is in.
        """

        async def open_() -> aiosmtplib.SMTP:
            client = self._client(endpoint)
            stage = "CONNECT"
            try:
                await client.connect()
                stage = "AUTH"
                await login(client)  # AUTH: a password, or XOAUTH2/OAUTHBEARER
            except BaseException as exc:
                await close_session(client)
                raise _classified(exc, stage) from None
            return client

        # The ledger's commit is what a burst waits on, and a session held across it
        # serves nobody: it runs alongside the commands that come before DATA.
        durable = asyncio.ensure_future(before_data())
        args = (mail_from, recipients, message, durable)
        try:
            try:
                return await self._attempt(account_id, identity, open_, *args, fresh=False)
            except _Stale:
                return await self._attempt(account_id, identity, open_, *args, fresh=True)
        except BaseException:
            await asyncio.wait([durable])
            if not durable.cancelled():
                durable.exception()  # the session's failure is the one told; the caller's
                # next ledger write meets the ledger's again (a lost lease, the database)
            raise

    async def _attempt(
        self,
        account_id: str,
        identity: object,
        open_: Callable[[], Awaitable[aiosmtplib.SMTP]],
        mail_from: str,
        recipients: Sequence[str],
        message: bytes,
        durable: asyncio.Future[None],
        *,
        fresh: bool,
    ) -> str:
        async with self._pool.connection(account_id, identity, open_, fresh=fresh) as lease:
            client = lease.conn
            stage = "MAIL FROM"
            try:
                if lease.reused:
                    stage = "RSET"
                    await client.rset()
                    stage = "MAIL FROM"
                await client.mail(mail_from)
            except BaseException as exc:
                if lease.reused and _stale(exc):
                    raise _Stale from None
                raise _classified(exc, stage) from None
            stage = "RCPT TO"
            try:
                refused: list[SmtpVerdict] = []
                for rcpt in recipients:
                    try:
                        await client.rcpt(rcpt)
                    except aiosmtplib.SMTPRecipientRefused as exc:
                        refused.append(
                            classify_smtp_reply(
                                exc.code, f"{exc.message} <{rcpt}>", stage="RCPT TO"
                            )
                        )
                if refused:
                    await client.rset()
                    raise _failure(worst(refused))
                await durable
                stage = "DATA"
                response = await client.data(message)
                return f"{response.code} {response.message}"
            except BaseException as exc:
                raise _classified(exc, stage) from None


def _stale(exc: BaseException) -> bool:
    """A reused session's failure that says the session, not the message, is at fault."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code in (421, 530, 535)  # closing, or the login is no longer good
    return isinstance(exc, _NETWORK)


def _classified(exc: BaseException, stage: str) -> BaseException:
    """The SmtpFailure an aiosmtplib or network error stands for (others pass as they are)."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_failure(exc, stage)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # e.g. no AUTH offered (often: AUTH only after STARTTLS): a setting to fix.
        return SmtpFailure(f"{stage}: {exc}", retriable=False)
    if isinstance(exc, _NETWORK):
        return _failure(classify_network_failure(exc, stage=stage))
    return exc
