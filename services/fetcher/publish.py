"""Publishing fetched messages: one record per message, all acknowledged (acks=all) or none.

A message larger than the inline limit goes to the blob store first (its large
attachments decoded, stored once with the activity's: ``BlobStore.put_message``) and the
record carries its reference; the cursor is advanced by the caller only after this returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from schemas.common import FolderRole, MessageLocation
from schemas.envelope import encode_headers
from schemas.mailbox_event import MailboxChange, MailboxEvent
from schemas.raw_message import RawMessageMeta
from services.common import metrics
from services.common.blobs import BlobStore
from services.fetcher.held_bytes import HeldBytes
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
        self._producer = producer
        self._topic = topic
        self._blobs = blobs
        self._inline_limit = inline_limit
        # What the fetches publishing here hold, over the replica (.held_bytes).
        self.held = held or HeldBytes(None)

    async def publish(
        self,
        account_id: str,
        folder: str,
        role: FolderRole,
        uidvalidity: int,
        messages: list[FetchedMessage],
    ) -> None:
        """Send every message and wait until the broker acknowledged all of them."""
        metrics.fetched(account_id, folder, len(messages))
        pending = [await self.send(account_id, folder, role, uidvalidity, m) for m in messages]
        await self.acknowledged(account_id, folder, pending)

    async def send(
        self,
        account_id: str,
        folder: str,
        role: FolderRole,
        uidvalidity: int,
        msg: FetchedMessage,
    ) -> asyncio.Future[RecordMetadata]:
        """Hand one message to the producer (its blob stored first, when it has one); the
        future ends with the broker's acknowledgement. Records go out in the order sent."""
        sha256 = hashlib.sha256(msg.body).hexdigest()
        meta = raw_meta(account_id, folder, role, uidvalidity, msg, sha256)
        value = msg.body
        if len(msg.body) > self._inline_limit:
            ref = await self._blobs.put_message(msg.body, sha256)
            meta = meta.model_copy(update={"blob": ref})
            value = b""
        headers = encode_headers(meta, in_blob=meta.blob is not None)
        sent: asyncio.Future[RecordMetadata] = await self._producer.send(
            self._topic, value=value, key=account_id.encode(), headers=headers
        )
        return sent

    async def acknowledged(
        self, account_id: str, folder: str, pending: list[asyncio.Future[RecordMetadata]]
    ) -> None:
        """Once the broker acknowledged every one of ``pending`` (what :meth:`send` gave)."""
        await asyncio.gather(*pending)
        metrics.published(account_id, folder, len(pending))


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
