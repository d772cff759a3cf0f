"""A folder's UIDVALIDITY changed: compare it with MongoDB, remap or resync (the I/O).

Every stored UID is void after a UIDVALIDITY change (RFC 3501 2.3.1.1); whether the
folder holds the same messages is decided by :mod:`.revalidate` (pure).
"""

from __future__ import annotations

import datetime as dt
import logging

from schemas.common import MessageLocation
from schemas.mailbox_event import Expunged, Remapped
from schemas.mailbox_state import FolderCursor, FolderProgress, UidValidityChange
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor_rules import Renumbered
from services.fetcher.publish import EventPublisher
from services.fetcher.revalidate import (
    ID_FIELDS,
    UidValidityVerdict,
    message_key,
    refetch_after_remap,
    revalidate,
)
from services.fetcher.state import StateStore
from services.fetcher.stored_sightings import SightingReader
from services.imap import Folder, FolderStatus, ImapSession

log = logging.getLogger("mailsync.fetcher.worker")


class Revalidation:
    def __init__(
        self,
        account_id: str,
        *,
        cursors: AccountCursors,
        states: StateStore,
        events: EventPublisher,
        sightings: SightingReader,
    ):
        self._account_id = account_id
        self._cursors = cursors
        self._states = states
        self._events = events
        self._sightings = sightings

    async def __call__(
        self, imap: ImapSession, folder: Folder, status: FolderStatus, prev: FolderCursor
    ) -> FolderCursor | None:
        """Compare the folder (selected, ``status``) with what MongoDB holds by
        Message-ID. The same messages: remap the sightings and the cursor, fetch nothing
        again, return the new cursor. Another folder: return None, and the folder is
        resynced (dedup keeps the activities single); the stored messages that are gone
        are reported expunged. The caller holds the folder's lock."""
        acc_id = self._account_id
        stored = await self._sightings.in_folder(acc_id, folder.name, prev.uidvalidity)
        listed: dict[int, str | None] = {}
        if status.exists:
            listed = {m.uid: message_key(m.body) for m in await imap.headers(ID_FIELDS)}
        ids = {uid: s.message_id for uid, s in stored.items() if s.message_id is not None}
        result = revalidate(ids, listed)
        now = dt.datetime.now(dt.UTC)
        log.warning(
            "%s/%s: UIDVALIDITY %d -> %d: %s (%d of %d stored messages compared)",
            acc_id,
            folder.name,
            prev.uidvalidity,
            status.uidvalidity,
            result.verdict,
            result.compared,
            len(stored),
        )
        change = UidValidityChange(
            folder=folder.name,
            old_uidvalidity=prev.uidvalidity,
            new_uidvalidity=status.uidvalidity,
            verdict=result.verdict.value,
            remapped=len(result.remap),
            at=now,
        )

        def old(uid: int) -> MessageLocation:
            return MessageLocation(
                account_id=acc_id, folder=folder.name, uidvalidity=prev.uidvalidity, uid=uid
            )

        if result.verdict is UidValidityVerdict.REPLACED:
            # Every stored UID of the old UIDVALIDITY is void (RFC 3501 2.3.1.1): those
            # messages are gone from the old numbering; what is still there is fetched
            # again as new sightings, so no sighting ever stands for another message.
            gone = sorted(stored)
            await self._events.publish(acc_id, [Expunged(location=old(u), at=now) for u in gone])
            await self._states.uidvalidity_changed(acc_id, change)
            return None
        await self._events.publish(
            acc_id,
            [
                Remapped(location=old(u), uidvalidity=status.uidvalidity, uid=new, at=now)
                for u, new in sorted(result.remap.items())
            ],
        )
        retry = refetch_after_remap(listed, result.remap)
        renumbered = Renumbered(frozenset(result.remap.values()), tuple(retry))
        cursor = await self._cursors.advance(folder, prev, status, renumbered)
        await self._states.uidvalidity_changed(acc_id, change)
        # The folder's messages are synced under their new numbers: its progress says so
        # (a refetch, if any, counts on from here).
        synced = len(result.remap)
        await self._states.progress(
            acc_id, FolderProgress(folder=folder.name, done=synced, total=synced)
        )
        return cursor
