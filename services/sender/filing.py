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

An account files one batch at a time. Messages that reach filing meanwhile wait and
then go together (:mod:`.file_batches`): one EXAMINE, one SEARCH for all of them, and
one APPEND of all (MULTIAPPEND, RFC 3502) when the server has it. In a burst this costs
Dovecot a sixth of the CPU of a search and an append each (bench/RESULTS.md, Sender).
Whatever is not plain goes one message at a time, as a lone message does: a copy found
already (the server files its own, or an earlier try), a server without MULTIAPPEND or
APPENDUID, a MULTIAPPEND refused (all or nothing: then each message is appended alone,
so one the server will not take fails on its own).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TypeVar

import aioimaplib

from schemas.account import AccountRecord
from services.common.errors import MailsyncError
from services.imap import (
    AuthenticationFailed,
    Credentials,
    Folder,
    FolderError,
    ImapSession,
    ImapUnavailable,
)
from services.sender.errors import FilingFailed
from services.sender.file_batches import search_any, take_batch
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


@dataclass(frozen=True, eq=False)
class _Pending:
    """A message waiting to be filed, and what its caller awaits."""

    account: AccountRecord
    message_id: str
    message: bytes
    sent_at: dt.datetime
    done: asyncio.Future[Filed]


@dataclass(eq=False)
class _Queue:
    """An account's messages waiting to be filed; one batch of them filed at a time."""

    waiting: list[_Pending] = field(default_factory=list)
    # Two at a time were measured no faster (bench/RESULTS.md, Sender), and one lets
    # the most messages wait for the next batch.
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    callers: int = 0  # in file() now: the queue is dropped when the last one leaves


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
        self._queues: dict[str, _Queue] = {}

    def hold(self, account_id: str) -> AbstractAsyncContextManager[None]:
        """Work for ``account_id`` is in hand: its session stays open until let go."""
        return self._pool.hold(account_id)

    async def file(
        self, account: AccountRecord, message_id: str, message: bytes, sent_at: dt.datetime
    ) -> Filed:
        """File ``message`` in the account's Sent folder (with others of the account
        waiting meanwhile); :class:`FilingFailed` (or the credential's error) if not."""
        done: asyncio.Future[Filed] = asyncio.get_running_loop().create_future()
        mine = _Pending(account, message_id, message, sent_at, done)
        queue = self._queues.setdefault(account.account_id, _Queue())
        queue.waiting.append(mine)
        queue.callers += 1
        try:
            async with queue.turn:
                while mine in queue.waiting:  # in no batch yet: file the oldest waiting
                    # One account record per batch (it may change mid-burst: the oldest's).
                    head = queue.waiting[0].account
                    batch, _ = take_batch([p for p in queue.waiting if p.account == head])
                    queue.waiting = [p for p in queue.waiting if p not in batch]
                    await self._file_batch(batch)
            return await done  # filed in our batch, or in another caller's
        finally:
            if mine in queue.waiting:  # cancelled before its turn
                queue.waiting.remove(mine)
            if not done.done():
                done.cancel()
            elif not done.cancelled():
                done.exception()  # told (or nobody is left to tell)
            queue.callers -= 1
            if not queue.callers:
                del self._queues[account.account_id]

    async def _file_batch(self, batch: list[_Pending]) -> None:
        """File ``batch``, each caller's outcome on its future. Cut short (the caller
        filing it was cancelled: the replica stops), the others are told to try again."""
        try:
            outcomes: Sequence[Filed | MailsyncError] = await self._over_link(
                batch[0].account,
                lambda link: self._file_in(link, batch),
                "filing in Sent failed",
            )
        except MailsyncError as exc:
            outcomes = [exc] * len(batch)
        except BaseException:
            outcomes = [FilingFailed("filing in Sent was interrupted")] * len(batch)
            raise
        finally:
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.done.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(outcome, Filed):
                    pending.done.set_result(outcome)
                else:
                    pending.done.set_exception(outcome)

    async def _file_in(
        self, link: ImapLink, batch: Sequence[_Pending]
    ) -> list[Filed | MailsyncError]:
        account = batch[0].account
        folder = sent_folder(link.folders, account.sent_folder)
        if folder is None:
            wanted = account.sent_folder or "a folder marked \\Sent"
            raise FilingFailed(f"no Sent folder: {wanted} not found on the server")
        imap = link.session
        if len(batch) > 1:
            await imap.examine(folder)
            criteria = search_any([p.message_id for p in batch], min(p.sent_at for p in batch))
            if not await imap.uid_search(criteria):  # none filed yet
                return await self._append_batch(imap, folder, batch)
        return [await self._file_one(imap, folder, p, search=True) for p in batch]

    async def _append_batch(
        self, imap: ImapSession, folder: Folder, batch: Sequence[_Pending]
    ) -> list[Filed | MailsyncError]:
        """Append messages known not to be in ``folder``: in one APPEND if the server
        can, else (or if it refused them all) one at a time."""
        search = False
        if imap.can_append_many:
            try:
                appended = await imap.append_many(
                    folder, [(p.message, "(\\Seen)", p.sent_at) for p in batch]
                )
            except FolderError:  # all or nothing: each alone, so a bad one fails alone
                appended = None
            else:
                if appended is None:  # no APPENDUID: find each copy
                    search = True
            if appended is not None:
                uidvalidity, uids = appended
                return [Filed(folder, uidvalidity, uid, appended=True) for uid in uids]
        return [await self._file_one(imap, folder, p, search=search) for p in batch]

    async def _file_one(
        self, imap: ImapSession, folder: Folder, pending: _Pending, *, search: bool
    ) -> Filed | MailsyncError:
        """One message: found in Sent (``search``), else appended; a refusal is its own
        failure, not the batch's."""
        message_id, sent_at = pending.message_id, pending.sent_at
        if search:
            found = await self._search(imap, folder, message_id, sent_at)
            if found is not None:
                return Filed(folder, found[0], found[1], appended=False)
        try:
            appended = await imap.append(folder, pending.message, "\\Seen", sent_at)
        except FolderError as exc:
            return FilingFailed(f"filing in Sent failed: {exc}")
        if appended is None:  # no UIDPLUS: look our copy up
            appended = await self._search(imap, folder, message_id, sent_at)
            if appended is None:
                return FilingFailed("APPEND succeeded but the copy cannot be found")
        return Filed(folder, appended[0], appended[1], appended=True)

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
        uids = await imap.uid_search(search_any([message_id], sent_at))
        return (status.uidvalidity, min(uids)) if uids else None
