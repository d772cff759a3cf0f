"""One account's sync: connect, publish every new message of every synced folder, then IDLE.

Runs inside the account's own task (see :mod:`.supervisor`); everything it raises is
classified there. :class:`AccountWorker` composes the parts, one role each:

- :mod:`.schedule`           connections, IDLE, polls and housekeeping, and when
- :mod:`.folder_pass`        one folder's pass (:mod:`.revalidate_pass` on a UIDVALIDITY
  change, :mod:`.new_mail` for what is new), the cursor saved last
- :mod:`.processed_actions`  processed mail moved, marked or left
- :mod:`.reconcile_pass`     published UIDs against MongoDB, gaps published again
- :mod:`.account_cursors`    the account's cursors: every write, and its settle mark
"""

from __future__ import annotations

import ssl

from schemas.account import AccountRecord
from services.accounts.tombstones import TombstoneStore
from services.common.oauth2 import AccessToken
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor import CursorStore
from services.fetcher.due_work import DueWork
from services.fetcher.folder_pass import FolderPass
from services.fetcher.import_connection import Connections
from services.fetcher.login_pacer import LoginPacer
from services.fetcher.new_mail import NewMail
from services.fetcher.processed import ProcessedQueue
from services.fetcher.processed_actions import ProcessedActions
from services.fetcher.publish import EventPublisher, Publisher
from services.fetcher.reconcile_pass import ReconcilePass
from services.fetcher.revalidate_pass import Revalidation
from services.fetcher.schedule import Schedule
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.stored_sightings import SightingReader
from services.fetcher.worker_start import Start
from services.imap import ImapSession


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
        due: DueWork,
        ssl_context: ssl.SSLContext,
        pacer: LoginPacer,
        start: Start | None = None,
    ):
        self.account = account
        acc_id = account.account_id
        mine = (start.cursors if start else None) or AccountCursors(
            cursors,
            acc_id,
            grace_s=settings.fetcher_reconcile_grace_s,
            known=start.known_cursors if start else None,
        )
        self.cursors = mine  # a retry goes on with them (.worker_start)
        handoff = start is not None and start.handoff

        def connect() -> ImapSession:
            return ImapSession(
                account.imap,
                password,
                timeout=settings.fetcher_imap_timeout_s,
                ssl_context=ssl_context,
                read_buffer=settings.fetcher_tls_read_buffer_kib * 1024,
            )

        connections = Connections(
            acc_id,
            connect=connect,
            admit=lambda: pacer.admit(account.imap.host, handoff=handoff),
            cap=account.max_connections or settings.fetcher_max_connections,
            second_from=settings.fetcher_second_connection_from,
        )
        folder_pass = FolderPass(
            account,
            cursors=mine,
            states=states,
            events=events,
            tombstones=tombstones,
            new_mail=NewMail(
                account,
                settings=settings,
                cursors=mine,
                states=states,
                publisher=publisher,
                tombstones=tombstones,
                connections=connections,
            ),
            revalidation=Revalidation(
                acc_id, cursors=mine, states=states, events=events, sightings=sightings
            ),
        )
        self._schedule = Schedule(
            account,
            settings=settings,
            states=states,
            due=due,
            connections=connections,
            folder_pass=folder_pass,
            processed=ProcessedActions(
                account, cursors=mine, processed=processed, due=due, events=events
            ),
            reconcile=ReconcilePass(
                account,
                settings=settings,
                cursors=mine,
                states=states,
                publisher=publisher,
                events=events,
                sightings=sightings,
                tombstones=tombstones,
            ),
        )

    async def run(self) -> None:
        """Sync until cancelled; raises on connection-level failures."""
        await self._schedule.run()
