"""STARTTLS (RFC 2595, RFC 3501 6.2.1): TLS begun on the plaintext connection."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import aioimaplib

from services.imap.errors import ImapUnavailable

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def starttls(imap: ImapSession, ssl_context: ssl.SSLContext) -> None:
    """RFC 2595: STARTTLS, then a new TLS layer on the same socket, then CAPABILITY again."""
    protocol = imap.client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapUnavailable(f"{imap.endpoint.host} does not offer STARTTLS")
    response = await protocol.execute(
        aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    )
    if response.result != "OK":
        raise ImapUnavailable(f"STARTTLS refused: {response.lines}")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(
        protocol.transport, protocol, ssl_context, server_hostname=imap.endpoint.host
    )
    await protocol.capability()
