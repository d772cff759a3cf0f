"""Does a port speak TLS from the first byte? Asked before a STARTTLS (or plaintext)
verification, which would otherwise wait its whole timeout for a greeting that an
implicit-TLS port (IMAP 993, SMTP 465; RFC 8314) never sends: such a server waits for
the client's TLS ClientHello, and the client waits for the server's greeting.

IMAP and SMTP servers speak first (RFC 9051 section 7.1, RFC 5321 section 3.1). So the
probe connects and listens briefly: a greeting means a plaintext protocol, nothing more
to learn. Silence, and it sends a TLS ClientHello: a TLS server answers with a TLS
record (a ServerHello or an alert), which settles it; a slow plaintext server greets
in the end (and the verification goes on, on a new connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from services.api.verify_errors import ImplicitTlsPort

# How long a server may take to greet before the probe asks it for TLS: servers greet
# at once, while a client waits up to a whole verification timeout otherwise.
GREETING_WAIT_S = 3.0

# TLS record content types (RFC 8446 section 5.1 / RFC 5246 section 6.2.1):
# change_cipher_spec, alert, handshake, application_data; the record's major version
# is 3 from SSL 3.0 to TLS 1.3.
_RECORD_TYPES = frozenset({20, 21, 22, 23})


def speaks_tls(first: bytes) -> bool:
    """The first bytes a server sent are a TLS record header (pure)."""
    return len(first) >= 2 and first[0] in _RECORD_TYPES and first[1] == 3


def client_hello(host: str) -> bytes:
    """The bytes of a TLS ClientHello to ``host`` (nothing is verified: the answer's first
    bytes are all the probe reads)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def _first_bytes(reader: asyncio.StreamReader, wait: float) -> bytes | None:
    """What the server sends within ``wait`` seconds (b"": it closed), or None."""
    try:
        return await asyncio.wait_for(reader.read(64), max(wait, 0.0))
    except TimeoutError:
        return None
    except ConnectionResetError:
        return b""  # closed on us: not a TLS server's answer; the session will say more


async def refuse_implicit_tls(
    host: str, port: int, *, timeout: float, greeting_wait: float = GREETING_WAIT_S
) -> None:
    """Raise :class:`ImplicitTlsPort` when ``host:port`` speaks TLS from the first byte,
    TimeoutError when it says nothing at all within ``timeout``; connection errors as
    they come. Return when it greets (or closes): the verification goes on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        first = await _first_bytes(reader, min(greeting_wait, deadline - loop.time()))
        if first is not None:
            return  # it spoke first: IMAP or SMTP in plaintext, as expected
        writer.write(client_hello(host))
        await writer.drain()
        answer = await _first_bytes(reader, deadline - loop.time())
        if answer is None:
            raise TimeoutError(f"{host}:{port} sent no greeting within {timeout:g} s")
        if speaks_tls(answer):
            raise ImplicitTlsPort(port)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
