"""Every account, read from the compacted accounts topic, followed as it changes.

For services that need all accounts, not a share of them: dedup (a message's account,
and the addresses of every synced account) and the activity writer (each account's
retention). The reader assigns itself every partition, with no consumer group.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.account import AccountRecord
from services.common.kafka import partitions_of

log = logging.getLogger("mailsync.accounts_table")


class AccountDirectory:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str):
        self._consumer = consumer
        self._topic = topic
        self._accounts: dict[str, AccountRecord] = {}
        self.version = 0  # bumped on every change, for callers that derive data from it
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def get(self, account_id: str) -> AccountRecord | None:
        return self._accounts.get(account_id)

    def shared(self, account: AccountRecord) -> AccountRecord:
        """This directory's own object for ``account`` when it holds an equal one, else
        ``account``: a process reading the topic twice (the fetcher: every account here,
        its own share again) keeps one copy of each (about 4 KiB an account, issue #16)."""
        held = self._accounts.get(account.account_id)
        return held if held is not None and held == account else account

    def all(self) -> list[AccountRecord]:
        return list(self._accounts.values())

    async def lookup(self, account_id: str, timeout: float = 10.0) -> AccountRecord | None:
        """The account; if unknown, first catch up with the topic as it is now.

        A fetcher publishes mail only for accounts it has read from the topic, so a
        message may arrive just before this reader has seen a brand-new account.
        """
        found = self._accounts.get(account_id)
        if found is not None:
            return found
        tps = list(self._consumer.assignment())
        end = await self._consumer.end_offsets(tps)
        deadline = asyncio.get_running_loop().time() + timeout
        # The reader's position is only observable by asking the consumer: poll it.
        while not await self._caught_up(end) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return self._accounts.get(account_id)

    async def start(self) -> None:
        await self._consumer.start()
        tps = await partitions_of(self._consumer, self._topic)
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        end = await self._consumer.end_offsets(tps)
        self._task = asyncio.create_task(self._follow(end), name="account-directory")

    async def wait_ready(self, timeout: float) -> None:
        ready = asyncio.create_task(self.ready.wait())
        assert self._task is not None
        await asyncio.wait(
            [ready, self._task], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        self.check()
        if not self.ready.is_set():
            raise TimeoutError(f"accounts topic not read to its end within {timeout:.0f}s")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _follow(self, end: dict[TopicPartition, int]) -> None:
        while True:
            if not self.ready.is_set() and await self._caught_up(end):
                self.ready.set()
                log.info("account directory loaded: %d accounts", len(self._accounts))
            batches = await self._consumer.getmany(timeout_ms=200)
            changed = False
            for records in batches.values():
                for record in records:
                    changed |= self._apply(record.key, record.value)
            if changed:
                self.version += 1

    async def _caught_up(self, end: dict[TopicPartition, int]) -> bool:
        for tp, offset in end.items():
            if await self._consumer.position(tp) < offset:
                return False
        return True

    def check(self) -> None:
        """Raise the reader's failure, if it failed (the service then stops)."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            exc = self._task.exception()
            if exc is not None:
                raise exc

    def _apply(self, key: bytes | None, value: bytes | None) -> bool:
        if key is None:
            return False
        if value is None:
            return self._accounts.pop(key.decode(), None) is not None
        try:
            account = AccountRecord.model_validate_json(value)
        except ValidationError as exc:
            log.error("invalid account record %r ignored: %s", key, exc)
            return False
        self._accounts[account.account_id] = account
        return True
