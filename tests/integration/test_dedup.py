"""Dedup on the real broker: the table survives a worker restart; forwarded copies link."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import faust.topics
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devservers.corpus import build
from schemas.account import SharedOwnership
from schemas.tagged_message import MessageTags
from schemas.topics import BY_FINGERPRINT, RAW_MESSAGES, TAGGED_MESSAGES
from services.dedup.tagger import Tagger
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Petr Dvořák", "petr.dvorak@stavby-dvorak.cz")
WHEN = dt.datetime(2026, 8, 3, 7, 45, tzinfo=dt.UTC)


async def tagged(env: Env) -> list[dict[str, Any]]:
    records = await read_topic(
        env.overrides["kafka_bootstrap"], env.settings.topic(TAGGED_MESSAGES)
    )
    return [r.meta for r in records if r.meta]


async def stages(env: Env, account_id: str) -> str:
    """How far an account's messages got: raw (fetcher) and by-fingerprint (dedup's repartition)."""
    bootstrap = env.overrides["kafka_bootstrap"]
    counts: dict[str, int] = {}
    for spec in (RAW_MESSAGES, BY_FINGERPRINT, TAGGED_MESSAGES):
        records = await read_topic(bootstrap, env.settings.topic(spec))
        counts[spec.name] = sum(
            1
            for r in records
            if account_id.encode() in b"".join([r.key or b"", r.value or b"", *r.headers.values()])
        )
    return f"records of {account_id} per topic: {counts}"


async def test_first_message_is_tagged_when_a_new_topic_shows_late(
    env: Env, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new deployment on a busy broker: CreateTopics answers once the controller has
    the topic, and the broker's metadata shows it a moment later (seconds, seen in CI
    under load). Here faust's declare of its table changelog answers and the topic
    appears 5 s later. The consumer group must not be assigned without the changelog:
    faust's table would take it for a topic of 0 partitions and crash on every write
    until the next metadata refresh, 5 minutes on."""
    declare = faust.topics.Topic.declare
    late: list[asyncio.Task[None]] = []

    async def created_later(topic: faust.topics.Topic) -> None:
        await asyncio.sleep(5)
        await declare(topic)

    async def late_declare(self: faust.topics.Topic) -> None:
        if any(name.endswith("-changelog") for name in self.topics):
            late.append(asyncio.create_task(created_later(self)))
        else:
            await declare(self)

    monkeypatch.setattr(faust.topics.Topic, "declare", late_declare)
    jana = env.mail_user("jana")
    await env.publish_accounts(env.account(jana))
    env.dovecot.deliver(
        jana.address, build(random.Random(7), CUSTOMER, [("Jana", jana.address)], date=WHEN).message
    )
    async with pipeline("fetcher", "dedup") as running:

        async def first() -> bool:
            running.check()
            return len(await tagged(env)) == 1

        await eventually(first, timeout=60, what="the first message tagged")
        for task in late:
            await task  # faust's own declare, late: the topic exists, nothing changes

    # The changelog as faust declares it: compacted, co-partitioned with its source.
    admin = AIOKafkaAdminClient(bootstrap_servers=env.overrides["kafka_bootstrap"])
    await admin.start()
    try:
        [name] = [
            t
            for t in await admin.list_topics()
            if t.startswith(env.settings.topic_prefix) and t.endswith("-sightings-changelog")
        ]
        [described] = await admin.describe_topics([name])
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    assert len(described["partitions"]) == BY_FINGERPRINT.partitions
    values = {c[0]: c[1] for c in configs.resources[0][4]}
    assert values["cleanup.policy"] == "compact"


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_table_survives_a_dedup_restart_and_forwards_link(
    env: Env, pipeline: Pipeline, store: str
) -> None:
    jana, info = env.mail_user("jana"), env.mail_user("info")
    suffix = env.overrides["mongo_database"]
    personal = env.account(jana, account_id=f"jana-{suffix}")
    shared = env.account(info, account_id=f"info-{suffix}", ownership=SharedOwnership(group="g"))
    await env.publish_accounts(personal, shared)
    mail = build(random.Random(31), CUSTOMER, [("Jana", jana.address)], date=WHEN)
    env.dovecot.deliver(jana.address, mail.message)

    async with pipeline("fetcher", "activity-writer") as running, env.mongo() as db:
        async with pipeline("dedup", dedup_table_store=store):

            async def first() -> bool:
                running.check()
                return len(await tagged(env)) == 1

            await eventually(first, timeout=90, what="the first sighting")
        # dedup is down. A relay forwards the message to info@, rewriting its
        # Message-ID but keeping the original one, as Exchange does.
        forwarded = mail.message.replace(
            f"Message-ID: <{mail.message_id}>".encode(),
            f"Message-ID: <fwd.{mail.message_id}>\r\n"
            f"X-Original-Message-ID: <{mail.message_id}>".encode(),
        )
        assert forwarded != mail.message
        env.dovecot.deliver(info.address, forwarded)

        # A new dedup worker: it recovers the table from its changelog topic (in RocksDB,
        # from its files on the same disk and the changelog's tail).
        async with pipeline("dedup", dedup_table_store=store):

            async def second() -> list[dict[str, Any]] | None:
                running.check()
                metas = await tagged(env)
                # Delivery is at least once: the new worker may see the first record
                # again (offsets not yet committed when the first worker stopped).
                forwarded = [
                    m for m in metas if m["raw"]["location"]["account_id"] == shared.account_id
                ]
                return [metas[0], forwarded[0]] if forwarded else None

            try:
                metas = await eventually(second, timeout=120, what="the forwarded sighting")
            except AssertionError as failed:
                # Say which stage held the forwarded copy back.
                raise AssertionError(f"{failed}; {await stages(env, shared.account_id)}") from None

            async def merged() -> dict[str, Any] | None:
                doc = await db.activities.find_one({"message_id": mail.message_id})
                return doc if doc and len(doc["sightings"]) == 2 else None

            doc = await eventually(merged, timeout=60, what="one activity with two sightings")

    first_meta, second_meta = metas
    assert first_meta["canonical"] is True
    assert second_meta["canonical"] is False  # known from the recovered table
    assert second_meta["duplicate_of"]["account_id"] == personal.account_id
    assert [s["account_id"] for s in second_meta["sightings"]] == [
        personal.account_id,
        shared.account_id,
    ]
    assert first_meta["activity_id"] == second_meta["activity_id"] == doc["_id"]


async def _delete_changelog(env: Env) -> None:
    """The table's changelog topic deleted (a lost broker volume), and gone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.overrides["kafka_bootstrap"])
    await admin.start()
    try:
        prefix = env.settings.topic_prefix

        async def mine() -> list[str]:
            return [
                t
                for t in await admin.list_topics()
                if t.startswith(prefix) and t.endswith("-sightings-changelog")
            ]

        await admin.delete_topics(await mine())
        await eventually(lambda: _none(mine()), timeout=60, what="the changelog deleted")
    finally:
        await admin.close()


async def _none(names: Any) -> bool:
    return not await names


async def test_a_table_on_disk_ahead_of_a_lost_changelog_is_rebuilt(
    env: Env, pipeline: Pipeline
) -> None:
    """The broker lost the table's changelog while dedup's disk kept its RocksDB files,
    which say they applied records the changelog no longer holds. faust would refuse to
    start (ConsistencyError); the files of those partitions are dropped instead, and
    dedup goes on tagging."""
    jana = env.mail_user("jana")
    await env.publish_accounts(env.account(jana))
    rng = random.Random(33)
    # Nine messages over eight partitions: one partition has two records at least, so
    # its files applied offset 1 or more.
    for i in range(9):
        mail = build(rng, CUSTOMER, [("Jana", jana.address)], date=WHEN + dt.timedelta(hours=i))
        env.dovecot.deliver(jana.address, mail.message)

    async with pipeline("fetcher") as running:
        async with pipeline("dedup", dedup_table_store="rocksdb"):

            async def nine() -> set[str] | None:
                running.check()
                ids = {m["activity_id"] for m in await tagged(env)}
                return ids if len(ids) == 9 else None

            before = await eventually(nine, timeout=90, what="nine messages tagged")
        await _delete_changelog(env)
        late = build(rng, CUSTOMER, [("Jana", jana.address)], date=WHEN + dt.timedelta(days=1))
        env.dovecot.deliver(jana.address, late.message)

        async with pipeline("dedup", dedup_table_store="rocksdb") as dedup:

            async def tenth() -> dict[str, Any] | None:
                running.check()
                dedup.check()
                metas = await tagged(env)
                return next((m for m in metas if m["activity_id"] not in before), None)

            meta = await eventually(tenth, timeout=90, what="the message after the loss")
    assert meta["canonical"] is True


async def test_a_worker_stuck_on_an_event_stops_and_the_event_is_read_again(
    env: Env, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent that never finishes an event (a blob read that hangs, say) does not hold
    the worker's stop, or the group, forever: the event is left for the next worker."""
    jana = env.mail_user("jana")
    personal = env.account(jana, account_id=f"jana-{env.overrides['mongo_database']}")
    await env.publish_accounts(personal)
    mail = build(random.Random(32), CUSTOMER, [("Jana", jana.address)], date=WHEN)
    env.dovecot.deliver(jana.address, mail.message)

    stuck = asyncio.Event()
    tag = Tagger.tag

    async def hang(self: Tagger, headers: list[tuple[str, bytes]], value: bytes) -> MessageTags:
        stuck.set()
        await asyncio.Event().wait()  # never set: the agent holds its event unacked
        return await tag(self, headers, value)

    async with pipeline("fetcher", "activity-writer") as running:
        monkeypatch.setattr(Tagger, "tag", hang)
        # Before, this stop never ended: faust's wait_empty waited for the event forever.
        async with pipeline("dedup", dedup_wait_empty_timeout_s=2.0):
            await asyncio.wait_for(stuck.wait(), 90)
        assert await tagged(env) == []
        monkeypatch.setattr(Tagger, "tag", tag)

        async with pipeline("dedup"):

            async def once() -> list[dict[str, Any]]:
                running.check()
                return await tagged(env)

            metas = await eventually(once, timeout=90, what="the event read again")
    assert [m["raw"]["location"]["account_id"] for m in metas] == [personal.account_id]
