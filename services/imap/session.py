"""One IMAP connection for one account: open (TLS or STARTTLS, login, the capabilities as the
server volunteers them or CAPABILITY, ENABLE),
the commands (each in :mod:`services.imap.commands`), close. A thin layer over aioimaplib;
every decision lives elsewhere.

Logs in with LOGIN and a password, or with ``AUTHENTICATE XOAUTH2``/``OAUTHBEARER``
(RFC 7628) and an OAuth2 access token the caller got from the token provider.

Folders are opened with EXAMINE (read-only, RFC 3501 6.3.2) and bodies fetched with
``BODY.PEEK[]`` (6.4.5), so syncing never changes \\Seen or \\Recent in the mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from schemas.account import Endpoint, Security
from services.common import metrics
from services.common.loopback import is_loopback
from services.common.oauth2 import AccessToken
from services.imap.capabilities import adopt
from services.imap.commands.append import Appended, append, append_many, can_append_many
from services.imap.commands.enable import defer_condstore
from services.imap.commands.fetch import (
    all_flags,
    flag_changes,
    headers,
    uid_fetch,
    uid_fetch_each,
)
from services.imap.commands.idle import IdleNews, examine_and_idle, idle, idle_until
from services.imap.commands.list import list_folders
from services.imap.commands.list_status import Chosen, list_chosen, list_status
from services.imap.commands.login import login
from services.imap.commands.move import move
from services.imap.commands.notify import defer_notify, notify
from services.imap.commands.search import uid_search
from services.imap.commands.select import examine, select
from services.imap.commands.starttls import starttls
from services.imap.commands.status import status, status_items
from services.imap.commands.store import add_flags
from services.imap.copyuid import CopyUid
from services.imap.errors import ImapUnavailable, InsecureConnection
from services.imap.fetch_response import FetchedMessage, FlagUpdate
from services.imap.folder_status import FolderStatus
from services.imap.folders import Folder
from services.imap.protocol import FastIMAP4
from services.imap.tls_buffer import (
    BULK_FETCH_FROM,
    BULK_READ_BUFFER,
    IDLE_READ_BUFFER,
    set_read_buffer,
)

log = logging.getLogger("mailsync.fetcher.imap")


class ImapSession:
    """One authenticated IMAP connection. Use as ``async with ImapSession(...) as imap``."""

    def __init__(
        self,
        endpoint: Endpoint,
        credential: str | AccessToken,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        read_buffer: int | None = None,
    ):
        if endpoint.security is Security.PLAIN and not is_loopback(endpoint.host):
            raise InsecureConnection(
                f"plaintext IMAP to {endpoint.host} refused: use TLS or STARTTLS"
            )
        self.endpoint = endpoint
        self._credential = credential  # a password, or an OAuth2 access token
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()
        # Bytes of asyncio's TLS read buffer (see tls_buffer); None: asyncio's own.
        self._read_buffer = read_buffer
        self._client: FastIMAP4 | None = None
        self._counted = False  # in mailsync_imap_connections
        self.selected: str | None = None

    @property
    def client(self) -> FastIMAP4:
        if self._client is None:
            raise ImapUnavailable("IMAP session is not open")
        return self._client

    @property
    def connected(self) -> bool:
        """False once the connection is gone (a kick, the server's idle timeout)."""
        transport = self._client.protocol.transport if self._client is not None else None
        return transport is not None and not transport.is_closing()

    @property
    def timeout(self) -> float:
        """Seconds a command may take (aioimaplib's own, AUTHENTICATE's, IDLE's DONE)."""
        return self._timeout

    def has(self, capability: str) -> bool:
        return bool(self.client.has_capability(capability))

    async def __aenter__(self) -> ImapSession:
        await self.open()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        ep = self.endpoint
        client = FastIMAP4(
            ep.host,
            ep.port,
            timeout=self._timeout,
            ssl_context=self._ssl if ep.security is Security.TLS else None,
        )
        self._client = client
        await client.wait_hello_from_server()
        if ep.security is Security.STARTTLS:
            await starttls(self, self._ssl)
        if self._read_buffer is not None:
            set_read_buffer(client.protocol.transport, self._read_buffer)
        completion = await login(self, self._credential)
        metrics.imap_connected()
        self._counted = True
        # Capabilities change after login (RFC 3501 6.2.3: CONDSTORE, MOVE... appear now):
        # those of the login's tagged OK when it lists them (.capabilities), else asked.
        if not adopt(client.protocol, completion):
            await client.protocol.capability()
        defer_condstore(self)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._counted:
            self._counted = False
            metrics.imap_disconnected()
        try:
            if client.has_pending_idle():
                # Left in IDLE by a stopping account (commands/idle.py): no LOGOUT, which
                # could only follow a DONE; closing the connection ends the session.
                client.forget_idle()
            elif client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 5)
        except Exception as exc:  # the connection may already be gone; nothing to save
            log.debug("logout failed: %r", exc)
        finally:
            transport = client.protocol.transport
            if transport is not None:
                transport.close()

    # The commands: each method calls the function of its name in its family's module
    # of services.imap.commands.

    async def list_folders(self) -> list[Folder]:
        return await list_folders(self)

    async def examine(self, folder: Folder) -> FolderStatus:
        return await examine(self, folder)

    async def list_chosen(self, names: list[str]) -> Chosen | None:
        return await list_chosen(self, names)

    async def select(self, folder: Folder) -> FolderStatus:
        """SELECT read-write: only to act on processed mail, never to sync."""
        return await select(self, folder)

    async def status(self, folder: Folder) -> FolderStatus:
        return await status(self, folder)

    async def status_items(self, folder: Folder, items: str) -> dict[str, int]:
        return await status_items(self, folder, items)

    async def list_status(self, folders: list[Folder]) -> dict[str, FolderStatus]:
        """Only where ``has("LIST-STATUS")``; what is missing, ask with :meth:`status`."""
        return await list_status(self, folders)

    async def uid_search(self, criteria: str) -> list[int]:
        return await uid_search(self, criteria)

    async def uid_fetch(self, uids: list[int]) -> list[FetchedMessage]:
        with self._read_buffer_of(BULK_READ_BUFFER if len(uids) >= BULK_FETCH_FROM else None):
            return await uid_fetch(self, uids)

    async def uid_fetch_each(self, uids: list[int], each: Callable[[FetchedMessage], None]) -> None:
        with self._read_buffer_of(BULK_READ_BUFFER if len(uids) >= BULK_FETCH_FROM else None):
            await uid_fetch_each(self, uids, each)

    def hold(self) -> None:
        """Read nothing more from the server until :meth:`release` (flow control: the
        server is held back by TCP; a pending FETCH does not time out meanwhile)."""
        if self._client is not None:
            self._client.protocol.hold()

    def release(self) -> None:
        if self._client is not None:  # closed meanwhile: nothing left to read
            self._client.protocol.release()

    async def headers(self, fields: str) -> list[FetchedMessage]:
        return await headers(self, fields)

    async def all_flags(self) -> list[FlagUpdate]:
        return await all_flags(self)

    async def flag_changes(self, last_uid: int, since_modseq: int) -> list[FlagUpdate]:
        return await flag_changes(self, last_uid, since_modseq)

    async def add_flags(self, uids: list[int], flags: str) -> None:
        await add_flags(self, uids, flags)

    async def move(self, uids: list[int], target: Folder) -> CopyUid | None:
        return await move(self, uids, target)

    async def idle(self, seconds: float) -> bool:
        with self._read_buffer_of(IDLE_READ_BUFFER):
            return await idle(self, seconds)

    async def idle_until(self, seconds: float, wake: asyncio.Event | None = None) -> IdleNews:
        with self._read_buffer_of(IDLE_READ_BUFFER):
            return await idle_until(self, seconds, wake)

    async def examine_and_idle(
        self,
        folder: Folder,
        seconds: float,
        wake: asyncio.Event | None = None,
        *,
        arrived: Callable[[FolderStatus], bool],
        stop: Callable[[], bool] = lambda: False,
    ) -> IdleNews:
        """EXAMINE and IDLE in one write (see :func:`.commands.idle.examine_and_idle`)."""
        with self._read_buffer_of(IDLE_READ_BUFFER):
            return await examine_and_idle(self, folder, seconds, wake, arrived=arrived, stop=stop)

    @contextlib.contextmanager
    def _read_buffer_of(self, size: int | None) -> Iterator[None]:
        """The TLS read buffer at ``size`` for one command, back to the connection's own
        after (:mod:`.tls_buffer`): an idle account holds 1 KiB there instead of 16, an
        import reads 256 KiB at a time. None, or a connection that keeps asyncio's
        buffer: left as it is."""
        if size is None or self._read_buffer is None or self._client is None:
            yield
            return
        set_read_buffer(self._client.protocol.transport, size)
        try:
            yield
        finally:
            if self._client is not None:
                set_read_buffer(self._client.protocol.transport, self._read_buffer)

    async def notify(self, others: list[Folder]) -> str | None:
        return await notify(self, others)

    def defer_notify(self, others: list[Folder]) -> asyncio.Future[str | None]:
        """NOTIFY with the next command (see :func:`.commands.notify.defer_notify`)."""
        return defer_notify(self, others)

    async def append(
        self, folder: Folder, message: bytes, flags: str, when: dt.datetime
    ) -> tuple[int, int] | None:
        return await append(self, folder, message, flags, when)

    @property
    def can_append_many(self) -> bool:
        """Several messages in one APPEND (MULTIAPPEND with LITERAL+)."""
        return can_append_many(self)

    async def append_many(
        self, folder: Folder, messages: Sequence[Appended]
    ) -> tuple[int, list[int]] | None:
        return await append_many(self, folder, messages)
