"""Why an IMAP or SMTP verification failed, as one distinct code a person can act on (pure).

The exception is read with its ``__cause__`` chain (aiosmtplib wraps the socket error
in ``SMTPConnectError``). The order matters: a certificate error is an ``SSLError`` is
an ``OSError``; an authentication refusal is read for the provider's hint first
(Gmail: ``[ALERT] Application-specific password required``, RFC 5530 response codes).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Iterator
from enum import StrEnum
from typing import Literal

import aiosmtplib

from schemas._base import Model
from services.api.presets import AuthKind, Preset
from services.imap import AuthenticationFailed, ImapUnavailable, InsecureConnection

Stage = Literal["imap", "smtp"]


class FailureCode(StrEnum):
    DNS = "dns_failed"
    REFUSED = "connection_refused"
    UNREACHABLE = "unreachable"
    TLS = "tls_failed"
    IMPLICIT_TLS = "implicit_tls_port"
    TIMEOUT = "timeout"
    AUTH = "auth_failed"
    APP_PASSWORD = "app_password_required"
    OAUTH2 = "oauth2_required"
    INSECURE = "insecure_connection"
    SERVER = "server_error"


class VerifyFailure(Model):
    stage: Stage
    code: FailureCode
    message: str
    hint: str
    retriable: bool = False


_APP_PASSWORD = re.compile(
    r"application-specific password|app[- ]password|5\.7\.9|web ?login required", re.I
)
_OAUTH2 = re.compile(
    r"basic authentication is disabled|5\.7\.139|oauth|use a more secure app", re.I
)

_HINTS = {
    FailureCode.DNS: "The host name does not exist: check its spelling.",
    FailureCode.REFUSED: "Nothing listens on that port: check the port and the security "
    "(993 is IMAP over TLS, 143 IMAP with STARTTLS; 465 SMTP over TLS, 587 with STARTTLS).",
    FailureCode.UNREACHABLE: "The server cannot be reached from here: check the host, the "
    "port and any firewall.",
    FailureCode.TLS: "The TLS handshake failed: the security setting may not match the port, "
    "or the server's certificate is not trusted (a private server needs its CA configured).",
    FailureCode.IMPLICIT_TLS: "This port expects TLS from the first byte (implicit TLS, "
    "RFC 8314), not STARTTLS: set security to tls, or use the STARTTLS port (IMAP 143, "
    "SMTP 587).",
    FailureCode.TIMEOUT: "The server did not answer in time: check the host and port, or "
    "try again later.",
    FailureCode.AUTH: "The server refused the user name or password.",
    FailureCode.APP_PASSWORD: "This provider needs an app password, not the account's normal "
    "password: create one in the provider's security settings.",
    FailureCode.OAUTH2: "This provider accepts only OAuth2 sign-in for IMAP/SMTP, not a password.",
    FailureCode.INSECURE: "Plaintext connections are allowed only to this machine: choose "
    "TLS or STARTTLS.",
    FailureCode.SERVER: "The server answered with an error.",
}


class ImplicitTlsPort(Exception):
    """The port answered a TLS ClientHello instead of greeting (:mod:`.tls_probe`)."""

    def __init__(self, port: int):
        super().__init__(
            f"port {port} speaks TLS from the first byte: set security to tls "
            "(implicit TLS, RFC 8314)"
        )
        self.port = port


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _auth_code(text: str, preset: Preset | None) -> FailureCode:
    if _APP_PASSWORD.search(text):
        return FailureCode.APP_PASSWORD
    if _OAUTH2.search(text):
        return FailureCode.OAUTH2
    if preset is not None and preset.auth == (AuthKind.OAUTH2,):
        return FailureCode.OAUTH2
    if preset is not None and AuthKind.PASSWORD not in preset.auth:
        return FailureCode.APP_PASSWORD
    return FailureCode.AUTH


def _code(exc: BaseException, preset: Preset | None) -> FailureCode | None:
    if isinstance(exc, ImplicitTlsPort):
        return FailureCode.IMPLICIT_TLS
    if isinstance(exc, AuthenticationFailed | aiosmtplib.SMTPAuthenticationError):
        return _auth_code(str(exc), preset)
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code in (530, 534, 535):
        # RFC 4954 section 6: 534 "mechanism too weak", 535 credentials invalid.
        return _auth_code(exc.message, preset)
    if isinstance(exc, InsecureConnection):
        return FailureCode.INSECURE
    if isinstance(exc, socket.gaierror):
        return FailureCode.DNS
    if isinstance(exc, ConnectionRefusedError):
        return FailureCode.REFUSED
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return FailureCode.TLS
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return FailureCode.TIMEOUT
    return None


_PROVIDER_CODES = (FailureCode.APP_PASSWORD, FailureCode.OAUTH2)


def classify(exc: BaseException, stage: Stage, preset: Preset | None = None) -> VerifyFailure:
    """The failure of verifying ``stage``, for the user."""
    code = next((c for e in _chain(exc) if (c := _code(e, preset)) is not None), None)
    if code is None:
        if any(isinstance(e, ImapUnavailable | aiosmtplib.SMTPException) for e in _chain(exc)):
            code = FailureCode.SERVER
        elif any(isinstance(e, OSError) for e in _chain(exc)):
            code = FailureCode.UNREACHABLE
        else:
            code = FailureCode.SERVER
    detail = str(exc) or type(exc).__name__
    hint = _HINTS[code]
    if preset is not None and preset.note and code in _PROVIDER_CODES:
        hint = f"{hint} {preset.note}"
    retriable = code in (FailureCode.TIMEOUT, FailureCode.UNREACHABLE, FailureCode.SERVER)
    return VerifyFailure(
        stage=stage, code=code, message=f"{stage.upper()}: {detail}", hint=hint, retriable=retriable
    )
