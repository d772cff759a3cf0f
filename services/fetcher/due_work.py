"""What housekeeping the accounts of this replica have waiting, read for all at once.

An idle account must cost the database nothing (issue #16): asking MongoDB on every
poll of every account whether a reconcile was requested, or whether confirmed mail
waits for its processed-mail action, was two queries per account per poll interval,
most of the database's work at 1,000 idle accounts. :class:`DueWork` reads both
collections once per interval for the whole replica and answers the accounts from
memory.

A request or a confirmation stored meanwhile is seen at the next refresh: the answer may
be late by one interval, never lost, because each refresh reads the collections again.
An account that waits in IDLE without polling (NOTIFY, :mod:`.schedule`) :meth:`watch`es
for its work: the event is set when some arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable

from pymongo.errors import PyMongoError

from services.fetcher.processed import ProcessedQueue
from services.fetcher.reconcile_requests import ReconcileRequests

log = logging.getLogger("mailsync.fetcher.due_work")


class DueWork:
    def __init__(self, requests: ReconcileRequests, processed: ProcessedQueue):
        self._requests = requests
        self._processed = processed
        self._reconcile: dict[str, dt.datetime] = {}
        self._with_processed: set[str] = set()
        self._watchers: dict[str, asyncio.Event] = {}

    async def refresh(self) -> None:
        """Both collections read once: two queries for every account of the replica."""
        requests = await self._requests.all()
        processed = await self._processed.accounts()
        new = {a for a, at in requests.items() if self._reconcile.get(a) != at}
        new |= processed - self._with_processed
        self._reconcile, self._with_processed = requests, processed
        self._wake(new)

    def watch(self, account_id: str) -> asyncio.Event:
        """An event set whenever work arrives for the account (the account clears it)."""
        return self._watchers.setdefault(account_id, asyncio.Event())

    def unwatch(self, account_id: str) -> None:
        self._watchers.pop(account_id, None)

    def _wake(self, account_ids: Iterable[str]) -> None:
        for account_id in account_ids:
            if (event := self._watchers.get(account_id)) is not None:
                event.set()

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Refresh every ``interval_s`` until ``stop``; a database blip skips one."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            if stop.is_set():
                return
            try:
                await self.refresh()
            except PyMongoError as exc:  # the accounts keep the last answer meanwhile
                log.warning("pending housekeeping not read: %s", exc)

    def reconcile_requested(self, account_id: str) -> dt.datetime | None:
        """When a reconcile of the account was asked for, if one waits."""
        return self._reconcile.get(account_id)

    async def reconcile_done(self, account_id: str, requested_at: dt.datetime) -> None:
        """The request answered is removed; one made meanwhile stays (and is read again)."""
        await self._requests.done(account_id, requested_at)
        if self._reconcile.get(account_id) == requested_at:
            del self._reconcile[account_id]

    def may_have_processed(self, account_id: str) -> bool:
        """Confirmed mail may wait for the account's processed-mail action."""
        return account_id in self._with_processed

    def processed_arrived(self, account_ids: Iterable[str]) -> None:
        """Confirmations this process just stored: their accounts act on the next poll
        (at once, if they wait without polling)."""
        arrived = set(account_ids)
        self._with_processed |= arrived
        self._wake(arrived)

    def processed_drained(self, account_id: str) -> None:
        """The account found nothing left to act on."""
        self._with_processed.discard(account_id)
