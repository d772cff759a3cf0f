"""Reconcile an account's folders against MongoDB (the I/O; the rules are :mod:`.reconcile`).

Each folder's published UIDs are compared with the sightings MongoDB holds, and every
gap is published again, so that mail is never lost, not even with the broker's data;
on servers without CONDSTORE (RFC 7162), flags are compared too and the changes published.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from schemas.account import AccountRecord
from schemas.common import MessageLocation
from schemas.mailbox_event import FlagsChanged
from schemas.mailbox_state import ReconcileReport
from services.accounts.tombstone_rules import stale
from services.accounts.tombstones import TombstoneStore
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.publish import EventPublisher, Publisher
from services.fetcher.reconcile import find_gaps, flag_changes
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.stored_sightings import SightingReader
from services.fetcher.stream_publish import publish_batches
from services.fetcher.sync import batches
from services.imap import Folder, FolderError, ImapSession, expand_uid_set

log = logging.getLogger("mailsync.fetcher.worker")


@dataclass
class _Counts:
    refetched: int = 0
    flag_changes: int = 0


class ReconcilePass:
    def __init__(
        self,
        account: AccountRecord,
        *,
        settings: FetcherSettings,
        cursors: AccountCursors,
        states: StateStore,
        publisher: Publisher,
        events: EventPublisher,
        sightings: SightingReader,
        tombstones: TombstoneStore,
    ):
        self._account_id = account.account_id
        self._settings = settings
        self._cursors = cursors
        self._states = states
        self._publisher = publisher
        self._events = events
        self._sightings = sightings
        self._tombstones = tombstones

    async def run(self, imap: ImapSession, folders: list[Folder]) -> None:
        """Reconcile every folder, then record the report on the account's state."""
        now = asyncio.get_running_loop().time()
        compare_flags = not imap.has("CONDSTORE")
        counts = _Counts()
        for folder in folders:
            try:
                await self._folder(imap, folder, now, compare_flags, counts)
            except FolderError as exc:
                log.warning("%s: reconcile: %s", self._account_id, exc)
        report = ReconcileReport(
            at=dt.datetime.now(dt.UTC),
            folders=len(folders),
            refetched=counts.refetched,
            flag_changes=counts.flag_changes,
        )
        await self._states.reconciled(self._account_id, report)

    async def _folder(
        self, imap: ImapSession, folder: Folder, now: float, compare_flags: bool, counts: _Counts
    ) -> None:
        acc_id = self._account_id
        status = await imap.examine(folder)
        cursor = await self._cursors.get(folder.name)
        if cursor is None or cursor.uidvalidity != status.uidvalidity:
            return  # not synced yet, or renumbered: the next sync pass comes first
        stored = await self._sightings.in_folder(acc_id, folder.name, status.uidvalidity)
        # Read after the sightings: an erasure in between left its tombstones first.
        erased = await self._tombstones.uids(acc_id, folder.name, status.uidvalidity)
        on_server = await imap.uid_search("ALL")
        gaps = find_gaps(
            on_server,
            expand_uid_set(cursor.uids) - erased,
            stored,
            self._cursors.settled_uid(folder.name, now),
        )
        await self._tombstones.forget(acc_id, folder.name, stale(erased, on_server))
        # As an import publishes (.stream_publish): streamed, within the same window, so
        # that a database restored from an old backup (thousands of gaps, some of them
        # large) is refetched at the import's pace and memory.
        chunks = batches(gaps, self._settings.fetcher_batch_size)
        sent = publish_batches(imap, chunks, self._publisher, acc_id, folder, status.uidvalidity)
        async with contextlib.aclosing(sent) as batches_sent:
            async for batch in batches_sent:
                counts.refetched += len(batch.got)
        if gaps:
            log.warning(
                "%s/%s: %d published UIDs had no activity; published again",
                acc_id,
                folder.name,
                len(gaps),
            )
        if not (compare_flags and stored):
            return
        flags = {u.uid: u.flags for u in await imap.all_flags()}
        changed = flag_changes(flags, {u: s.flags for u, s in stored.items()})
        at = dt.datetime.now(dt.UTC)
        await self._events.publish(
            acc_id,
            [
                FlagsChanged(
                    location=MessageLocation(
                        account_id=acc_id,
                        folder=folder.name,
                        uidvalidity=status.uidvalidity,
                        uid=uid,
                    ),
                    flags=flags,
                    at=at,
                )
                for uid, flags in changed.items()
            ],
        )
        counts.flag_changes += len(changed)
