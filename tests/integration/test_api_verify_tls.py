"""STARTTLS against a port that speaks TLS from the first byte (IMAP 993, SMTP 465):
verifying says which setting to change, at once, instead of waiting out its timeout
for a greeting that never comes. Against real listeners: Dovecot's imaps port, and a
TLS-only SMTP listener of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devservers._tls import SelfSignedCert
from services.api.tls_probe import refuse_implicit_tls
from services.api.verify_errors import ImplicitTlsPort
from tests.fixtures.api import running_api
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

HINT = "speaks TLS from the first byte: set security to tls (implicit TLS, RFC 8314)"


@contextlib.asynccontextmanager
async def listener(
    greeting: bytes, *, tls: ssl.SSLContext | None = None, delay: float = 0.0
) -> AsyncIterator[int]:
    """A server on a free port that sends ``greeting`` (after ``delay``; over TLS from the
    first byte with ``tls``), then holds the connection open."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            await asyncio.sleep(delay)
            if greeting:
                writer.write(greeting)
                await writer.drain()
            await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    async with server:
        yield server.sockets[0].getsockname()[1]


def tls_server(tmp_path: Path) -> ssl.SSLContext:
    cert = SelfSignedCert.create(tmp_path / "cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)
    return context


async def test_starttls_on_an_implicit_tls_port_says_so_at_once(env: Env, tmp_path: Path) -> None:
    jana = env.mail_user("jana")
    imap = {"host": "127.0.0.1", "username": jana.address, "security": "starttls"}
    async with (
        listener(b"220 smtp.example.com ESMTP\r\n", tls=tls_server(tmp_path)) as smtps_port,
        running_api(env) as api,  # the default timeout: 20 s per command
    ):
        client = api.client("u-jana")
        assert api.app.settings.api_verify_timeout_s == 20

        started = time.monotonic()
        wrong_imap = await client.post(
            "/v1/accounts/verify",
            json={"imap": {**imap, "port": env.dovecot.imaps_port}, "password": jana.password},
        )
        took = time.monotonic() - started
        assert wrong_imap.status_code == 422, wrong_imap.text
        assert wrong_imap.headers["content-type"] == "application/problem+json"
        failure = wrong_imap.json()["failure"]
        assert failure["code"] == "implicit_tls_port" and failure["stage"] == "imap"
        assert failure["message"] == f"IMAP: port {env.dovecot.imaps_port} {HINT}"
        assert "set security to tls" in failure["hint"] and failure["retriable"] is False
        assert took < 12, f"{took:.1f} s: it waited for the timeout"

        # The same on SMTP (465 given as STARTTLS), after IMAP verified with STARTTLS.
        wrong_smtp = await client.post(
            "/v1/accounts/verify",
            json={
                "imap": {**imap, "port": env.dovecot.imap_port},
                "smtp": {**imap, "port": smtps_port},
                "password": jana.password,
            },
        )
        assert wrong_smtp.status_code == 422, wrong_smtp.text
        failure = wrong_smtp.json()["failure"]
        assert (failure["stage"], failure["code"]) == ("smtp", "implicit_tls_port")
        assert failure["message"] == f"SMTP: port {smtps_port} {HINT}"

        # STARTTLS where it belongs still verifies.
        right = await client.post(
            "/v1/accounts/verify",
            json={
                "imap": {**imap, "port": env.dovecot.imap_port},
                "smtp": {**imap, "port": env.smtp.port},
                "password": jana.password,
            },
        )
        assert right.status_code == 200, right.text


async def test_the_probe_tells_tls_from_a_slow_greeting_and_from_silence(tmp_path: Path) -> None:
    async with listener(b"", tls=tls_server(tmp_path)) as port:
        with pytest.raises(ImplicitTlsPort, match=re.escape(f"port {port} {HINT}")):
            await refuse_implicit_tls("127.0.0.1", port, timeout=10, greeting_wait=0.2)
    # A server slower to greet than the probe waits: the ClientHello is answered by the
    # greeting, not a TLS record; the verification goes on.
    async with listener(b"* OK slow IMAP\r\n", delay=1.0) as port:
        await refuse_implicit_tls("127.0.0.1", port, timeout=10, greeting_wait=0.2)
    async with listener(b"* OK IMAP ready\r\n") as port:
        await refuse_implicit_tls("127.0.0.1", port, timeout=10)
    # Nothing at all: a timeout (retriable, as before), within the verification's timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await refuse_implicit_tls(
            "127.0.0.1", silent.getsockname()[1], timeout=1.5, greeting_wait=0.5
        )
    assert time.monotonic() - started < 5
    silent.close()
