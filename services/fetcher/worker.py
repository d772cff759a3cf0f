"""One account's sync: connect, publish every new message of every synced folder, then IDLE.

Runs inside the account's own task (see :mod:`.supervisor`); everything it raises is
classified there. A folder that fails is recorded on that folder and skipped until the
next pass; it never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from schemas.account import AccountRecord
from schemas.common import FolderRole
from schemas.mailbox_state import AccountStatus, FolderCursor, FolderProgress
from services.fetcher.cursor import CursorStore
from services.fetcher.errors import FolderError
from services.fetcher.folders import Folder
from services.fetcher.publish import Publisher
from services.fetcher.session import ImapSession
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.sync import (
    FolderStatus,
    batches,
    has_new_mail,
    search_criteria,
    select_uids,
    uidvalidity_changed,
)

log = logging.getLogger("mailsync.fetcher.worker")


class AccountWorker:
    def __init__(
        self,
        account: AccountRecord,
        password: str,
        *,
        settings: FetcherSettings,
        cursors: CursorStore,
        states: StateStore,
        publisher: Publisher,
        ssl_context: ssl.SSLContext,
    ):
        self.account = account
        self._password = password
        self._settings = settings
        self._cursors = cursors
        self._states = states
        self._publisher = publisher
        self._ssl = ssl_context

    async def run(self) -> None:
        """Sync until cancelled; raises on connection-level failures."""
        acc = self.account
        await self._states.set(acc.account_id, AccountStatus.CONNECTING)
        async with ImapSession(
            acc.imap,
            self._password,
            timeout=self._settings.fetcher_imap_timeout_s,
            ssl_context=self._ssl,
        ) as imap:
            folders = self._synced_folders(await imap.list_folders())
            await self._states.set(acc.account_id, AccountStatus.SYNCING)
            await self._sync_all(imap, folders)
            inbox = next((f for f in folders if f.role is FolderRole.INBOX), None)
            loop = asyncio.get_running_loop()
            next_poll = loop.time() + self._settings.fetcher_poll_interval_s
            while True:
                await self._states.set(acc.account_id, AccountStatus.IDLE, synced=True)
                wait = max(0.0, next_poll - loop.time())
                if inbox is not None and wait > 0:
                    await imap.examine(inbox)
                    if await imap.idle(min(wait, self._settings.fetcher_idle_renew_s)):
                        await self._sync_folder(imap, inbox)
                        continue
                elif wait > 0:
                    await asyncio.sleep(wait)
                await self._sync_all(imap, folders)
                next_poll = loop.time() + self._settings.fetcher_poll_interval_s

    def _synced_folders(self, listed: list[Folder]) -> list[Folder]:
        """Only the folders the account chose: a CRM must never read the others."""
        by_name = {f.name: f for f in listed}
        chosen = []
        for name in self.account.folders:
            folder = by_name.get("INBOX" if name.upper() == "INBOX" else name)
            if folder is None:
                log.warning(
                    "%s: folder %r does not exist on the server", self.account.account_id, name
                )
                continue
            chosen.append(folder)
        return chosen

    async def _sync_all(self, imap: ImapSession, folders: list[Folder]) -> None:
        for folder in folders:
            try:
                cursor = await self._cursors.get(self.account.account_id, folder.name)
                if cursor is not None and not has_new_mail(cursor, await imap.status(folder)):
                    continue
                await self._sync_folder(imap, folder)
            except FolderError as exc:
                log.warning("%s: %s", self.account.account_id, exc)
                await self._states.progress(
                    self.account.account_id,
                    FolderProgress(folder=folder.name, done=0, total=0, error=exc.reason),
                )

    async def _sync_folder(self, imap: ImapSession, folder: Folder) -> None:
        acc_id = self.account.account_id
        status = await imap.examine(folder)
        cursor = await self._cursors.get(acc_id, folder.name)
        if uidvalidity_changed(cursor, status):
            # The folder was recreated or renumbered: every stored UID is void (RFC 3501
            # 2.3.1.1). Refetch it; dedup keeps the activities single by fingerprint.
            log.warning(
                "%s/%s: UIDVALIDITY %s -> %s, resyncing",
                acc_id,
                folder.name,
                cursor.uidvalidity if cursor else None,
                status.uidvalidity,
            )
            cursor = None
        last_uid = cursor.last_uid if cursor else 0
        missing = tuple(cursor.missing_uids) if cursor else ()
        found = await imap.uid_search(search_criteria(last_uid, self.account.import_window))
        todo = sorted(set(select_uids(found, last_uid, self.account.import_window)) | set(missing))
        if not todo and cursor is not None:
            return
        progress = FolderProgress(folder=folder.name, done=0, total=len(todo))
        await self._states.progress(acc_id, progress)
        still_missing: list[int] = []
        done = 0
        # Pipelined: while Kafka acknowledges batch n, IMAP already returns batch n+1
        # (one connection: IMAP commands stay sequential). Cursors advance in order,
        # each only after its batch is acknowledged; at most two batches are in memory.
        in_flight: asyncio.Task[None] | None = None
        in_flight_last = last_uid
        try:
            for batch in batches(todo, self._settings.fetcher_batch_size):
                messages = await imap.uid_fetch(batch)
                got = {m.uid for m in messages}
                # A UID listed by SEARCH but not returned by FETCH is recorded and retried
                # on every pass; it is never skipped silently.
                still_missing += [uid for uid in batch if uid not in got]
                if in_flight is not None:
                    await in_flight
                    cursor = await self._save(folder, status, in_flight_last, tuple(still_missing))
                    await self._states.progress(
                        acc_id, FolderProgress(folder=folder.name, done=done, total=len(todo))
                    )
                publish = self._publisher.publish(
                    acc_id, folder.name, folder.role, status.uidvalidity, messages
                )
                in_flight = asyncio.create_task(publish)
                in_flight_last = max([in_flight_last, *got])
                done += len(batch)
            if in_flight is not None:
                await in_flight
                in_flight = None
                last_uid = in_flight_last
                cursor = await self._save(folder, status, last_uid, tuple(still_missing))
                await self._states.progress(
                    acc_id, FolderProgress(folder=folder.name, done=done, total=len(todo))
                )
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # its batch is fetched again next time: the cursor did not move
        if cursor is None:  # empty folder: remember its UIDVALIDITY
            await self._save(folder, status, last_uid, ())
        if still_missing:
            log.warning("%s/%s: server did not return UIDs %s", acc_id, folder.name, still_missing)

    async def _save(
        self, folder: Folder, status: FolderStatus, last_uid: int, missing: tuple[int, ...]
    ) -> FolderCursor:
        return await self._cursors.save(
            self.account.account_id,
            folder.name,
            folder.role,
            uidvalidity=status.uidvalidity,
            last_uid=last_uid,
            highestmodseq=status.highestmodseq,
            missing_uids=missing,
        )
