"""Publishing fetched messages: one record per message, an import's sent in whole batches
(.record_batches), all acknowledged (acks=all) or failed.

A message larger than the inline limit goes to the blob store first (its large
attachments decoded, stored once with the activity's: ``BlobStore.put_message``) and the
record carries its reference; the cursor is advanced by the caller only once the batches
holding its messages are acknowledged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from schemas.common import FolderRole, MessageLocation
from schemas.envelope import Headers, encode_headers
from schemas.mailbox_event import MailboxChange, MailboxEvent
from schemas.raw_message import RawMessageMeta
from services.common import metrics
from services.common.blobs import BlobStore
from services.fetcher.held_bytes import HeldBytes
from services.fetcher.record_batches import WHOLE_FROM, RecordBatches, partition_of
from services.imap import FetchedMessage


def raw_meta(
    account_id: str,
    folder: str,
    role: FolderRole,
    uidvalidity: int,
    msg: FetchedMessage,
    sha256: str,
) -> RawMessageMeta:
    return RawMessageMeta(
        location=MessageLocation(
            account_id=account_id, folder=folder, uidvalidity=uidvalidity, uid=msg.uid
        ),
        folder_role=role,
        internaldate=msg.internaldate,
        size=msg.size,
        sha256=sha256,
        flags=msg.flags,
        fetched_at=dt.datetime.now(dt.UTC),
    )


class Publisher:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        blobs: BlobStore,
        inline_limit: int,
        held: HeldBytes | None = None,
    ):
        self.producer = producer
        self.topic = topic
        self._blobs = blobs
        self._inline_limit = inline_limit
        # What the fetches publishing here hold, over the replica (.held_bytes).
        self.held = held or HeldBytes(None)

    async def records(
        self, account_id: str, folder: str, role: FolderRole, uidvalidity: int, messages: int
    ) -> RecordBatches:
        """Where a pass of ``folder`` adds its ``messages`` (.record_batches: whole batches
        from ``WHOLE_FROM``), on the partition of the account's key."""
        partition = await partition_of(self.producer, self.topic, account_id.encode())
        whole = messages >= WHOLE_FROM
        return RecordBatches(self, account_id, folder, role, uidvalidity, partition, whole=whole)

    async def publish(
        self,
        account_id: str,
        folder: str,
        role: FolderRole,
        uidvalidity: int,
        messages: list[FetchedMessage],
    ) -> None:
        """Send every message and wait until the broker acknowledged all of them (a few
        messages outside a folder pass: the sender's filed copies)."""
        records = await self.records(account_id, folder, role, uidvalidity, len(messages))
        try:
            for message in messages:
                self.held.add(len(message.body))  # given back as for a fetched one
                try:
                    await records.add(message)
                except BaseException:
                    self.held.remove(len(message.body))
                    raise
            await records.flush()
        finally:
            records.discard()
        metrics.fetched(account_id, folder, len(messages))
        await self.acknowledged(account_id, folder, records.take_sent(), len(messages))

    async def record(
        self,
        account_id: str,
        folder: str,
        role: FolderRole,
        uidvalidity: int,
        msg: FetchedMessage,
    ) -> tuple[bytes, Headers]:
        """The value and headers of ``msg``'s record; a message above the inline limit is
        stored in the blob store first, and its record carries the reference."""
        sha256 = hashlib.sha256(msg.body).hexdigest()
        meta = raw_meta(account_id, folder, role, uidvalidity, msg, sha256)
        if len(msg.body) <= self._inline_limit:
            return msg.body, encode_headers(meta, in_blob=False)
        ref = await self._blobs.put_message(msg.body, sha256)
        return b"", encode_headers(meta.model_copy(update={"blob": ref}), in_blob=True)

    async def acknowledged(
        self,
        account_id: str,
        folder: str,
        sent: list[asyncio.Future[RecordMetadata]],
        records: int,
    ) -> None:
        """Once the broker acknowledged every batch of ``sent`` (.record_batches), which
        hold ``records`` records."""
        await asyncio.gather(*sent)
        metrics.published(account_id, folder, records)


class EventPublisher:
    """Flag changes, expunges and renumberings, on the mailbox-events topic, all acknowledged."""

    def __init__(self, producer: AIOKafkaProducer, topic: str):
        self._producer = producer
        self._topic = topic

    async def publish(self, account_id: str, events: list[MailboxChange]) -> None:
        key = account_id.encode()
        pending = [
            await self._producer.send(
                self._topic, MailboxEvent(event=e).model_dump_json().encode(), key=key
            )
            for e in events
        ]
        await asyncio.gather(*pending)
