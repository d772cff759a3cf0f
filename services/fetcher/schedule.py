"""When an account's work happens, on which connection: passes, IDLE, polls, housekeeping.

Where the server offers NOTIFY (RFC 5465) one connection watches every synced folder:
it IDLEs on INBOX and the server reports the other folders' changes too (untagged
STATUS), so an idle account holds one connection and polls nothing; a second
connection is opened only for a first import, and closed after it. Housekeeping runs
on that connection when the replica's :class:`DueWork` wakes the account, and a
reconcile when due.

Without NOTIFY (the server lacks it, refuses it, or ``fetcher_notify`` is off) but with
LIST-STATUS (RFC 5819), an idle account still holds one connection: it IDLEs (RFC 2177)
on INBOX and, every poll interval, leaves IDLE for one LIST-STATUS that checks the
other synced folders at once, instead of a STATUS per folder (INBOX, selected for IDLE,
is EXAMINEd afresh: RFC 3501 6.3.10 asks no STATUS of the selected folder); a second
connection is again opened only for a first import.

Without either, IDLE holds its connection: with two connections allowed, INBOX gets
one of its own and the other folders share the second, so IDLE is never interrupted
by a STATUS per folder; with one, INBOX is watched with IDLE between polls of the
others. Housekeeping (processed mail, then a reconcile when due or asked for) runs
where the other folders are polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from schemas.account import AccountRecord
from schemas.common import FolderRole
from schemas.mailbox_state import AccountStatus
from services.common.lifecycle import first_failure
from services.fetcher.due_work import DueWork
from services.fetcher.folder_pass import FolderPass
from services.fetcher.import_connection import Connections
from services.fetcher.processed_actions import ProcessedActions
from services.fetcher.reconcile_pass import ReconcilePass
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.imap import (
    Folder,
    FolderStatus,
    IdleNews,
    ImapSession,
    ImapUnavailable,
    with_sent_folder,
)

log = logging.getLogger("mailsync.fetcher.worker")


class Schedule:
    def __init__(
        self,
        account: AccountRecord,
        *,
        settings: FetcherSettings,
        states: StateStore,
        due: DueWork,
        connections: Connections,
        folder_pass: FolderPass,
        processed: ProcessedActions,
        reconcile: ReconcilePass,
    ):
        self._account = account
        self._settings = settings
        self._states = states
        self._due = due
        self._connections = connections
        self._pass = folder_pass
        self._processed = processed
        self._reconcile = reconcile

    async def run(self) -> None:
        """Sync until cancelled; raises on connection-level failures."""
        acc = self._account
        self._states.waiting(acc.account_id)
        cap = acc.max_connections or self._settings.fetcher_max_connections
        async with self._session(connecting=True) as imap:
            folders, known = await self._list(imap)
            await self._states.set(acc.account_id, AccountStatus.SYNCING)
            inbox = next((f for f in folders if f.role is FolderRole.INBOX), None)
            others = [f for f in folders if f is not inbox]
            imported = False
            if self._settings.fetcher_notify and inbox is not None and imap.has("NOTIFY"):
                await self._import(imap, inbox, others, second=cap >= 2, known=known)
                imported = True
                # Sent with the next command (EXAMINE INBOX, usually): a round trip fewer.
                refused = await self._notified(imap, folders, inbox, imap.defer_notify(others))
                log.info("%s: NOTIFY refused (%s): polling instead", acc.account_id, refused)
            if inbox is not None and others and imap.has("LIST-STATUS"):
                # A poll is one LIST-STATUS (RFC 5819) for the other folders, brief enough
                # to interrupt IDLE for: one connection, a second only for a first import.
                if not imported:
                    await self._import(imap, inbox, others, second=cap >= 2, known=known)
                await self._one_connection(imap, folders, inbox)
                return
            if cap < 2 or inbox is None or not others:
                await self._one_connection(imap, folders, inbox)
                return
            # IDLE holds its connection: INBOX gets one of its own, the other folders
            # share a second, and both import at once. Never more than the cap.
            async with self._session() as second:
                inbox_synced = asyncio.Event()
                await first_failure(
                    self._watch_inbox(imap, inbox, inbox_synced),
                    self._poll(second, folders, others, inbox_synced),
                )

    @contextlib.asynccontextmanager
    async def _session(self, *, connecting: bool = False) -> AsyncIterator[ImapSession]:
        """A connection, logged in once the server's login pacer admits it, counted
        among the account's (:mod:`.import_connection`); ``connecting``: the account's
        state says so once admitted (waiting for the slot is no state of its own)."""
        acc_id = self._account.account_id

        async def admitted() -> None:
            await self._states.set(acc_id, AccountStatus.CONNECTING)

        async with self._connections.session(admitted if connecting else None) as imap:
            yield imap

    async def _list(self, imap: ImapSession) -> tuple[list[Folder], dict[str, FolderStatus]]:
        """The chosen folders as the server lists them, and, where it has LIST-STATUS,
        their status from the same command (``ImapSession.list_chosen``). Else, or when
        one of them is not listed so, every folder is listed (``LIST "" "*"``) and the
        missing one is reported as before."""
        if imap.has("LIST-STATUS") and self._account.folders:
            chosen = await imap.list_chosen(list(self._account.folders))
            if chosen is not None:
                return self._synced_folders(chosen.folders), chosen.status
        return self._synced_folders(await imap.list_folders()), {}

    async def _import(
        self,
        imap: ImapSession,
        inbox: Folder,
        others: list[Folder],
        *,
        second: bool,
        known: dict[str, FolderStatus],
    ) -> None:
        """The first pass: INBOX and the others at once on two connections when the
        others were never imported (and two are allowed), else one after the other;
        ``known``: the folders' status as listed (see :meth:`_list`)."""
        if second and others and not await self._pass.imported(others):
            async with self._session() as other:
                await first_failure(
                    self._pass.sync_all(imap, [inbox], known), self._pass.sync_all(other, others)
                )
            return
        await self._pass.sync_all(imap, [inbox, *others], known)

    async def _notified(
        self,
        imap: ImapSession,
        folders: list[Folder],
        inbox: Folder,
        agreed: asyncio.Future[str | None],
    ) -> str:
        """One connection, NOTIFY set: IDLE on INBOX until the server reports a change in
        any folder, work arrives (:class:`DueWork`), a reconcile or a recheck is due or
        IDLE is renewed; then every folder is checked (STATUS is cheap, and a
        notification the server sent while another command ran was not seen).

        ``agreed``: the NOTIFY, answered before the first EXAMINE (or whatever command
        it went with) is; returns what the server said if it refused (the IDLE sent
        with that EXAMINE ended at once)."""
        acc_id = self._account.account_id
        s = self._settings
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time() + s.fetcher_reconcile_interval_s

        def refused() -> bool:
            if not agreed.done():  # the server answers commands in order
                raise ImapUnavailable("NOTIFY not answered before the command after it")
            return agreed.result() is not None

        wake = self._due.watch(acc_id)
        try:
            while True:
                wake.clear()  # before housekeeping reads what is due: no arrival is missed
                next_reconcile = await self._housekeeping(imap, folders, next_reconcile)
                await self._states.set(acc_id, AccountStatus.IDLE, synced=True)
                due = min(s.fetcher_idle_renew_s, s.fetcher_notify_recheck_s)
                wait = max(0.0, min(due, next_reconcile - loop.time()))
                await self._idle_on(imap, inbox, wait, wake, stop=refused)
                if refused():
                    return str(agreed.result())
                await self._pass.sync_all(imap, folders)
        finally:
            self._due.unwatch(acc_id)

    async def _one_connection(
        self, imap: ImapSession, folders: list[Folder], inbox: Folder | None
    ) -> None:
        """Everything on one connection: IDLE on INBOX between polls of the others (one
        LIST-STATUS where the server has it, see :meth:`FolderPass.sync_all`)."""
        acc = self._account
        await self._pass.sync_all(imap, folders)
        await self._processed.act(imap, folders)
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self._settings.fetcher_poll_interval_s
        next_reconcile = loop.time() + self._settings.fetcher_reconcile_interval_s
        while True:
            await self._states.set(acc.account_id, AccountStatus.IDLE, synced=True)
            wait = max(0.0, next_poll - loop.time())
            if inbox is not None and wait > 0:
                renew = min(wait, self._settings.fetcher_idle_renew_s)
                if (await self._idle_on(imap, inbox, renew)).changed:
                    await self._pass.sync(imap, inbox)
                    continue
            elif wait > 0:
                await asyncio.sleep(wait)
            await self._pass.sync_all(imap, folders)
            next_reconcile = await self._housekeeping(imap, folders, next_reconcile)
            next_poll = loop.time() + self._settings.fetcher_poll_interval_s

    async def _watch_inbox(self, imap: ImapSession, inbox: Folder, synced: asyncio.Event) -> None:
        """INBOX on its own connection: sync, then IDLE; sync again whenever it changes."""
        await self._pass.sync_all(imap, [inbox])
        synced.set()
        s = self._settings
        # Without IDLE, idle() only waits: then wait one poll interval, not 25 minutes.
        wait = s.fetcher_idle_renew_s if imap.has("IDLE") else s.fetcher_poll_interval_s
        while True:
            await self._idle_on(imap, inbox, wait)
            # Also when IDLE just ran out: a cheap STATUS-like check of what may have
            # been missed while it was being renewed.
            await self._pass.sync_all(imap, [inbox])

    async def _poll(
        self,
        imap: ImapSession,
        folders: list[Folder],
        others: list[Folder],
        inbox_synced: asyncio.Event,
    ) -> None:
        """The other folders, polled on the second connection; processed mail and the
        reconcile of every folder happen here too, so IDLE is never interrupted."""
        acc = self._account
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time() + self._settings.fetcher_reconcile_interval_s
        await self._pass.sync_all(imap, others)
        await inbox_synced.wait()
        while True:
            next_reconcile = await self._housekeeping(imap, folders, next_reconcile)
            await self._states.set(acc.account_id, AccountStatus.IDLE, synced=True)
            await asyncio.sleep(self._settings.fetcher_poll_interval_s)
            await self._pass.sync_all(imap, others)

    async def _idle_on(
        self,
        imap: ImapSession,
        inbox: Folder,
        seconds: float,
        wake: asyncio.Event | None = None,
        *,
        stop: Callable[[], bool] = lambda: False,
    ) -> IdleNews:
        """EXAMINE INBOX and IDLE on it (one write: ``ImapSession.examine_and_idle``);
        over at once if mail came since its last pass looked. IDLE reports what changes
        after it begins (RFC 2177): mail delivered while the pass ran is counted in the
        EXAMINE's EXISTS and UIDNEXT and in no IDLE response, and would wait for the
        next poll (minutes, with NOTIFY)."""
        return await imap.examine_and_idle(
            inbox,
            seconds,
            wake,
            arrived=lambda status: self._pass.arrived_since(inbox, status),
            stop=stop,
        )

    async def _housekeeping(
        self, imap: ImapSession, folders: list[Folder], next_reconcile: float
    ) -> float:
        """Processed mail, then a reconcile when due or asked for; returns when the next
        periodic reconcile is due."""
        acc_id = self._account.account_id
        await self._processed.act(imap, folders)
        loop = asyncio.get_running_loop()
        requested = self._due.reconcile_requested(acc_id)
        if requested is None and loop.time() < next_reconcile:
            return next_reconcile
        await self._reconcile.run(imap, folders)
        if requested is not None:
            await self._due.reconcile_done(acc_id, requested)
        return loop.time() + self._settings.fetcher_reconcile_interval_s

    def _synced_folders(self, listed: list[Folder]) -> list[Folder]:
        """Only the folders the account chose: a CRM must never read the others."""
        by_name = {f.name: f for f in with_sent_folder(listed, self._account.sent_folder)}
        chosen = []
        for name in self._account.folders:
            folder = by_name.get("INBOX" if name.upper() == "INBOX" else name)
            if folder is None:
                log.warning(
                    "%s: folder %r does not exist on the server", self._account.account_id, name
                )
                continue
            chosen.append(folder)
        return chosen
