"""The bound for opening many IMAP sessions: a bare client, no mailsync code.

How long this machine takes to bring N accounts' sessions to IDLE when nothing else is
in the way: for each account one implicit-TLS connection (RFC 8314), the greeting,
``LOGIN``, ``SELECT INBOX``, ``IDLE`` (RFC 2177) until the server's continuation, on
asyncio with one ``ssl.SSLContext`` verifying the server's certificate (as the fetcher
does), ``concurrency`` sessions being opened at a time. What a fetcher replica does for
the accounts a rebalance moves to it, or for all of them after a server restart, can be
no faster on the same machine; :mod:`bench.scale` gives its figures over this one.

The concurrency that suits the machine is found first (:func:`best_concurrency`: a few
levels, a sample of sessions each, opened and closed); then the N sessions are opened at
it, held until the last is in IDLE, and closed (``DONE``, ``LOGOUT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from devservers import MailUser

LEVELS = (8, 32, 128, 512)
SAMPLE = 400  # sessions per level tried
TIMEOUT_S = 60.0  # one session's opening, at most
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Opened:
    sessions: int = 0
    seconds: float = 0.0  # the first connect until the last session was in IDLE
    concurrency: int = 0
    client_cpu_s: float = 0.0  # this process's CPU meanwhile (the client alone runs)
    failed: int = 0
    tried: dict[int, float] = field(default_factory=dict)  # concurrency -> sessions/s

    @property
    def per_s(self) -> float:
        return self.sessions / self.seconds if self.seconds else 0.0


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def command(self, tag: str, text: str) -> None:
        self.writer.write(f"{tag} {text}\r\n".encode())
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("IMAP server closed the connection")
            if line.startswith(b"+") and text == "IDLE":
                return
            if line.startswith(tag.encode() + b" "):
                if not line.startswith(tag.encode() + b" OK"):
                    raise ConnectionError(line.decode(errors="replace").strip())
                return

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(b"DONE\r\nz LOGOUT\r\n")
            await asyncio.wait_for(self.writer.drain(), 5)
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)


async def _open(host: str, port: int, tls: ssl.SSLContext, user: MailUser) -> _Session:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    session = _Session(reader, writer)
    try:
        await reader.readline()  # the greeting
        await session.command("a", f'LOGIN "{user.address}" "{user.password}"')
        await session.command("b", "SELECT INBOX")
        await session.command("c", "IDLE")
    except BaseException:
        await session.close()
        raise
    return session


def context(cafile: str) -> ssl.SSLContext:
    """One context for every session (verifying, as the fetcher's)."""
    return ssl.create_default_context(cafile=cafile)


async def open_sessions(
    host: str, port: int, tls: ssl.SSLContext, people: Sequence[MailUser], concurrency: int
) -> tuple[Opened, list[_Session]]:
    """Open one session per user, ``concurrency`` at a time, until the last is in IDLE;
    the caller closes them (:func:`close_all`). Failures are counted, not retried."""
    gate = asyncio.Semaphore(concurrency)
    held: list[_Session] = []
    out = Opened(sessions=0, concurrency=concurrency)

    async def one(user: MailUser) -> None:
        async with gate:
            try:
                held.append(await asyncio.wait_for(_open(host, port, tls, user), TIMEOUT_S))
            except (OSError, ConnectionError, TimeoutError, ssl.SSLError):
                out.failed += 1

    cpu, began = time.process_time(), time.monotonic()
    await asyncio.gather(*(one(u) for u in people))
    out.seconds = time.monotonic() - began
    out.client_cpu_s = time.process_time() - cpu
    out.sessions = len(held)
    return out, held


async def close_all(held: Sequence[_Session]) -> None:
    await asyncio.gather(*(s.close() for s in held))


async def best_concurrency(
    host: str, port: int, tls: ssl.SSLContext, people: Sequence[MailUser]
) -> dict[int, float]:
    """Sessions per second at each of :data:`LEVELS`, on a sample of ``people``."""
    sample = list(people[:SAMPLE])
    tried = {}
    for level in LEVELS:
        opened, held = await open_sessions(host, port, tls, sample, level)
        await close_all(held)
        tried[level] = opened.per_s
        await asyncio.sleep(1)  # the sessions' processes wind down
    return tried
