"""The accounts topic as a table, split across fetcher replicas by partition.

Replicas form one consumer group. Offsets are never committed: on every assignment a
replica reads its partitions from the beginning (the topic is compacted, so that is the
current configuration of its accounts). On revocation it stops the accounts of the
lost partitions *before* the rebalance completes, so no account is ever synced by two
replicas at once.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from pydantic import ValidationError

from schemas.account import AccountRecord
from services.fetcher.supervisor import Supervisor

log = logging.getLogger("mailsync.fetcher.accounts")


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, table: AccountTable):
        self._table = table

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._table.drop_partitions(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            await self._table.consumer.seek_to_beginning(*assigned)
        log.info("fetcher now holds account partitions %s", sorted(tp.partition for tp in assigned))


class AccountTable:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str, supervisor: Supervisor):
        self.consumer = consumer
        self._topic = topic
        self._supervisor = supervisor
        self._partition_of: dict[str, TopicPartition] = {}

    def subscribe(self) -> None:
        self.consumer.subscribe([self._topic], listener=_Rebalance(self))

    async def drop_partitions(self, partitions: set[TopicPartition]) -> None:
        lost = [a for a, tp in self._partition_of.items() if tp in partitions]
        for account_id in lost:
            del self._partition_of[account_id]
        await self._supervisor.stop(lost)
        if lost:
            log.info("stopped %d accounts after losing partitions", len(lost))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    await self._apply(tp, record.key, record.value)

    async def _apply(self, tp: TopicPartition, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            log.error("account record without a key on %s ignored", tp)
            return
        account_id = key.decode()
        if value is None:  # tombstone: the account was removed
            self._partition_of.pop(account_id, None)
            await self._supervisor.stop([account_id])
            return
        try:
            account = AccountRecord.model_validate_json(value)
        except ValidationError as exc:
            log.error("invalid account record %r ignored: %s", account_id, exc)
            return
        self._partition_of[account_id] = tp
        await self._supervisor.apply(account)
