"""The fetcher service: start -> run -> cleanup(failed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from schemas.account import AccountRecord
from schemas.topics import (
    ACCOUNTS,
    ACTIVITY_CONFIRMATIONS,
    MAILBOX_EVENTS,
    RAW_MESSAGES,
    topics_of,
)
from services.accounts import RotatedSecretWriter
from services.accounts.tombstones import TombstoneStore
from services.common import metrics
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.heap import release_free_memory
from services.common.kafka import consumer, ensure_topics, producer
from services.common.lifecycle import first_failure
from services.common.mongo import database, mongo_client
from services.common.oauth2 import AccessToken, TokenProvider
from services.common.secrets import SecretBox
from services.fetcher.assigned_accounts import AccountTable
from services.fetcher.confirmations import ConfirmationLoop
from services.fetcher.cursor import CursorStore
from services.fetcher.cursor_preload import preload
from services.fetcher.due_work import DueWork
from services.fetcher.held_bytes import HeldBytes
from services.fetcher.login_pacer import LoginPacer
from services.fetcher.membership import SessionGuard
from services.fetcher.processed import ProcessedQueue
from services.fetcher.publish import EventPublisher, Publisher
from services.fetcher.reconcile_requests import ReconcileRequests
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.stored_sightings import SightingReader
from services.fetcher.supervisor import Supervisor
from services.fetcher.worker import AccountWorker
from services.fetcher.worker_start import Start
from services.imap import Credentials

log = logging.getLogger("mailsync.fetcher")

# A member learns that the group rebalances from the answer to its next heartbeat: a
# fifth of the 30 s session was up to 6 s of waiting, twice when a replica joins (the
# old owner learns of the join, then the new one of the follow-up that hands out what
# the old one stopped, see membership.py), once when one leaves, all while the moved
# accounts sync nowhere (bench/scale.py; issue #16's 30 s). A heartbeat a second is one
# small request a second per replica.
HEARTBEAT_MS = 1000


class FetcherApp:
    name = "fetcher"

    def __init__(self, settings: FetcherSettings):
        self.settings = settings
        # Unique per process, not only per host: two replicas on one machine must not
        # speak for each other's account states (one heartbeat document each).
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self.supervisor: Supervisor | None = None
        self._table: AccountTable | None = None
        self._directory: AccountDirectory | None = None
        self._confirmations_consumer: AIOKafkaConsumer | None = None
        self._confirmations: ConfirmationLoop | None = None
        self._tokens: TokenProvider | None = None
        self._states: StateStore | None = None
        self._due: DueWork | None = None

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        secrets = SecretBox(s.secret_key)
        await ensure_topics(s, topics_of(self.name))
        self._mongo = mongo_client(s, app_name="mailsync-fetcher")
        db = database(self._mongo, s)
        self._producer = producer(s, client_id="mailsync-fetcher")
        await self._producer.start()
        blobs = BlobStore(db)
        await blobs.ensure_indexes()
        # A few poll intervals without a heartbeat: the account is not running.
        states = StateStore(
            db, self.worker_id, stale_after_s=max(3 * s.fetcher_poll_interval_s, 10)
        )
        self._states = states
        cursors = CursorStore(db)
        held = HeldBytes(s.fetcher_held_mib * 1024 * 1024)
        metrics.report_fetched_bytes_held(lambda: held.held)
        publisher = Publisher(
            self._producer, s.topic(RAW_MESSAGES), blobs, s.inline_limit_bytes, held
        )
        events = EventPublisher(self._producer, s.topic(MAILBOX_EVENTS))
        processed = ProcessedQueue(db)
        sightings = SightingReader(db)
        tombstones = TombstoneStore(db)
        await tombstones.ensure_indexes()
        self._due = due = DueWork(ReconcileRequests(db), processed)
        pacer = LoginPacer(
            s.fetcher_logins_per_s,
            s.fetcher_login_burst,
            handoff_rate=s.fetcher_handoff_logins_per_s,
        )
        await due.refresh()
        tls = ssl.create_default_context()
        if s.fetcher_ca_file is not None:
            tls.load_verify_locations(cafile=str(s.fetcher_ca_file))

        self._directory = AccountDirectory(
            consumer(s, group_id=None, client_id="mailsync-fetcher-accounts"), s.topic(ACCOUNTS)
        )
        await self._directory.start()
        await self._directory.wait_ready(timeout=60)
        self._tokens = TokenProvider(
            secrets,
            margin_s=s.oauth2_refresh_margin_s,
            timeout_s=s.oauth2_timeout_s,
            on_rotation=RotatedSecretWriter(db, self._producer, s, self._directory),
        )

        def make_worker(
            record: AccountRecord, password: str | AccessToken, start: Start
        ) -> AccountWorker:
            return AccountWorker(
                record,
                password,
                settings=s,
                cursors=cursors,
                states=states,
                publisher=publisher,
                events=events,
                processed=processed,
                sightings=sightings,
                tombstones=tombstones,
                due=due,
                ssl_context=tls,
                pacer=pacer,
                start=start,
            )

        self.supervisor = Supervisor(s, states, Credentials(secrets, self._tokens), make_worker)
        # Static membership (KIP-345) under the pod's name: a replica restarted within
        # the session gets its partitions back without a rebalance, so the accounts of
        # every other replica keep their IDLE connections.
        session_ms = int(s.fetcher_session_timeout_s * 1000)
        self._table = AccountTable(
            s.topic(ACCOUNTS),
            self.supervisor,
            SessionGuard(s.fetcher_session_timeout_s),
            shared=self._directory.shared,
            preload=lambda records: preload(cursors, records),
        )
        # Our sticky assignor first; roundrobin only while a replica of an older version
        # is in the group (see assigned_accounts.py). The rebalance timeout is the session's: the
        # guard's deadline covers both ways the broker drops a member.
        self._consumer = consumer(
            s,
            group_id=s.fetcher_group,
            client_id="mailsync-fetcher",
            group_instance_id=s.instance_id,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=min(HEARTBEAT_MS, session_ms // 3),
            rebalance_timeout_ms=session_ms,
            partition_assignment_strategy=(self._table.assignor, RoundRobinPartitionAssignor),
        )
        self._table.subscribe(self._consumer)
        await self._consumer.start()
        self._confirmations_consumer = consumer(
            s,
            s.topic(ACTIVITY_CONFIRMATIONS),
            group_id=f"{s.fetcher_group}-confirmations",
            client_id="mailsync-fetcher",
        )
        await self._confirmations_consumer.start()
        self._confirmations = ConfirmationLoop(
            self._confirmations_consumer, self._directory, processed, due
        )

    def consumer_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """Groups and topics whose lag the metrics report."""
        s = self.settings
        return [
            (s.fetcher_group, (s.topic(ACCOUNTS),)),
            (f"{s.fetcher_group}-confirmations", (s.topic(ACTIVITY_CONFIRMATIONS),)),
        ]

    async def run(self, stop: asyncio.Event) -> None:
        assert self._table is not None and self._confirmations is not None
        assert self._due is not None and self._states is not None
        await first_failure(
            self._table.run(stop),
            self._table.guard(stop),
            self._confirmations.run(stop),
            self._heartbeat(stop),
            self._due.run(stop, self.settings.fetcher_poll_interval_s),
            self._states.run(stop),
            self._trim_heap(stop),
        )

    async def _trim_heap(self, stop: asyncio.Event) -> None:
        """Freed memory back to the system now and then (:mod:`services.common.heap`):
        with thousands of idle accounts, RSS otherwise stays at the last import's peak."""
        every = self.settings.fetcher_heap_trim_s
        while every > 0 and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            # In a thread: the first trim after a large import walks many free blocks
            # (a second or so at 10,000 accounts); ctypes lets go of the GIL meanwhile.
            if not stop.is_set() and not await asyncio.to_thread(release_free_memory):
                return  # not glibc: nothing to do

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Every poll interval: the accounts this replica runs are alive (their state is
        owned by a live worker; see :class:`StateStore`)."""
        assert self._states is not None
        while not stop.is_set():
            try:
                await self._states.heartbeat()
            except PyMongoError as exc:  # the next beat tries again; the sync goes on
                log.warning("account heartbeat not stored: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.fetcher_poll_interval_s)

    async def cleanup(self, failed: bool) -> None:
        if self._states is not None:
            with contextlib.suppress(PyMongoError):  # states set last, before the release
                await self._states.flush()
        if self.supervisor is not None:
            await self.supervisor.stop_all()
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: the accounts move on now
        if self._states is not None:
            await self._states.settle()  # their release written meanwhile
        if self._confirmations_consumer is not None:
            await self._confirmations_consumer.stop()
        if self._directory is not None:
            await self._directory.stop()
        if self._producer is not None:
            await self._producer.stop()  # flushes what is buffered
        if self._mongo is not None:
            await self._mongo.close()
        if self._tokens is not None:
            await self._tokens.aclose()
