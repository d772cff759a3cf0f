"""Reading activity confirmations into the processed queue (for accounts that act on them).

Accounts that leave processed mail alone (the default) store nothing. Offsets are
committed after the queue holds the batch.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from schemas.activity_event import ActivityConfirmation
from schemas.common import FolderRole
from services.common.accounts_table import AccountDirectory
from services.fetcher.due_work import DueWork
from services.fetcher.processed import ProcessedQueue

log = logging.getLogger("mailsync.fetcher.confirmations")


def sent(c: ActivityConfirmation) -> bool:
    """Sent mail stays where it is: the processed-mail action is for mail received (a
    copy our sender filed must stay in Sent, where the user's mail client shows it)."""
    return c.folder_role is FolderRole.SENT


class ConfirmationLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        accounts: AccountDirectory,
        queue: ProcessedQueue,
        due: DueWork,
    ):
        self._consumer = consumer
        self._accounts = accounts
        self._queue = queue
        self._due = due

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            wanted: list[ActivityConfirmation] = []
            for records in batches.values():
                for record in records:
                    try:
                        c = ActivityConfirmation.model_validate_json(record.value or b"")
                    except ValidationError as exc:
                        log.error("invalid confirmation @%d skipped: %s", record.offset, exc)
                        continue
                    account = await self._accounts.lookup(c.account_id)
                    if account is not None and account.processed.kind != "leave" and not sent(c):
                        wanted.append(c)
            if wanted:
                await self._queue.add(wanted)
                # Those of this replica act on their next poll, not a refresh later.
                self._due.processed_arrived(c.account_id for c in wanted)
            if batches:
                offsets = {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
                await self._consumer.commit(offsets)
