"""A folder pass's records sent as whole Kafka batches (services.fetcher.record_batches),
on the real broker, read back as another system reads raw-messages."""

from __future__ import annotations

import pytest

from schemas.common import FolderRole
from schemas.topics import RAW_MESSAGES
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.common.mongo import database, mongo_client
from services.fetcher.publish import Publisher
from services.fetcher.settings import FetcherSettings
from services.imap import FetchedMessage
from services.topic_reader import read_topic
from tests.fixtures.imap_session import filler
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACCOUNTS = [f"acct-{n}" for n in range(6)]  # keys spread over the 8 partitions
MESSAGES = 40  # of 60 KB: 2.4 MB an account, three batches of the producer's 1 MiB


async def test_an_accounts_records_go_in_order_where_send_would_put_them(env: Env) -> None:
    settings = FetcherSettings(**env.overrides)
    topic = settings.topic(RAW_MESSAGES)
    await ensure_topics(settings, [RAW_MESSAGES])
    mongo = mongo_client(settings, app_name="test-record-batches")
    prod = producer(settings, client_id="test-record-batches")
    await prod.start()
    expected: dict[str, int] = {}
    batches: dict[str, int] = {}
    try:
        publisher = Publisher(
            prod, topic, BlobStore(database(mongo, settings)), settings.inline_limit_bytes
        )
        for account in ACCOUNTS:
            records = await publisher.records(account, "INBOX", FolderRole.INBOX, 7)
            for uid in range(1, MESSAGES + 1):
                body = filler(uid, 60_000)
                await records.add(FetchedMessage(uid, body, len(body), (), None))
            await records.flush()
            sent = records.take_sent()
            batches[account] = len(sent)
            await publisher.acknowledged(account, "INBOX", sent, MESSAGES)
            # Where the producer's own send() puts a record of the same key.
            reference = await (await prod.send(topic, b"reference", key=account.encode()))
            expected[account] = reference.partition
    finally:
        await prod.stop()
        await mongo.close()

    got = await read_topic(env.overrides["kafka_bootstrap"], topic)
    assert len(set(expected.values())) > 1, "the accounts' keys spread over partitions"
    for account in ACCOUNTS:
        mine = [r for r in got if r.meta and r.meta["location"]["account_id"] == account]
        assert {r.partition for r in mine} == {expected[account]}
        assert [r.meta["location"]["uid"] for r in mine if r.meta] == list(range(1, MESSAGES + 1))
        assert [r.value for r in mine] == [filler(uid, 60_000) for uid in range(1, MESSAGES + 1)]
        assert batches[account] >= 3, "sent as whole batches of at most 1 MiB"
