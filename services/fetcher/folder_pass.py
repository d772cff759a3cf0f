"""One folder's pass: select it, revalidate on a UIDVALIDITY change, publish new mail,
then flag changes and expunges, and only then save the cursor (with the folder's
progress, at once).

A folder that fails (:class:`~services.imap.FolderError`) is recorded on that folder and
skipped until the next pass; it never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging

from schemas.account import AccountRecord
from schemas.common import MessageLocation
from schemas.mailbox_event import Expunged, FlagsChanged, MailboxChange
from schemas.mailbox_state import FolderCursor, FolderProgress
from services.accounts.tombstones import TombstoneStore
from services.common.together import both
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor_rules import PassDone
from services.fetcher.new_mail import Fetched, NewMail
from services.fetcher.publish import EventPublisher
from services.fetcher.revalidate_pass import Revalidation
from services.fetcher.state import StateStore
from services.fetcher.sync import flags_changed, has_changes, may_have_expunged, uidvalidity_changed
from services.imap import Folder, FolderError, FolderStatus, ImapSession, expand_uid_set

log = logging.getLogger("mailsync.fetcher.worker")


class FolderPass:
    def __init__(
        self,
        account: AccountRecord,
        *,
        cursors: AccountCursors,
        states: StateStore,
        events: EventPublisher,
        tombstones: TombstoneStore,
        new_mail: NewMail,
        revalidation: Revalidation,
    ):
        self._account_id = account.account_id
        self._cursors = cursors
        self._states = states
        self._events = events
        self._tombstones = tombstones
        self._new_mail = new_mail
        self._revalidate = revalidation
        # folder -> (UIDVALIDITY, UIDNEXT) when its last pass, or a STATUS finding
        # nothing new, looked: what a later EXAMINE is compared with.
        self._looked: dict[str, tuple[int, int]] = {}

    async def sync_all(
        self,
        imap: ImapSession,
        folders: list[Folder],
        known: dict[str, FolderStatus] | None = None,
    ) -> None:
        """A pass over each folder that STATUS says changed.

        Where the server has LIST-STATUS (RFC 5819) and several folders are checked, one
        command asks them all instead of a STATUS each. A folder its answer left out
        (deleted or renamed, the selected one) is asked with STATUS as before, so its
        FolderError is reported, never skipped in silence. ``known``: the status the
        account's start listed its folders with (``ImapSession.list_chosen``), asked
        before any of this account's cursors could move: its first pass asks nothing
        again (a cursor is only written by this worker, which starts now)."""
        # The cursors first, then the status: a cursor that moved meanwhile only makes
        # the comparison see a change that is not there (a pass finding nothing).
        cursors = {f.name: await self._cursors.get(f.name) for f in folders}
        checked = [f for f in folders if cursors[f.name] is not None]
        listed: dict[str, FolderStatus] = known or {}
        if not listed and len(checked) > 1 and imap.has("LIST-STATUS"):
            listed = await imap.list_status(checked)
        for folder in folders:
            try:
                cursor = cursors[folder.name]
                if cursor is not None:
                    status = listed.get(folder.name) or await imap.status(folder)
                    if not has_changes(cursor, status):
                        self._looked[folder.name] = (status.uidvalidity, status.uidnext)
                        continue
                await self.sync(imap, folder)
            except FolderError as exc:
                log.warning("%s: %s", self._account_id, exc)
                await self._states.progress(
                    self._account_id,
                    FolderProgress(folder=folder.name, done=0, total=0, error=exc.reason),
                )

    def arrived_since(self, folder: Folder, status: FolderStatus) -> bool:
        """Mail came into ``folder`` after its last pass looked (``status``, from an
        EXAMINE, shows a higher UIDNEXT: UIDs only grow, RFC 3501 2.3.1.1). False when
        no pass completed yet (one that failed is retried at the next poll, as before,
        not at once and again)."""
        looked = self._looked.get(folder.name)
        if looked is None:
            return False
        return looked[0] != status.uidvalidity or status.uidnext > looked[1]

    async def imported(self, folders: list[Folder]) -> bool:
        """Every one of ``folders`` was synced before (it has a cursor)."""
        return all([await self._cursors.get(f.name) is not None for f in folders])

    async def sync(self, imap: ImapSession, folder: Folder) -> None:
        """One pass over a folder: new mail first, then flag changes and expunges."""
        async with self._cursors.lock(folder.name):
            await self._sync_locked(imap, folder)

    async def _sync_locked(self, imap: ImapSession, folder: Folder) -> None:
        acc_id = self._account_id
        status = await imap.examine(folder)
        prev = await self._cursors.get(folder.name)
        if prev is not None and uidvalidity_changed(prev, status):
            prev = await self._revalidate(imap, folder, status, prev)
        new = await self._new_mail.fetch(imap, folder, status, prev)
        events: list[MailboxChange] = []
        gone: set[int] = set()
        if prev is not None and prev.last_uid:
            if imap.has("CONDSTORE") and flags_changed(prev, status):
                events += await self._flag_events(imap, folder, status, prev)
            if may_have_expunged(prev, status, len(new.published)):
                gone = await self._gone(imap, prev)
                events += await self._expunged(folder, status, sorted(gone))
        if events:
            await self._events.publish(acc_id, events)
        # Only now, with every event acknowledged, may the cursor say "seen up to here".
        done = PassDone(frozenset(new.published), frozenset(gone), new.missing)
        # The folder's progress with it, at once: the pass ends one round trip sooner.
        await both(self._cursors.advance(folder, prev, status, done), self._progress(new))
        self._looked[folder.name] = (status.uidvalidity, status.uidnext)
        if new.missing:
            log.warning("%s/%s: server did not return UIDs %s", acc_id, folder.name, new.missing)

    async def _progress(self, new: Fetched) -> None:
        if new.progress is not None:
            await self._states.progress(self._account_id, new.progress)

    async def _gone(self, imap: ImapSession, prev: FolderCursor) -> set[int]:
        """The published UIDs up to the cursor that are no longer in the folder."""
        present = set(await imap.uid_search(f"UID 1:{prev.last_uid}"))
        return {u for u in expand_uid_set(prev.uids) if u <= prev.last_uid and u not in present}

    async def _expunged(
        self, folder: Folder, status: FolderStatus, gone: list[int]
    ) -> list[MailboxChange]:
        """Expunged events for the UIDs that left the folder, but the erased ones: no
        sighting to mark expunged, and their tombstones have nothing left to keep out."""
        if not gone:
            return []
        acc_id = self._account_id
        erased = await self._tombstones.uids(acc_id, folder.name, status.uidvalidity) & set(gone)
        await self._tombstones.forget(acc_id, folder.name, erased)
        now = dt.datetime.now(dt.UTC)
        return [
            Expunged(location=self._location(folder, status, u), at=now)
            for u in gone
            if u not in erased
        ]

    async def _flag_events(
        self, imap: ImapSession, folder: Folder, status: FolderStatus, prev: FolderCursor
    ) -> list[MailboxChange]:
        """The flags changed since the cursor's HIGHESTMODSEQ (RFC 7162 3.1.4, CHANGEDSINCE)."""
        assert prev.highestmodseq is not None
        now = dt.datetime.now(dt.UTC)
        updates = await imap.flag_changes(prev.last_uid, prev.highestmodseq)
        return [
            FlagsChanged(
                location=self._location(folder, status, u.uid),
                flags=u.flags,
                modseq=u.modseq,
                at=now,
            )
            for u in updates
        ]

    def _location(self, folder: Folder, status: FolderStatus, uid: int) -> MessageLocation:
        return MessageLocation(
            account_id=self._account_id,
            folder=folder.name,
            uidvalidity=status.uidvalidity,
            uid=uid,
        )
