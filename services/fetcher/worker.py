"""One account's sync: connect, publish every new message of every synced folder, then IDLE.

Runs inside the account's own task (see :mod:`.supervisor`); everything it raises is
classified there. A folder that fails is recorded on that folder and skipped until the
next pass; it never stops the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from dataclasses import replace

from schemas.account import AccountRecord
from schemas.common import FolderRole, MessageLocation
from schemas.mailbox_event import Expunged, FlagsChanged, MailboxChange, Moved, Remapped
from schemas.mailbox_state import (
    AccountStatus,
    FolderCursor,
    FolderProgress,
    ReconcileReport,
    UidValidityChange,
)
from services.accounts.tombstone_rules import stale
from services.accounts.tombstones import TombstoneStore
from services.common.lifecycle import first_failure
from services.common.oauth2 import AccessToken
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor import CursorStore
from services.fetcher.cursor_rules import MovedAway, PassDone, Published, Renumbered
from services.fetcher.processed import ProcessedQueue
from services.fetcher.publish import EventPublisher, Publisher
from services.fetcher.reconcile import find_gaps, flag_changes
from services.fetcher.reconcile_requests import ReconcileRequests
from services.fetcher.revalidate import (
    ID_FIELDS,
    UidValidityVerdict,
    message_key,
    refetch_after_remap,
    revalidate,
)
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.stored_sightings import SightingReader
from services.fetcher.sync import (
    batches,
    flags_changed,
    has_changes,
    may_have_expunged,
    retention_floor,
    search_criteria,
    select_uids,
    uidvalidity_changed,
)
from services.imap import (
    CopyUid,
    Folder,
    FolderError,
    FolderStatus,
    ImapSession,
    expand_uid_set,
    with_sent_folder,
)

log = logging.getLogger("mailsync.fetcher.worker")


class AccountWorker:
    def __init__(
        self,
        account: AccountRecord,
        password: str | AccessToken,
        *,
        settings: FetcherSettings,
        cursors: CursorStore,
        states: StateStore,
        publisher: Publisher,
        events: EventPublisher,
        processed: ProcessedQueue,
        sightings: SightingReader,
        tombstones: TombstoneStore,
        requests: ReconcileRequests,
        ssl_context: ssl.SSLContext,
    ):
        self.account = account
        self._password = password
        self._settings = settings
        self._cursors = AccountCursors(
            cursors, account.account_id, grace_s=settings.fetcher_reconcile_grace_s
        )
        self._states = states
        self._publisher = publisher
        self._events = events
        self._processed = processed
        self._sightings = sightings
        self._tombstones = tombstones
        self._requests = requests
        self._ssl = ssl_context

    def _session(self) -> ImapSession:
        return ImapSession(
            self.account.imap,
            self._password,
            timeout=self._settings.fetcher_imap_timeout_s,
            ssl_context=self._ssl,
        )

    async def run(self) -> None:
        """Sync until cancelled; raises on connection-level failures."""
        acc = self.account
        await self._states.set(acc.account_id, AccountStatus.CONNECTING)
        cap = acc.max_connections or self._settings.fetcher_max_connections
        async with self._session() as imap:
            folders = self._synced_folders(await imap.list_folders())
            await self._states.set(acc.account_id, AccountStatus.SYNCING)
            inbox = next((f for f in folders if f.role is FolderRole.INBOX), None)
            others = [f for f in folders if f is not inbox]
            if cap < 2 or inbox is None or not others:
                await self._one_connection(imap, folders, inbox)
                return
            # IDLE (RFC 2177) holds its connection: INBOX gets one of its own, the other
            # folders share a second, and both import at once. Never more than the cap.
            async with self._session() as second:
                inbox_synced = asyncio.Event()
                await first_failure(
                    self._watch_inbox(imap, inbox, inbox_synced),
                    self._poll(second, folders, others, inbox_synced),
                )

    async def _one_connection(
        self, imap: ImapSession, folders: list[Folder], inbox: Folder | None
    ) -> None:
        """Everything on one connection: IDLE on INBOX between polls of the others."""
        acc = self.account
        await self._sync_all(imap, folders)
        await self._act_on_processed(imap, folders)
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self._settings.fetcher_poll_interval_s
        next_reconcile = loop.time() + self._settings.fetcher_reconcile_interval_s
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
            next_reconcile = await self._housekeeping(imap, folders, next_reconcile)
            next_poll = loop.time() + self._settings.fetcher_poll_interval_s

    async def _watch_inbox(self, imap: ImapSession, inbox: Folder, synced: asyncio.Event) -> None:
        """INBOX on its own connection: sync, then IDLE; sync again whenever it changes."""
        await self._sync_all(imap, [inbox])
        synced.set()
        s = self._settings
        # Without IDLE, idle() only waits: then wait one poll interval, not 25 minutes.
        wait = s.fetcher_idle_renew_s if imap.has("IDLE") else s.fetcher_poll_interval_s
        while True:
            await imap.examine(inbox)
            await imap.idle(wait)
            # Also when IDLE just ran out: a cheap STATUS-like check of what may have
            # been missed while it was being renewed.
            await self._sync_all(imap, [inbox])

    async def _poll(
        self,
        imap: ImapSession,
        folders: list[Folder],
        others: list[Folder],
        inbox_synced: asyncio.Event,
    ) -> None:
        """The other folders, polled on the second connection; processed mail and the
        reconcile of every folder happen here too, so IDLE is never interrupted."""
        acc = self.account
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time() + self._settings.fetcher_reconcile_interval_s
        await self._sync_all(imap, others)
        await inbox_synced.wait()
        while True:
            next_reconcile = await self._housekeeping(imap, folders, next_reconcile)
            await self._states.set(acc.account_id, AccountStatus.IDLE, synced=True)
            await asyncio.sleep(self._settings.fetcher_poll_interval_s)
            await self._sync_all(imap, others)

    async def _housekeeping(
        self, imap: ImapSession, folders: list[Folder], next_reconcile: float
    ) -> float:
        """Processed mail, then a reconcile when due or asked for; returns when the next
        periodic reconcile is due."""
        acc_id = self.account.account_id
        await self._act_on_processed(imap, folders)
        loop = asyncio.get_running_loop()
        requested = await self._requests.pending(acc_id)
        if requested is None and loop.time() < next_reconcile:
            return next_reconcile
        await self._reconcile(imap, folders)
        if requested is not None:
            await self._requests.done(acc_id, requested)
        return loop.time() + self._settings.fetcher_reconcile_interval_s

    async def _act_on_processed(self, imap: ImapSession, folders: list[Folder]) -> None:
        """Move or mark the messages whose activities are confirmed durable, as the
        account asks; never before the confirmation, never a message renumbered since."""
        action = self.account.processed
        if action.kind == "leave":
            return
        pending = await self._processed.pending(self.account.account_id)
        if not pending:
            return
        by_name = {f.name: f for f in folders}
        target = None
        if action.kind == "move":
            listed = {f.name: f for f in await imap.list_folders()}
            target = listed.get(action.folder)
            if target is None:
                log.warning(
                    "%s: processed-mail folder %r does not exist",
                    self.account.account_id,
                    action.folder,
                )
                return
        for name in sorted({c.folder for c in pending}):
            folder = by_name.get(name)
            items = [c for c in pending if c.folder == name]
            if folder is None or folder is target:
                await self._processed.done(items)  # no longer synced, or already there
                continue
            # Held from the move until the cursor forgot them: a sync of this folder on
            # the other connection must not see them gone and report them expunged.
            async with self._cursors.lock(folder.name):
                status = await imap.select(folder)
                current = [c for c in items if c.uidvalidity == status.uidvalidity]
                uids = sorted({c.uid for c in current})
                if uids and target is not None:
                    copied = await imap.move(uids, target)
                    await self._events.publish(
                        self.account.account_id,
                        self._moved(folder, status, uids, target, copied),
                    )
                    # We moved these ourselves: the cursor forgets them, so that no
                    # pass reports them as expunged by the user.
                    cursor = await self._cursors.get(folder.name)
                    moved = MovedAway(frozenset(uids))
                    await self._cursors.advance(folder, cursor, status, moved)
                elif uids and action.kind == "keyword":
                    await imap.add_flags(uids, action.keyword)
            await self._processed.done(items)

    def _moved(
        self,
        folder: Folder,
        status: FolderStatus,
        uids: list[int],
        target: Folder,
        copied: CopyUid | None,
    ) -> list[MailboxChange]:
        """The sightings follow the messages we moved: to the new folder and UID the
        server named (RFC 4315 COPYUID, RFC 6851 4.3), else expunged, reason ``moved``."""
        now = dt.datetime.now(dt.UTC)
        out: list[MailboxChange] = []
        for uid in uids:
            loc = self._location(folder, status, uid)
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

    async def _reconcile(self, imap: ImapSession, folders: list[Folder]) -> None:
        """Compare each folder's UIDs with the sightings in MongoDB and publish again every
        gap, so that mail is never lost, not even with the broker's data; on servers
        without CONDSTORE, also compare flags and publish the changes."""
        acc_id = self.account.account_id
        now = asyncio.get_running_loop().time()
        compare_flags = not imap.has("CONDSTORE")
        refetched = flag_count = 0
        for folder in folders:
            try:
                status = await imap.examine(folder)
                cursor = await self._cursors.get(folder.name)
                if cursor is None or cursor.uidvalidity != status.uidvalidity:
                    continue  # not synced yet, or renumbered: the next sync pass comes first
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
                for batch in batches(gaps, self._settings.fetcher_batch_size):
                    messages = await imap.uid_fetch(batch)
                    await self._publisher.publish(
                        acc_id, folder.name, folder.role, status.uidvalidity, messages
                    )
                    refetched += len(messages)
                if gaps:
                    log.warning(
                        "%s/%s: %d published UIDs had no activity; published again",
                        acc_id,
                        folder.name,
                        len(gaps),
                    )
                if compare_flags and stored:
                    flags = {u.uid: u.flags for u in await imap.all_flags()}
                    changed = flag_changes(flags, {u: s.flags for u, s in stored.items()})
                    at = dt.datetime.now(dt.UTC)
                    await self._events.publish(
                        acc_id,
                        [
                            FlagsChanged(
                                location=self._location(folder, status, uid), flags=flags, at=at
                            )
                            for uid, flags in changed.items()
                        ],
                    )
                    flag_count += len(changed)
            except FolderError as exc:
                log.warning("%s: reconcile: %s", acc_id, exc)
        report = ReconcileReport(
            at=dt.datetime.now(dt.UTC),
            folders=len(folders),
            refetched=refetched,
            flag_changes=flag_count,
        )
        await self._states.reconciled(acc_id, report)

    def _synced_folders(self, listed: list[Folder]) -> list[Folder]:
        """Only the folders the account chose: a CRM must never read the others."""
        by_name = {f.name: f for f in with_sent_folder(listed, self.account.sent_folder)}
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
                cursor = await self._cursors.get(folder.name)
                if cursor is not None and not has_changes(cursor, await imap.status(folder)):
                    continue
                await self._sync_folder(imap, folder)
            except FolderError as exc:
                log.warning("%s: %s", self.account.account_id, exc)
                await self._states.progress(
                    self.account.account_id,
                    FolderProgress(folder=folder.name, done=0, total=0, error=exc.reason),
                )

    async def _sync_folder(self, imap: ImapSession, folder: Folder) -> None:
        """One pass over a folder: new mail first, then flag changes and expunges."""
        async with self._cursors.lock(folder.name):
            await self._sync_folder_locked(imap, folder)

    async def _sync_folder_locked(self, imap: ImapSession, folder: Folder) -> None:
        acc_id = self.account.account_id
        status = await imap.examine(folder)
        prev = await self._cursors.get(folder.name)
        if prev is not None and uidvalidity_changed(prev, status):
            prev = await self._revalidate(imap, folder, status, prev)
        known = expand_uid_set(prev.uids) if prev else set()
        fetched, missing = await self._fetch_new(imap, folder, status, prev, known)
        events: list[MailboxChange] = []
        gone: list[int] = []
        condstore = imap.has("CONDSTORE")
        if prev is not None and prev.last_uid and condstore and flags_changed(prev, status):
            events += await self._flag_events(imap, folder, status, prev)
        if prev is not None and may_have_expunged(prev, status, len(fetched)) and prev.last_uid:
            present = set(await imap.uid_search(f"UID 1:{prev.last_uid}"))
            gone = sorted(u for u in known if u <= prev.last_uid and u not in present)
            reported = await self._not_erased(folder, status, gone)
            now = dt.datetime.now(dt.UTC)
            events += [
                Expunged(location=self._location(folder, status, u), at=now) for u in reported
            ]
        if events:
            await self._events.publish(acc_id, events)
        # Only now, with every event acknowledged, may the cursor say "seen up to here".
        done = PassDone(frozenset(fetched), frozenset(gone), missing)
        await self._cursors.advance(folder, prev, status, done)
        if missing:
            log.warning("%s/%s: server did not return UIDs %s", acc_id, folder.name, missing)

    async def _not_erased(self, folder: Folder, status: FolderStatus, gone: list[int]) -> list[int]:
        """The UIDs that left the folder, without the erased ones: no sighting to mark
        expunged, and their tombstones have nothing left to keep out."""
        if not gone:
            return gone
        acc_id = self.account.account_id
        erased = await self._tombstones.uids(acc_id, folder.name, status.uidvalidity) & set(gone)
        await self._tombstones.forget(acc_id, folder.name, erased)
        return [u for u in gone if u not in erased]

    async def _revalidate(
        self, imap: ImapSession, folder: Folder, status: FolderStatus, prev: FolderCursor
    ) -> FolderCursor | None:
        """Every stored UID is void after a UIDVALIDITY change (RFC 3501 2.3.1.1): compare
        the folder with what MongoDB holds by Message-ID. The same messages: remap the
        sightings and the cursor, fetch nothing again. Another folder: return None, and
        the folder is resynced (dedup keeps the activities single); the stored messages
        that are gone are reported expunged."""
        acc_id = self.account.account_id
        stored = await self._sightings.in_folder(acc_id, folder.name, prev.uidvalidity)
        listed: dict[int, str | None] = {}
        if status.exists:
            listed = {m.uid: message_key(m.body) for m in await imap.headers(ID_FIELDS)}
        ids = {uid: s.message_id for uid, s in stored.items() if s.message_id is not None}
        result = revalidate(ids, listed)
        now = dt.datetime.now(dt.UTC)
        old = replace(status, uidvalidity=prev.uidvalidity)
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
        if result.verdict is UidValidityVerdict.REPLACED:
            # Every stored UID of the old UIDVALIDITY is void (RFC 3501 2.3.1.1): those
            # messages are gone from the old numbering; what is still there is fetched
            # again as new sightings, so no sighting ever stands for another message.
            gone = sorted(stored)
            await self._events.publish(
                acc_id, [Expunged(location=self._location(folder, old, u), at=now) for u in gone]
            )
            await self._states.uidvalidity_changed(acc_id, change)
            return None
        await self._events.publish(
            acc_id,
            [
                Remapped(
                    location=self._location(folder, old, u),
                    uidvalidity=status.uidvalidity,
                    uid=new,
                    at=now,
                )
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

    def _location(self, folder: Folder, status: FolderStatus, uid: int) -> MessageLocation:
        return MessageLocation(
            account_id=self.account.account_id,
            folder=folder.name,
            uidvalidity=status.uidvalidity,
            uid=uid,
        )

    async def _flag_events(
        self, imap: ImapSession, folder: Folder, status: FolderStatus, prev: FolderCursor
    ) -> list[MailboxChange]:
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

    async def _fetch_new(
        self,
        imap: ImapSession,
        folder: Folder,
        status: FolderStatus,
        prev: FolderCursor | None,
        known: set[int],
    ) -> tuple[set[int], tuple[int, ...]]:
        """Publish every message above the cursor (and every retry due); return the UIDs
        published and those the server listed but did not return."""
        acc_id = self.account.account_id
        last_uid = prev.last_uid if prev else 0
        retry = tuple(prev.missing_uids) if prev else ()
        floor = retention_floor(self.account.retention_days, dt.datetime.now(dt.UTC))
        criteria = search_criteria(last_uid, self.account.import_window, floor)
        found = await imap.uid_search(criteria)
        todo = sorted(set(select_uids(found, last_uid, self.account.import_window)) | set(retry))
        if not todo:
            return set(), ()
        # Erased or expired while still on the server: counted as seen, never fetched.
        erased = await self._tombstones.uids(acc_id, folder.name, status.uidvalidity) & set(todo)
        todo = [u for u in todo if u not in erased]
        if not todo:
            return erased, ()
        # Progress counts the folder, not the pass: what is synced already is done.
        already = len(known - set(todo))
        total = already + len(todo)
        await self._states.progress(
            acc_id, FolderProgress(folder=folder.name, done=already, total=total)
        )
        # The cursor's flag state stays where it was until the pass ends (see
        # .cursor_rules.Published).
        published: set[int] = set()
        missing: list[int] = []
        done = already
        # Pipelined: while Kafka acknowledges batch n, IMAP already returns batch n+1
        # (one connection: IMAP commands stay sequential), and batch n+1 goes to Kafka
        # before the cursor is saved past batch n, so the broker never waits for MongoDB.
        # The cursor advances in order, each time only after its batch is acknowledged;
        # at most two batches in memory.
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
                    progress = FolderProgress(folder=folder.name, done=done, total=total)
                    await self._states.progress(acc_id, progress)
                done += len(batch)
            if in_flight is not None:
                await in_flight
                in_flight = None
                published |= in_flight_uids | erased
                await self._states.progress(
                    acc_id, FolderProgress(folder=folder.name, done=done, total=total)
                )
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # its batch is fetched again next time: the cursor did not move
        return published, tuple(missing)
