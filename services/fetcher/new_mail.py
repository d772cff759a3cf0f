"""A folder's new mail: every message above the cursor (and every retry due), fetched
and published in batches, the cursor advanced after each batch Kafka acknowledged.

What to fetch is decided by :mod:`.sync` (pure); this is the I/O, pipelined.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from schemas.account import AccountRecord
from schemas.mailbox_state import FolderCursor, FolderProgress
from services.accounts.tombstones import TombstoneStore
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor_rules import Published
from services.fetcher.publish import Publisher
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.sync import batches, retention_floor, search_criteria, select_uids
from services.imap import Folder, FolderStatus, ImapSession, expand_uid_set


@dataclass
class _Progress:
    """The folder's progress: what is synced already is done (it counts the folder, not
    the pass)."""

    done: int
    total: int


class NewMail:
    def __init__(
        self,
        account: AccountRecord,
        *,
        settings: FetcherSettings,
        cursors: AccountCursors,
        states: StateStore,
        publisher: Publisher,
        tombstones: TombstoneStore,
    ):
        self._account = account
        self._settings = settings
        self._cursors = cursors
        self._states = states
        self._publisher = publisher
        self._tombstones = tombstones

    async def fetch(
        self, imap: ImapSession, folder: Folder, status: FolderStatus, prev: FolderCursor | None
    ) -> tuple[set[int], tuple[int, ...]]:
        """Publish every message above ``prev`` (and every retry due); return the UIDs
        published and those the server listed but did not return. The caller holds the
        folder's lock; ``prev`` is its cursor, under the folder's current UIDVALIDITY."""
        acc = self._account
        last_uid = prev.last_uid if prev else 0
        retry = tuple(prev.missing_uids) if prev else ()
        floor = retention_floor(acc.retention_days, dt.datetime.now(dt.UTC))
        found = await imap.uid_search(search_criteria(last_uid, acc.import_window, floor))
        todo = sorted(set(select_uids(found, last_uid, acc.import_window)) | set(retry))
        if not todo:
            return set(), ()
        # Erased or expired while still on the server: counted as seen, never fetched.
        tombstoned = await self._tombstones.uids(acc.account_id, folder.name, status.uidvalidity)
        erased = tombstoned & set(todo)
        todo = [u for u in todo if u not in erased]
        if not todo:
            return erased, ()
        known = expand_uid_set(prev.uids) if prev else set()
        already = len(known - set(todo))
        progress = _Progress(done=already, total=already + len(todo))
        await self._report(folder, progress)
        published, missing = await self._publish(imap, folder, status, prev, todo, progress)
        return published | erased, missing

    async def _publish(
        self,
        imap: ImapSession,
        folder: Folder,
        status: FolderStatus,
        prev: FolderCursor | None,
        todo: list[int],
        progress: _Progress,
    ) -> tuple[set[int], tuple[int, ...]]:
        acc_id = self._account.account_id
        published: set[int] = set()
        missing: list[int] = []
        # Pipelined: while Kafka acknowledges batch n, IMAP already returns batch n+1
        # (one connection: IMAP commands stay sequential), and batch n+1 goes to Kafka
        # before the cursor is saved past batch n, so the broker never waits for MongoDB.
        # The cursor advances in order, each time only after its batch is acknowledged;
        # at most two batches in memory. Its flag state stays where it was until the
        # pass ends (see .cursor_rules.Published).
        in_flight: asyncio.Task[None] | None = None
        in_flight_uids: set[int] = set()
        try:
            for batch in batches(todo, self._settings.fetcher_batch_size):
                messages = await imap.uid_fetch(batch)
                got = {m.uid for m in messages}
                # A UID listed by SEARCH but not returned by FETCH is recorded and retried
                # on every pass; it is never skipped silently.
                missing += [uid for uid in batch if uid not in got]
                previous, acked = in_flight, in_flight_uids
                if previous is not None:
                    await previous
                publish = self._publisher.publish(
                    acc_id, folder.name, folder.role, status.uidvalidity, messages
                )
                in_flight = asyncio.create_task(publish)
                in_flight_uids = got
                if previous is not None:
                    published |= acked
                    change = Published(frozenset(published), tuple(missing))
                    await self._cursors.advance(folder, prev, status, change)
                    await self._report(folder, progress)
                progress.done += len(batch)
            if in_flight is not None:
                await in_flight
                in_flight = None
                published |= in_flight_uids
                await self._report(folder, progress)
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # its batch is fetched again next time: the cursor did not move
        return published, tuple(missing)

    async def _report(self, folder: Folder, progress: _Progress) -> None:
        await self._states.progress(
            self._account.account_id,
            FolderProgress(folder=folder.name, done=progress.done, total=progress.total),
        )
