"""SMTP I/O for one send: a thin layer over aiosmtplib; the verdicts live in smtp_failure.

Like a mail client (not an MTA), a message goes to all its recipients or to none: if
any RCPT is refused the transaction is reset and the whole send fails (permanently if
one refusal was permanent), so a retry never delivers twice to the ones that took it.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Sequence

import aiosmtplib

from schemas.account import Endpoint, Security
from services.fetcher.session import is_loopback
from services.sender.errors import SendRefused, SmtpFailure
from services.sender.smtp_failure import (
    SmtpVerdict,
    classify_network_failure,
    classify_smtp_reply,
    worst,
)


def _failure(verdict: SmtpVerdict, reply: str | None = None) -> SmtpFailure:
    return SmtpFailure(verdict.reason, retriable=verdict.retriable, reply=reply)


def _reply_failure(exc: aiosmtplib.SMTPResponseException, stage: str) -> SmtpFailure:
    verdict = classify_smtp_reply(exc.code, exc.message, stage=stage)
    return _failure(verdict, f"{exc.code} {exc.message}")


class SmtpTransport:
    def __init__(self, *, timeout: float, ssl_context: ssl.SSLContext, local_hostname: str):
        self._timeout = timeout
        self._ssl = ssl_context
        self._local_hostname = local_hostname

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
        endpoint: Endpoint,
        login: Callable[[aiosmtplib.SMTP], Awaitable[object]],
        mail_from: str,
        recipients: Sequence[str],
        message: bytes,
        before_data: Callable[[], Awaitable[None]],
    ) -> str:
        """Deliver ``message``; returns the server's final reply (e.g. ``250 2.0.0 Ok``).

        ``login`` authenticates the connected client (see ``services.common.smtp_auth``).

        ``before_data`` runs once every recipient was accepted, just before DATA: from
        then on the server may have the message even if we never hear its reply.
        """
        client = self._client(endpoint)
        stage = "CONNECT"
        try:
            await client.connect()
            stage = "AUTH"
            await login(client)  # AUTH: a password, or XOAUTH2/OAUTHBEARER
            stage = "MAIL FROM"
            await client.mail(mail_from)
            stage = "RCPT TO"
            refused: list[SmtpVerdict] = []
            for rcpt in recipients:
                try:
                    await client.rcpt(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(
                        classify_smtp_reply(exc.code, f"{exc.message} <{rcpt}>", stage="RCPT TO")
                    )
            if refused:
                await client.rset()
                raise _failure(worst(refused))
            await before_data()
            stage = "DATA"
            response = await client.data(message)
            return f"{response.code} {response.message}"
        except aiosmtplib.SMTPResponseException as exc:
            raise _reply_failure(exc, stage) from None
        except aiosmtplib.SMTPNotSupported as exc:
            # e.g. no AUTH offered (often: AUTH only after STARTTLS): a setting to fix.
            raise SmtpFailure(f"{stage}: {exc}", retriable=False) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _failure(classify_network_failure(exc)) from None
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
