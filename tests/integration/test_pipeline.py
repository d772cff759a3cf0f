"""The pipeline's promises, on the real servers: duplicates linked, large mail, bad input."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from devservers.corpus import build
from schemas.account import SharedOwnership
from schemas.topics import DEAD_LETTERS, RAW_MESSAGES, TAGGED_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually
from tests.integration.test_end_to_end import smtp_send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Jürgen Weiß", "j.weiss@weiss-maschinenbau.de")
WHEN = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


async def topic_metas(env: Env, topic: str) -> list[dict[str, Any]]:
    """Every record's metadata header, parsed as plain JSON, as any consumer would."""
    records = await read_topic(env.overrides["kafka_bootstrap"], topic)
    return [r.meta for r in records if r.meta is not None]


async def test_same_message_to_personal_and_shared_alias_is_one_activity(
    env: Env, pipeline: Pipeline
) -> None:
    jana = env.mail_user("jana")
    info = env.mail_user("info")
    orders = info.address.replace("info-", "orders-")
    env.smtp.add_alias(orders, info.address)
    suffix = env.overrides["mongo_database"]
    personal = env.account(jana, account_id=f"jana-{suffix}")
    shared = env.account(
        info,
        account_id=f"info-{suffix}",
        aliases=(orders,),
        ownership=SharedOwnership(group="sales"),
    )
    await env.publish_accounts(personal, shared)
    mail = build(
        random.Random(5), CUSTOMER, [("Jana", jana.address)], [("Orders", orders)], date=WHEN
    )
    smtp_send(env, CUSTOMER[1], [jana.address, orders], mail.message)

    async with env.mongo() as db, pipeline() as running:

        async def both_sightings() -> dict[str, Any] | None:
            running.check()
            doc = await db.activities.find_one({"message_id": mail.message_id})
            return doc if doc and len(doc["sightings"]) == 2 else None

        doc = await eventually(both_sightings, timeout=90, what="two sightings")
        assert await db.activities.count_documents({}) == 1
        by_account = {s["account_id"]: s for s in doc["sightings"]}
        assert by_account[shared.account_id]["alias"] == orders
        assert by_account[personal.account_id]["alias"] == jana.address
        assert sorted(s["duplicate"] for s in doc["sightings"]) == [False, True]
        assert sorted(doc["account_ids"]) == sorted([personal.account_id, shared.account_id])

    # Other systems read the verdict from our public topic without Python.
    metas = await topic_metas(env, env.settings.topic(TAGGED_MESSAGES))
    assert len(metas) == 2
    assert sorted(m["canonical"] for m in metas) == [False, True]
    dup = next(m for m in metas if not m["canonical"])
    assert dup["duplicate_of"]["account_id"] in (personal.account_id, shared.account_id)
    assert {s["account_id"] for s in dup["sightings"]} == {personal.account_id, shared.account_id}
    assert {m["activity_id"] for m in metas} == {doc["_id"]}


async def test_same_message_in_inbox_and_a_label_folder_is_one_activity(
    env: Env, pipeline: Pipeline
) -> None:
    # Gmail shows a labelled message in INBOX and in the label's folder: an account that
    # syncs both sees it twice, and the CRM must show it once.
    jana = env.mail_user("labels")
    env.dovecot.create_folder(jana.address, "CRM")
    account = env.account(
        jana, account_id=f"labels-{env.overrides['mongo_database']}", folders=("INBOX", "CRM")
    )
    await env.publish_accounts(account)
    mail = build(random.Random(8), CUSTOMER, [("Jana", jana.address)], date=WHEN)
    env.dovecot.deliver(jana.address, mail.message, mail_from=CUSTOMER[1])
    env.dovecot.doveadm("copy", "-u", jana.address, "CRM", "mailbox", "INBOX", "ALL")

    async with env.mongo() as db, pipeline() as running:

        async def both_sightings() -> dict[str, Any] | None:
            running.check()
            doc = await db.activities.find_one({"message_id": mail.message_id})
            return doc if doc and len(doc["sightings"]) == 2 else None

        doc = await eventually(both_sightings, timeout=90, what="two sightings")
        assert await db.activities.count_documents({}) == 1
        assert {s["account_id"] for s in doc["sightings"]} == {account.account_id}
        by_folder = {s["folder"]: s["duplicate"] for s in doc["sightings"]}
        assert sorted(by_folder) == ["CRM", "INBOX"]
        assert sorted(by_folder.values()) == [False, True]


async def test_large_message_travels_by_blob_reference(env: Env, pipeline: Pipeline) -> None:
    user = env.mail_user("big")
    account = env.account(user, account_id=f"big-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(9)
    mail = build(rng, CUSTOMER, [("Big", user.address)], date=WHEN, attachment=True)
    assert len(mail.message) > 32 * 1024
    smtp_send(env, CUSTOMER[1], [user.address], mail.message)

    async with env.mongo() as db, pipeline(inline_limit_bytes=16 * 1024) as running:

        async def activity() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None",
                await db.activities.find_one({"message_id": mail.message_id}),
            )

        doc = await eventually(activity, timeout=90, what="the activity of the large message")
        assert doc["subject"]
        blob_ids = {b["_id"] for b in await db["blobs.files"].find().to_list(None)}
        # The message itself, and its PDF attachment (stored for the activity).
        assert len(blob_ids) == 2
        assert {a["sha256"] for a in doc["attachments"]} < blob_ids

    raw = await topic_metas(env, env.settings.topic(RAW_MESSAGES))
    assert raw[0]["blob"]["sha256"] in blob_ids
    assert raw[0]["size"] > 16 * 1024


async def test_bad_record_is_dead_lettered_and_the_stream_goes_on(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("dl")
    account = env.account(user, account_id=f"dl-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    from services.common.kafka import ensure_topics

    await ensure_topics(env.settings, [RAW_MESSAGES])
    producer = AIOKafkaProducer(bootstrap_servers=env.overrides["kafka_bootstrap"])
    await producer.start()
    try:  # a record some other producer got wrong: no metadata header at all
        await producer.send_and_wait(
            env.settings.topic(RAW_MESSAGES), b"Subject: orphan\r\n\r\nhi\r\n", key=b"nobody"
        )
    finally:
        await producer.stop()
    mail = build(random.Random(3), CUSTOMER, [("DL", user.address)], date=WHEN)
    smtp_send(env, CUSTOMER[1], [user.address], mail.message)

    async with env.mongo() as db, pipeline() as running:

        async def activity() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None",
                await db.activities.find_one({"message_id": mail.message_id}),
            )

        await eventually(activity, timeout=90, what="the good message's activity")

    dead = await topic_metas(env, env.settings.topic(DEAD_LETTERS))
    assert len(dead) == 1
    assert dead[0]["stage"] == "dedup.tag"
    assert "mailsync-meta" in dead[0]["reason"]


async def test_account_added_while_running_is_synced_and_nothing_dead_lettered(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("late")
    mail = build(random.Random(4), CUSTOMER, [("Late", user.address)], date=WHEN)
    smtp_send(env, CUSTOMER[1], [user.address], mail.message)
    first = env.account(
        env.mail_user("early"), account_id=f"early-{env.overrides['mongo_database']}"
    )
    await env.publish_accounts(first)

    async with env.mongo() as db, pipeline() as running:

        async def early_idle() -> bool:
            running.check()
            state = await db.account_states.find_one({"_id": first.account_id})
            return bool(state) and state["status"] == "idle"

        await eventually(early_idle, timeout=90, what="the first account to be idle")
        late = env.account(user, account_id=f"late-{env.overrides['mongo_database']}")
        await env.publish_accounts(late)

        async def activity() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None",
                await db.activities.find_one({"message_id": mail.message_id}),
            )

        doc = await eventually(activity, timeout=60, what="the new account's activity")
        assert doc["account_ids"] == [late.account_id]
    assert await topic_metas(env, env.settings.topic(DEAD_LETTERS)) == []
