"""Writing account records: the accounts topic is the fetchers' and dedup's source of truth."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from schemas.account import AccountRecord
from schemas.topics import ACCOUNTS
from services.common.settings import CommonSettings

# The API's MongoDB copy of every account record (services/api/store.py).
COLLECTION = "accounts"


async def publish_account(
    producer: AIOKafkaProducer, settings: CommonSettings, record: AccountRecord
) -> None:
    """Publish (create or replace) an account; fetchers apply it without a restart."""
    await producer.send_and_wait(
        settings.topic(ACCOUNTS),
        key=record.account_id.encode(),
        value=record.model_dump_json().encode(),
    )


async def remove_account(
    producer: AIOKafkaProducer, settings: CommonSettings, account_id: str
) -> None:
    """A tombstone: compaction forgets the account, fetchers stop it."""
    await producer.send_and_wait(settings.topic(ACCOUNTS), key=account_id.encode(), value=None)
