"""Filing a sent message in the account's Sent folder, so Outlook or Thunderbird shows it.

Servers that file sent mail themselves (Gmail does) already hold it: the folder is
searched by Message-ID first, and only a message not found is appended, with ``\\Seen``
(the user wrote it) and the time it was sent as its INTERNALDATE (RFC 3501 6.3.11).
Searching first also makes filing idempotent: after a crash between APPEND and the
ledger update, the next try finds our own copy instead of appending a second one.

The IMAP session (and its LIST of folders) comes from a per-account pool, so a burst
logs in once. The folder is EXAMINEd afresh for every search (RFC 3501 6.3.2), so
copies the server or another replica filed meanwhile are seen. A reused session that
fails is thrown away and the same step is done once more over a new one: searching
first makes that safe.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeVar

import aioimaplib

from schemas.account import AccountRecord
from services.imap import (
    AuthenticationFailed,
    Credentials,
    Folder,
    FolderError,
    ImapSession,
    ImapUnavailable,
    quote,
    search_date,
)
from services.sender.errors import FilingFailed
from services.sender.pool import Pool
from services.sender.sent_folder import sent_folder

# The session's failures, not the request's: a connection lost mid-command ends it with
# aioimaplib's Abort, one lost unnoticed with its CommandTimeout.
_LINK_FAILURES = (ImapUnavailable, OSError, TimeoutError, aioimaplib.AioImapException)
_IMAP_FAILURES = (AuthenticationFailed, FolderError, *_LINK_FAILURES)
T = TypeVar("T")


@dataclass(frozen=True)
class Filed:
    folder: Folder
    uidvalidity: int
    uid: int
    appended: bool  # False: the server (or an earlier try) had filed it already


@dataclass(frozen=True)
class ImapLink:
    """A logged-in session and the folders it listed when it was opened."""

    session: ImapSession
    folders: list[Folder]


async def close_link(link: ImapLink) -> None:
    await link.session.close()


class SentFiler:
    def __init__(
        self,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext,
        credentials: Credentials,
        pool: Pool[ImapLink],
    ):
        self._timeout = timeout
        self._ssl = ssl_context
        self._credentials = credentials
        self._pool = pool

    def hold(self, account_id: str) -> AbstractAsyncContextManager[None]:
        """Work for ``account_id`` is in hand: its session stays open until let go."""
        return self._pool.hold(account_id)

    async def file(
        self, account: AccountRecord, message_id: str, message: bytes, sent_at: dt.datetime
    ) -> Filed:
        async def file_in(link: ImapLink) -> Filed:
            folder = sent_folder(link.folders, account.sent_folder)
            if folder is None:
                wanted = account.sent_folder or "a folder marked \\Sent"
                raise FilingFailed(f"no Sent folder: {wanted} not found on the server")
            imap = link.session
            found = await self._search(imap, folder, message_id, sent_at)
            if found is not None:
                return Filed(folder, found[0], found[1], appended=False)
            appended = await imap.append(folder, message, "\\Seen", sent_at)
            if appended is None:  # no UIDPLUS: look our copy up
                appended = await self._search(imap, folder, message_id, sent_at)
                if appended is None:
                    raise FilingFailed("APPEND succeeded but the copy cannot be found")
            return Filed(folder, appended[0], appended[1], appended=True)

        return await self._over_link(account, file_in, "filing in Sent failed")

    async def find(
        self, account: AccountRecord, message_id: str, sent_at: dt.datetime
    ) -> Filed | None:
        """The message in Sent, if the server (or an earlier try) filed it."""

        async def look_in(link: ImapLink) -> Filed | None:
            folder = sent_folder(link.folders, account.sent_folder)
            if folder is None:
                return None
            found = await self._search(link.session, folder, message_id, sent_at)
            return Filed(folder, found[0], found[1], appended=False) if found else None

        return await self._over_link(account, look_in, "looking in Sent failed")

    async def _over_link(
        self, account: AccountRecord, step: Callable[[ImapLink], Awaitable[T]], what: str
    ) -> T:
        async def open_() -> ImapLink:
            credential = await self._credentials.login(account)
            session = ImapSession(
                account.imap, credential, timeout=self._timeout, ssl_context=self._ssl
            )
            try:
                await session.open()
                return ImapLink(session, await session.list_folders())
            except BaseException:
                await session.close()
                raise

        identity = (account.imap, account.secret)
        try:
            for fresh in (False, True):
                async with self._pool.connection(
                    account.account_id, identity, open_, fresh=fresh
                ) as lease:
                    try:
                        if not lease.conn.session.connected:
                            raise ImapUnavailable("the connection was closed while idle")
                        return await step(lease.conn)
                    except _LINK_FAILURES:
                        if fresh or not lease.reused:
                            raise
                        lease.discard()  # dropped while idle, most likely: once more
            raise AssertionError("unreachable: the fresh attempt returns or raises")
        except _IMAP_FAILURES as exc:
            raise FilingFailed(f"{what}: {exc}") from None

    @staticmethod
    async def _search(
        imap: ImapSession, folder: Folder, message_id: str, sent_at: dt.datetime
    ) -> tuple[int, int] | None:
        status = await imap.examine(folder)
        # RFC 3501 6.4.4: HEADER matches a substring; the angle brackets anchor it. SINCE
        # (by INTERNALDATE, which the server's index holds) keeps a Sent folder of years
        # from being read header by header on every send; a day's margin covers time zones.
        day = sent_at - dt.timedelta(days=1)
        since = search_date(day)
        uids = await imap.uid_search(f"SINCE {since} HEADER Message-ID {quote(message_id)}")
        return (status.uidvalidity, min(uids)) if uids else None
