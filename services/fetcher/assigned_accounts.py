"""The accounts topic as a table, split across fetcher replicas by partition.

Replicas form one consumer group. Offsets are never committed: on every assignment a
replica reads its partitions from the beginning (the topic is compacted, so that is the
current configuration of its accounts).

A rebalance stops only the accounts whose partitions leave this replica, and no account
is ever synced by two replicas at once:

- aiokafka's protocol is eager: every rebalance revokes all of a member's partitions.
  Under the group's own assignor (``membership.py``) the revocation stops nothing; the
  new assignment stops the accounts of the partitions missing from it. That is safe
  because the assignor never gives a partition to a member while another member
  reports running it: a moved partition is held back for one generation, its old owner
  stops its accounts, asks for the follow-up rebalance, and reports it no longer.
- A member the broker drops without its rejoining (killed, or cut off from the broker
  while still reaching the mail servers) has its partitions handed out at once. The
  guard (:class:`SessionGuard`) stops all of this replica's accounts two thirds of a
  session after the coordinator last answered it, before the broker can drop it, and
  asks to rejoin; a member joining again reports nothing, and gets its partitions back
  with the next assignment.
- A generation under another assignor (a replica of an older mailsync, which offers
  only ``roundrobin``, makes the group fall back to it) gives out partitions at once,
  as before: the next revocation stops all accounts, as before. Going back to such a
  version: stop all fetchers first (docs in README).

Every change to the running accounts holds one lock, so an account record being
applied and a partition being dropped never interleave.

The records come in batches (a new assignment reads its partitions from the beginning:
thousands at once in a rebalance). The accounts a batch starts get their folder cursors
read for the whole batch first (:mod:`.cursor_preload`), a few queries instead of two
per account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from pydantic import ValidationError

from schemas.account import AccountRecord
from services.fetcher.cursor_preload import Known
from services.fetcher.membership import SessionGuard, StickyAssignor, join_once
from services.fetcher.supervisor import Supervisor

log = logging.getLogger("mailsync.fetcher.accounts")

Preload = Callable[[Sequence[AccountRecord]], Awaitable[dict[str, Known]]]


async def _nothing(records: Sequence[AccountRecord]) -> dict[str, Known]:
    return {}


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, table: AccountTable):
        self._table = table

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._table.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._table.assigned(set(assigned))


class AccountTable:
    def __init__(
        self,
        topic: str,
        supervisor: Supervisor,
        guard: SessionGuard,
        shared: Callable[[AccountRecord], AccountRecord] = lambda account: account,
        preload: Preload = _nothing,
    ):
        self._consumer: AIOKafkaConsumer | None = None
        self._topic = topic
        self._supervisor = supervisor
        self._guard = guard
        self._shared = shared  # the account directory's copy, when equal (one per account)
        self._preload = preload  # the cursors of accounts about to start, by account
        self._partition_of: dict[str, TopicPartition] = {}
        # Partitions whose accounts this replica may be running (reported to the leader).
        self._held: set[TopicPartition] = set()
        self._lock = asyncio.Lock()
        self.assignor = StickyAssignor(lambda: set(self._held))
        self._sticky_generations = 0
        self._eager = False  # the last generation was not under our assignor

    def subscribe(self, consumer: AIOKafkaConsumer) -> None:
        """Join the group through ``consumer``, built with :attr:`assignor` first."""
        self._consumer = consumer
        consumer.subscribe([self._topic], listener=_Rebalance(self))

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "subscribe() first"
        return self._consumer

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        # Called before every JoinGroup, the first one included: time to watch it.
        coordinator = self.consumer._coordinator
        self._guard.watch(coordinator)
        join_once(coordinator)  # outside the guard's wrapper: a request not sent confirms nothing
        if self._eager or self._guard.expired():
            await self.drop_partitions(set(self._held))

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        sticky = self.assignor.generations != self._sticky_generations
        self._sticky_generations = self.assignor.generations
        self._eager = not sticky
        lost = self._held - assigned
        await self.drop_partitions(lost)
        self._held = set(assigned)
        if assigned:
            await self.consumer.seek_to_beginning(*assigned)
        log.info("fetcher now holds account partitions %s", sorted(tp.partition for tp in assigned))
        if sticky and self.assignor.held_back and lost:
            # The lost partitions' accounts are stopped: the next generation gives them
            # to their new owner. Only their old owner asks for it: its JoinGroup reports
            # less than before, which makes the broker rebalance. A member that lost
            # nothing would join with the same report, and a stable group answers that
            # with the generation it has: hundreds of JoinGroup and SyncGroup a second,
            # until the old owner rejoined (seen in test_fetcher_resilience's replica).
            self._guard.request_rejoin()

    async def drop_partitions(self, partitions: set[TopicPartition]) -> None:
        async with self._lock:
            self._held -= partitions
            lost = [a for a, tp in self._partition_of.items() if tp in partitions]
            for account_id in lost:
                del self._partition_of[account_id]
            await self._supervisor.stop(lost)
        if lost:
            log.info("stopped %d accounts after losing partitions", len(lost))

    async def guard(self, stop: asyncio.Event) -> None:
        """Stop every account before the broker could drop this member (see above)."""
        while not stop.is_set():
            if self._held and self._guard.expired():
                log.warning(
                    "the group coordinator has not confirmed this replica for two thirds of "
                    "the session: stopping all accounts and rejoining"
                )
                await self.drop_partitions(set(self._held))
                self._guard.request_rejoin()
            wait = min(max(self._guard.seconds_left(), 0.1), 1.0) if self._held else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                await self._apply_batch(tp, [(r.key, r.value) for r in records])

    async def _apply_batch(
        self, tp: TopicPartition, records: list[tuple[bytes | None, bytes | None]]
    ) -> None:
        """One partition's records in order, the cursors of the accounts they start read
        first for all of them (the latest record of an account is what it runs)."""
        decoded: list[tuple[str | None, AccountRecord | None]] = []
        for key, value in records:
            decoded.append((key.decode() if key is not None else None, self._decode(key, value)))
        latest = {a.account_id: a for _, a in decoded if a is not None}
        starting = [a for a in latest.values() if self._supervisor.starts_afresh(a)]
        cursors = await self._preload(starting) if starting else {}
        for (account_id, account), (_, value) in zip(decoded, records, strict=True):
            if account_id is None:
                log.error("account record without a key on %s ignored", tp)
                continue
            if value is not None and account is None:
                continue  # invalid, logged
            known = cursors.pop(account_id, None) if account is latest.get(account_id) else None
            await self._apply(tp, account_id, account, known)

    def _decode(self, key: bytes | None, value: bytes | None) -> AccountRecord | None:
        """The record's account (the directory's copy when equal); None for a tombstone,
        a missing key, or a record that does not parse (logged)."""
        if key is None or value is None:
            return None
        try:
            return self._shared(AccountRecord.model_validate_json(value))
        except ValidationError as exc:
            log.error("invalid account record %r ignored: %s", key.decode(), exc)
            return None

    async def _apply(
        self,
        tp: TopicPartition,
        account_id: str,
        account: AccountRecord | None,
        known: Known | None = None,
    ) -> None:
        """``account`` (None: a tombstone, the account was removed) if ``tp`` is held."""
        async with self._lock:
            if tp not in self._held:  # fetched before a rebalance took the partition
                return
            if account is None:
                self._partition_of.pop(account_id, None)
                await self._supervisor.stop([account_id])
                return
            self._partition_of[account_id] = tp
            await self._supervisor.apply(account, known)
