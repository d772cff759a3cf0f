"""A folder pass's records (services.fetcher.record_batches): an import's as whole Kafka
batches, new mail's a record at a time, on the real broker, read back as another system
reads raw-messages."""

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
IMPORT = 120  # messages of 20 KB: 2.4 MB a pass, whole batches of the producer's 1 MiB
NEW_MAIL = 5  # a few: one send() a record, batched with other accounts' by the producer


async def test_an_accounts_records_go_in_order_where_send_would_put_them(env: Env) -> None:
    settings = FetcherSettings(**env.overrides)
    topic = settings.topic(RAW_MESSAGES)
    await ensure_topics(settings, [RAW_MESSAGES])
    mongo = mongo_client(settings, app_name="test-record-batches")
    prod = producer(settings, client_id="test-record-batches")
    await prod.start()
    expected: dict[str, int] = {}
    futures: dict[str, list[int]] = {}
    try:
        publisher = Publisher(
            prod, topic, BlobStore(database(mongo, settings)), settings.inline_limit_bytes
        )
        for account in ACCOUNTS:
            futures[account] = []
            # An import, then new mail: two passes, in the order a fetcher makes them.
            for first, count in ((1, IMPORT), (IMPORT + 1, NEW_MAIL)):
                records = await publisher.records(account, "INBOX", FolderRole.INBOX, 7, count)
                for uid in range(first, first + count):
                    body = filler(uid, 20_000)
                    await records.add(FetchedMessage(uid, body, len(body), (), None))
                await records.flush()
                sent = records.take_sent()
                futures[account].append(len(sent))
                await publisher.acknowledged(account, "INBOX", sent, count)
            # Where the producer's own send() puts a record of the same key.
            reference = await (await prod.send(topic, b"reference", key=account.encode()))
            expected[account] = reference.partition
    finally:
        await prod.stop()
        await mongo.close()

    got = await read_topic(env.overrides["kafka_bootstrap"], topic)
    assert len(set(expected.values())) > 1, "the accounts' keys spread over partitions"
    every = range(1, IMPORT + NEW_MAIL + 1)
    for account in ACCOUNTS:
        mine = [r for r in got if r.meta and r.meta["location"]["account_id"] == account]
        assert {r.partition for r in mine} == {expected[account]}
        assert [r.meta["location"]["uid"] for r in mine if r.meta] == list(every)
        assert [r.value for r in mine] == [filler(uid, 20_000) for uid in every]
        imported, new_mail = futures[account]
        assert 3 <= imported < IMPORT, "the import went as whole batches of at most 1 MiB"
        assert new_mail == NEW_MAIL, "new mail went a record at a time, through send()"
