"""One folder pass's raw-message records, sent to Kafka as whole record batches when the
pass is an import.

``AIOKafkaProducer.send()`` does for every message what a pass needs once: it awaits the
topic's metadata, hashes the key to a partition (murmur2 in Python), and creates, resolves
and calls back a future and a ``RecordMetadata`` of its own. In an import that was about
a tenth of the fetcher's CPU, where IMAP and Kafka share one core (bench/RESULTS.md,
"Issue #19, round 8"). Here the records of a pass of ``WHOLE_FROM`` messages or more, all
keyed by the account and so on one partition (the account's order), go into a batch
builder of the producer's (``create_batch``), and each batch is sent whole
(``send_batch``):

- when it is full (the producer's ``max_batch_size``);
- when the pass has no message at hand (:meth:`RecordBatches.flush`), so that no record
  waits in a builder while its import waits for IMAP; while the broker is slower than
  IMAP, ``send_batch`` waits for the batch before it, messages queue meanwhile, and the
  next batch is a full one;
- at the end of each batch of the pass (its acknowledgement is what the cursor waits for).

Each sent batch has one future, acknowledged or failed as a whole: acks=all, retries and
idempotence as for ``send()``, which builds the same batches. What a batch holds counts in
the replica's total (.held_bytes) until then.

A smaller pass (new mail, a sender's filed copy) sends each record with ``send()``, as
before: the producer then puts the records of every account on a partition into one
batch, where whole batches of one pass each would queue behind the partition's batch
before them (``send_batch`` holds one batch per partition), and the few-message passes of
thousands of accounts would take turns.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata

from schemas.common import FolderRole
from services.fetcher.held_bytes import HeldBytes
from services.imap import FetchedMessage
from services.imap.tls_buffer import BULK_FETCH_FROM

if TYPE_CHECKING:
    from services.fetcher.publish import Publisher

_PARTITIONER = DefaultPartitioner()
# Messages in a pass from which its records go as whole batches: an import, the same
# line from which its UID FETCH reads in large reads (.tls_buffer).
WHOLE_FROM = BULK_FETCH_FROM

Sent = asyncio.Future[RecordMetadata]


class RecordBatches:
    """The records of one account's folder, in the order added; see the module doc."""

    def __init__(
        self,
        publisher: Publisher,
        account_id: str,
        folder: str,
        role: FolderRole,
        uidvalidity: int,
        partition: int,
        *,
        whole: bool,
    ):
        self._publisher = publisher
        self._producer: AIOKafkaProducer = publisher.producer
        self._topic = publisher.topic
        self._account_id, self._folder, self._role = account_id, folder, role
        self._uidvalidity = uidvalidity
        self._key = account_id.encode()
        self._partition = partition
        self._whole = whole  # whole batches of this pass, else one send() a record
        self._replica: HeldBytes = publisher.held
        self._builder: BatchBuilder | None = None
        self._open_bytes = 0  # of the messages in the builder, counted in the replica
        self._sent: list[Sent] = []

    async def add(self, msg: FetchedMessage) -> None:
        """``msg``'s record (its blob stored first, when it has one): in the open batch,
        which goes out once full; else to ``send()``. ``msg`` counts in the replica from its arrival
        (.ordered_fetch): from here on this gives it back, once its batch is acknowledged
        or failed; if this raises, the caller still owns it."""
        value, headers = await self._publisher.record(
            self._account_id, self._folder, self._role, self._uidvalidity, msg
        )
        if not self._whole:
            sent: Sent = await self._producer.send(
                self._topic, value=value, key=self._key, headers=headers, partition=self._partition
            )
            sent.add_done_callback(functools.partial(_settled, self._replica, len(msg.body)))
            self._sent.append(sent)
            return
        if self._builder is None:
            self._builder = self._producer.create_batch()
        appended = self._builder.append(key=self._key, value=value, timestamp=None, headers=headers)
        if appended is not None:
            self._open_bytes += len(msg.body)
            return
        await self.flush()  # full: this record opens the next batch
        self._builder = self._producer.create_batch()
        self._builder.append(key=self._key, value=value, timestamp=None, headers=headers)
        self._open_bytes = len(msg.body)

    async def flush(self) -> None:
        """Send the open batch, if it has records (with whole batches)."""
        builder, size = self._builder, self._open_bytes
        if builder is None:
            return
        self._builder, self._open_bytes = None, 0
        builder.close()  # nothing else appends to it, and it does not linger
        try:
            sent: Sent = await self._producer.send_batch(
                builder, self._topic, partition=self._partition
            )
        except BaseException:
            self._replica.remove(size)
            raise
        sent.add_done_callback(functools.partial(_settled, self._replica, size))
        self._sent.append(sent)

    def take_sent(self) -> list[Sent]:
        """The batches (or records) sent since the last call, each done once the broker
        acknowledged (or failed) it."""
        sent, self._sent = self._sent, []
        return sent

    def discard(self) -> None:
        """The pass stopped: the open batch is never sent (what it held is fetched again
        next time), and no longer held."""
        if self._builder is not None:
            self._builder = None
            self._replica.remove(self._open_bytes)
            self._open_bytes = 0


async def partition_of(producer: AIOKafkaProducer, topic: str, key: bytes) -> int:
    """The partition the producer's default partitioner gives ``key`` (murmur2, as Kafka's
    own clients), where ``send()`` would have put it."""
    partitions = sorted(await producer.partitions_for(topic))
    available = list(producer.client.cluster.available_partitions_for_topic(topic) or ())
    partition: int = _PARTITIONER(key, partitions, available)
    return partition


def _settled(replica: HeldBytes, size: int, sent: Sent) -> None:
    replica.remove(size)
    if not sent.cancelled():
        sent.exception()  # retrieved: whoever awaits it sees it; nobody may, once stopped
