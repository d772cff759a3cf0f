"""A folder's new mail: every message above the cursor (and every retry due), fetched
and published in batches, the cursor advanced after each batch Kafka acknowledged.

What to fetch is decided by :mod:`.sync` (pure); this is the I/O, pipelined.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass

from schemas.account import AccountRecord
from schemas.mailbox_state import FolderCursor, FolderProgress
from services.accounts.tombstones import TombstoneStore
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor_rules import Published
from services.fetcher.import_connection import Connections
from services.fetcher.publish import Publisher
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.stream_publish import publish_batches
from services.fetcher.sync import batches, retention_floor, search_criteria, select_uids
from services.imap import Folder, FolderStatus, ImapSession, expand_uid_set


@dataclass(frozen=True)
class Fetched:
    """What a pass's new mail came to."""

    published: set[int]  # UIDs published, and those erased (counted as seen)
    missing: tuple[int, ...]  # UIDs the server listed but did not return
    # The folder's progress once they are in, for the caller to write with the cursor
    # (one round trip at the pass's end, not two in a row); None: nothing was fetched.
    progress: FolderProgress | None = None


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
        connections: Connections,
    ):
        self._account = account
        self._settings = settings
        self._cursors = cursors
        self._states = states
        self._publisher = publisher
        self._tombstones = tombstones
        self._connections = connections

    async def fetch(
        self, imap: ImapSession, folder: Folder, status: FolderStatus, prev: FolderCursor | None
    ) -> Fetched:
        """Publish every message above ``prev`` (and every retry due). The caller holds
        the folder's lock; ``prev`` is its cursor, under the folder's current UIDVALIDITY."""
        acc = self._account
        last_uid = prev.last_uid if prev else 0
        retry = tuple(prev.missing_uids) if prev else ()
        floor = retention_floor(acc.retention_days, dt.datetime.now(dt.UTC))
        found = await imap.uid_search(search_criteria(last_uid, acc.import_window, floor))
        todo = sorted(set(select_uids(found, last_uid, acc.import_window)) | set(retry))
        if not todo:
            return Fetched(set(), ())
        # Erased or expired while still on the server: counted as seen, never fetched.
        tombstoned = await self._tombstones.uids(acc.account_id, folder.name, status.uidvalidity)
        erased = tombstoned & set(todo)
        todo = [u for u in todo if u not in erased]
        if not todo:
            return Fetched(erased, ())
        known = expand_uid_set(prev.uids) if prev else set()
        already = len(known - set(todo))
        progress = _Progress(done=already, total=already + len(todo))
        published, missing = await self._publish(imap, folder, status, prev, todo, progress)
        return Fetched(published | erased, missing, _folder_progress(folder, progress))

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
        # Pipelined (.stream_publish): while Kafka acknowledges batch n, IMAP already
        # returns the next ones (.ordered_fetch: on one connection, or two for a large
        # import, in UID order), and each message of batch n+1 goes to Kafka as soon as it
        # arrived, so the broker never waits for MongoDB. Nor does IMAP: the cursor and
        # progress writes of batch n run, once Kafka acknowledged it, while later batches
        # are fetched (a durable write each, 15-20 ms a batch with IMAP idle when they
        # were awaited in line: bench/RESULTS.md, Pipeline). The cursor still advances in
        # order, each time only after its batch is acknowledged, and every write has
        # landed before the pass goes on. The cursor's flag state stays where it was until
        # the pass ends (see .cursor_rules.Published).
        # A checkpoint (cursor and progress) at most every fetcher_checkpoint_s: one
        # every batch cost the fetcher about 5% of its import rate, the writes' CPU and
        # SecantusDB's on the cores the import uses (bench/RESULTS.md, "Issue #19, round
        # 8"), and a restart fetches again only what came after the last one.
        loop = asyncio.get_running_loop()
        every_s = self._settings.fetcher_checkpoint_s
        saved_at = loop.time()
        saving: asyncio.Task[None] | None = None
        # Many messages: a second connection fetches every other batch once it logged in
        # (.import_connection), published all the same in UID order (.ordered_fetch).
        joining: asyncio.Task[ImapSession | None] | None = None
        if self._connections.second_wanted(len(todo)):
            joining = asyncio.create_task(self._connections.second(folder, status.uidvalidity))
        chunks = batches(todo, self._settings.fetcher_batch_size)
        sent = publish_batches(
            imap, chunks, self._publisher, acc_id, folder, status.uidvalidity, joining
        )
        try:
            async with contextlib.aclosing(sent) as batches_sent:
                left = len(chunks)
                async for batch in batches_sent:
                    left -= 1
                    # A UID listed by SEARCH but not returned by FETCH is recorded and
                    # retried on every pass; it is never skipped silently.
                    missing += [uid for uid in batch.uids if uid not in batch.got]
                    published |= batch.got
                    progress.done += len(batch.uids)
                    # The last batch's cursor is the caller's to write.
                    if left and loop.time() - saved_at >= every_s:
                        saved_at = loop.time()
                        change = Published(frozenset(published), tuple(missing))
                        saving = self._save(
                            saving, batch.acked, folder, prev, status, change, progress
                        )
            await self._release(joining)
            joining = None
            if saving is not None:
                await saving
                saving = None
        finally:
            await self._release(joining)
            if saving is not None:
                # Settled before the folder's lock is let go: no older write may land
                # after a later pass's. Cancelled, it leaves the cursor behind: a refetch.
                saving.cancel()
                await asyncio.gather(saving, return_exceptions=True)
        return published, tuple(missing)

    async def _release(self, joining: asyncio.Task[ImapSession | None] | None) -> None:
        """The second connection closed, or its login given up, once every batch is in."""
        if joining is None:
            return
        if not joining.done():
            joining.cancel()
        await asyncio.gather(joining, return_exceptions=True)
        if not joining.cancelled() and joining.exception() is None:
            second = joining.result()
            if second is not None:
                await self._connections.release(second)

    def _save(
        self,
        before: asyncio.Task[None] | None,
        acked: asyncio.Task[None],
        folder: Folder,
        prev: FolderCursor | None,
        status: FolderStatus,
        change: Published,
        progress: _Progress,
    ) -> asyncio.Task[None]:
        """The cursor moved by ``change`` and the progress, written once ``before`` (the
        previous batch's writes) has, and the broker acknowledged the batch (``acked``):
        the writes land in order, as soon as they may. A failed write fails the pass at
        its next batch."""
        if before is not None and before.done():
            before.result()  # raises what the last write raised
        done = _Progress(progress.done, progress.total)

        async def save() -> None:
            if before is not None:
                await before
            await acked
            await self._cursors.advance(folder, prev, status, change)
            await self._report(folder, done)

        return asyncio.create_task(save())

    async def _report(self, folder: Folder, progress: _Progress) -> None:
        await self._states.progress(self._account.account_id, _folder_progress(folder, progress))


def _folder_progress(folder: Folder, progress: _Progress) -> FolderProgress:
    return FolderProgress(folder=folder.name, done=progress.done, total=progress.total)
