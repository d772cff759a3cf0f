"""The sender service: start -> run -> cleanup(failed).

Three loops: the intake records send requests in the ledger; the pump claims what is
due in the ledger (new requests, retries, unfiled or unannounced ones, work a dead
replica left) and dispatches it, a bounded number at work at a time (claimed in
batches: up to as many again wait for a slot, holding their lease); the heartbeat
renews the short leases of the requests in hand, so a dead replica's work is free
within a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import ssl
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from schemas.send_request import SendRecord
from schemas.topics import (
    ACCOUNTS,
    DEAD_LETTERS,
    RAW_MESSAGES,
    SEND_REQUESTS,
    SEND_RESULTS,
    topics_of,
)
from services.accounts import RotatedSecretWriter
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.kafka import consumer, ensure_topics, producer
from services.common.lifecycle import first_failure
from services.common.mongo import database, mongo_client
from services.common.oauth2 import TokenProvider
from services.common.secrets import SecretBox
from services.fetcher.publish import Publisher
from services.imap import Credentials
from services.sender.byte_budget import ByteBudget, bytes_in_hand
from services.sender.dispatcher import Dispatcher
from services.sender.filing import SentFiler, close_link
from services.sender.intake import Intake
from services.sender.ledger import SendLedger
from services.sender.pool import Pool
from services.sender.results import ResultPublisher
from services.sender.reuse import Limits
from services.sender.settings import SenderSettings
from services.sender.slots import FairSlots
from services.sender.smtp import SmtpTransport, close_session

log = logging.getLogger("mailsync.sender")


class SenderApp:
    name = "sender"

    def __init__(self, settings: SenderSettings):
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}-{id(self):x}"
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._directory: AccountDirectory | None = None
        self._ledger: SendLedger | None = None
        self._dispatcher: Dispatcher | None = None
        self._intake: Intake | None = None
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._account_of: dict[asyncio.Task[None], str] = {}  # the in-flight ones' accounts
        # Requests at work at once; those claimed beyond it wait for a slot.
        self._slots = FairSlots(settings.sender_concurrency)
        self._bytes = ByteBudget(settings.sender_max_bytes_in_hand)
        self._accepted = False  # new requests in the ledger since the last claim
        self._tokens: TokenProvider | None = None
        self._pools: list[Pool[Any]] = []
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        secrets = SecretBox(s.secret_key)
        await ensure_topics(s, topics_of(self.name))
        self._mongo = mongo_client(s, app_name="mailsync-sender")
        db = database(self._mongo, s)
        self._ledger = SendLedger(db, self.worker_id, dt.timedelta(seconds=s.sender_lease_s))
        await self._ledger.ensure_indexes()
        blobs = BlobStore(db)
        self._producer = producer(s, client_id="mailsync-sender")
        await self._producer.start()
        self._directory = AccountDirectory(
            consumer(s, group_id=None, client_id="mailsync-sender-accounts"), s.topic(ACCOUNTS)
        )
        await self._directory.start()
        await self._directory.wait_ready(timeout=60)
        tls = ssl.create_default_context()
        if s.sender_ca_file is not None:
            tls.load_verify_locations(cafile=str(s.sender_ca_file))
        self._tokens = TokenProvider(
            secrets,
            margin_s=s.oauth2_refresh_margin_s,
            timeout_s=s.oauth2_timeout_s,
            on_rotation=RotatedSecretWriter(db, self._producer, s, self._directory),
        )
        limits = Limits(s.sender_session_max_messages, s.sender_session_max_age_s)
        smtp_pool = Pool(
            per_account=s.sender_connections_per_account, limits=limits, close=close_session
        )
        imap_pool = Pool(
            per_account=s.sender_connections_per_account, limits=limits, close=close_link
        )
        self._pools = [smtp_pool, imap_pool]
        self._dispatcher = Dispatcher(
            s,
            ledger=self._ledger,
            accounts=self._directory,
            secrets=secrets,
            tokens=self._tokens,
            transport=SmtpTransport(
                timeout=s.sender_timeout_s,
                ssl_context=tls,
                local_hostname=s.sender_hostname,
                pool=smtp_pool,
            ),
            filer=SentFiler(
                timeout=s.sender_timeout_s,
                ssl_context=tls,
                credentials=Credentials(secrets, self._tokens),
                pool=imap_pool,
            ),
            blobs=blobs,
            activities=db["activities"],
            results=ResultPublisher(self._producer, s.topic(SEND_RESULTS)),
            raw=Publisher(self._producer, s.topic(RAW_MESSAGES), blobs, s.inline_limit_bytes),
        )
        # Static membership (KIP-345): restarted under the same name, this replica takes
        # its place in the group at once, with its partitions, instead of waiting out
        # the dead process's session before a rebalance lets it consume again.
        self._consumer = consumer(
            s,
            s.topic(SEND_REQUESTS),
            group_id=s.sender_group,
            client_id="mailsync-sender",
            group_instance_id=s.instance_id,
        )
        await self._consumer.start()
        self._intake = Intake(
            self._consumer,
            self._ledger,
            self._producer,
            results_topic=s.topic(SEND_RESULTS),
            dead_letter_topic=s.topic(DEAD_LETTERS),
            on_accepted=self._on_accepted,
        )

    def consumer_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """Groups and topics whose lag the metrics report."""
        s = self.settings
        return [(s.sender_group, (s.topic(SEND_REQUESTS),))]

    async def run(self, stop: asyncio.Event) -> None:
        assert self._intake is not None
        # The heartbeat outlives ``stop``: cleanup lets the sends in flight finish, and
        # their leases must hold until they do.
        self._beat = asyncio.create_task(self._heartbeat(), name="lease-heartbeat")
        await first_failure(self._intake.run(stop), self._pump(stop))

    async def _heartbeat(self) -> None:
        """Renew the leases of the requests in hand, four times a lease: a renewal may
        fail or come late three times before another replica could take one over."""
        assert self._ledger is not None
        while True:
            await asyncio.sleep(self.settings.sender_lease_s / 4)
            held = {task.get_name() for task in self._inflight}  # named by record id
            try:
                lost = await self._ledger.renew(held)
            except Exception as exc:  # a database blip: the next beat tries again
                log.warning("renewing the leases of %d requests failed: %r", len(held), exc)
                continue
            for request_id in lost:
                # Its next ledger write fails (LeaseLost) and the task lets it go.
                log.warning("request %s: lease lost to another replica", request_id)

    async def _pump(self, stop: asyncio.Event) -> None:
        assert self._ledger is not None and self._dispatcher is not None
        limit = self.settings.sender_concurrency
        # A claim costs the database a commit and a read of what it took (and every
        # few claims a pass over the due backlog), however many it takes, so it takes
        # a batch: up to ``limit`` more than can be at work, claimed once the ones
        # waiting for a slot have all begun. In a burst that is one claim per
        # ``limit`` requests, not one per request done (SecantusDB, 300 requests: 37
        # claims, not 112); a lone request finds the pump idle and is claimed at once.
        # Waiting ones hold their lease (renewed by the heartbeat like the rest) and
        # take free slots account by account (FairSlots). Newly accepted requests are
        # claimed at once, into whatever room there is: a quiet account's request does
        # not wait for a busy one's batch to begin (fair_pick takes it first).
        while not stop.is_set():
            room = 2 * limit - len(self._inflight)
            if room >= limit or (self._accepted and room > 0):
                self._accepted = False
                busy = {task.get_name() for task in self._inflight}  # named by record id
                per_account = Counter(self._account_of.values())
                for record in await self._ledger.claim_due(room, busy, per_account):
                    task = asyncio.create_task(self._dispatch(record), name=record.id)
                    self._inflight.add(task)
                    self._account_of[task] = record.request.account_id
                    task.add_done_callback(self._done)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.sender_poll_interval_s)

    def _on_accepted(self) -> None:
        self._accepted = True
        self._wake.set()

    async def _dispatch(self, record: SendRecord) -> None:
        assert self._dispatcher is not None
        async with (
            self._slots.hold(record.request.account_id) as let_go,
            self._bytes.hold(bytes_in_hand(record.request)),
        ):
            await self._dispatcher.handle(record, let_go)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._account_of.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The record keeps its state and lease; another pass takes it up again.
            log.error("request %s: unexpected failure: %r", task.get_name(), exc, exc_info=exc)
        self._wake.set()

    async def cleanup(self, failed: bool) -> None:
        if self._inflight:
            # Let sends in flight finish (their state is durable at every step anyway).
            await asyncio.wait(self._inflight, timeout=self.settings.shutdown_timeout_s)
            for task in self._inflight:
                task.cancel()
            # Cancelled tasks give their sessions back to the pools before these close.
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        for pool in self._pools:
            await pool.aclose()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._directory is not None:
            await self._directory.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._tokens is not None:
            await self._tokens.aclose()
        if self._mongo is not None:
            await self._mongo.close()
