"""What happens to processed mail: moved, marked with a keyword, or left alone.

Only messages whose activities the writer confirmed durable (:mod:`.processed`), as the
account asks (``processed``); never before the confirmation, never a message
renumbered since.
"""

from __future__ import annotations

import datetime as dt
import logging

from schemas.account import AccountRecord
from schemas.activity_event import ActivityConfirmation
from schemas.common import MessageLocation
from schemas.mailbox_event import Expunged, MailboxChange, Moved
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor_rules import MovedAway
from services.fetcher.due_work import DueWork
from services.fetcher.processed import ProcessedQueue
from services.fetcher.publish import EventPublisher
from services.imap import CopyUid, Folder, FolderStatus, ImapSession

log = logging.getLogger("mailsync.fetcher.worker")


def moved_events(
    account_id: str,
    folder: Folder,
    status: FolderStatus,
    uids: list[int],
    target: Folder,
    copied: CopyUid | None,
    now: dt.datetime,
) -> list[MailboxChange]:
    """The sightings follow the messages we moved: to the new folder and UID the server
    named (RFC 4315 COPYUID, RFC 6851 4.3), else expunged, reason ``moved``."""
    out: list[MailboxChange] = []
    for uid in uids:
        loc = MessageLocation(
            account_id=account_id, folder=folder.name, uidvalidity=status.uidvalidity, uid=uid
        )
        new = copied.uids.get(uid) if copied is not None else None
        if copied is None or new is None:
            out.append(Expunged(location=loc, reason="moved", at=now))
            continue
        out.append(
            Moved(
                location=loc,
                folder=target.name,
                folder_role=target.role,
                uidvalidity=copied.uidvalidity,
                uid=new,
                at=now,
            )
        )
    return out


class ProcessedActions:
    def __init__(
        self,
        account: AccountRecord,
        *,
        cursors: AccountCursors,
        processed: ProcessedQueue,
        due: DueWork,
        events: EventPublisher,
    ):
        self._account = account
        self._cursors = cursors
        self._processed = processed
        self._due = due
        self._events = events

    async def act(self, imap: ImapSession, folders: list[Folder]) -> None:
        """Move or mark the messages whose activities are confirmed durable, as the
        account asks; never before the confirmation, never a message renumbered since."""
        action = self._account.processed
        acc_id = self._account.account_id
        # Asked of the database only when the replica's last read (or a confirmation
        # this process stored since) says something waits: idle costs no query.
        if action.kind == "leave" or not self._due.may_have_processed(acc_id):
            return
        pending = await self._processed.pending(acc_id)
        if not pending:
            self._due.processed_drained(acc_id)
            return
        target = None
        if action.kind == "move":
            listed = {f.name: f for f in await imap.list_folders()}
            target = listed.get(action.folder)
            if target is None:
                log.warning(
                    "%s: processed-mail folder %r does not exist",
                    self._account.account_id,
                    action.folder,
                )
                return
        by_name = {f.name: f for f in folders}
        for name in sorted({c.folder for c in pending}):
            folder = by_name.get(name)
            items = [c for c in pending if c.folder == name]
            if folder is not None and folder is not target:
                await self._act_in(imap, folder, items, target)
            # else: no longer synced, or already there
            await self._processed.done(items)

    async def _act_in(
        self,
        imap: ImapSession,
        folder: Folder,
        items: list[ActivityConfirmation],
        target: Folder | None,
    ) -> None:
        action = self._account.processed
        # Held from the move until the cursor forgot them: a sync of this folder on the
        # other connection must not see them gone and report them expunged.
        async with self._cursors.lock(folder.name):
            status = await imap.select(folder)
            uids = sorted({c.uid for c in items if c.uidvalidity == status.uidvalidity})
            if uids and target is not None:
                copied = await imap.move(uids, target)
                now = dt.datetime.now(dt.UTC)
                await self._events.publish(
                    self._account.account_id,
                    moved_events(
                        self._account.account_id, folder, status, uids, target, copied, now
                    ),
                )
                # We moved these ourselves: the cursor forgets them, so that no pass
                # reports them as expunged by the user.
                cursor = await self._cursors.get(folder.name)
                await self._cursors.advance(folder, cursor, status, MovedAway(frozenset(uids)))
            elif uids and action.kind == "keyword":
                await imap.add_flags(uids, action.keyword)
