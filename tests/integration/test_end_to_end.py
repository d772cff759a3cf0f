"""One email, the whole way: SMTP -> Dovecot -> fetcher -> Kafka -> dedup -> writer -> MongoDB."""

from __future__ import annotations

import datetime as dt
import random
import smtplib
import ssl
from typing import Any, cast

import pytest

from devservers.corpus import build
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def smtp_send(env: Env, mail_from: str, rcpts: list[str], message: bytes) -> None:
    assert env.dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    with smtplib.SMTP("127.0.0.1", env.smtp.port, timeout=30) as client:
        client.starttls(context=tls)
        client.sendmail(mail_from, rcpts, message)


async def test_one_email_becomes_exactly_one_activity(env: Env, pipeline: Pipeline) -> None:
    user = env.mail_user("alice")
    account = env.account(user, account_id=f"alice-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    customer = ("Zuzana Černá", "zuzana@kvetinarstvi-cerna.cz")
    mail = build(
        random.Random(1),
        customer,
        [("Alice", user.address)],
        date=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
        subject="Objednávka č. 4711 – potvrzení",
    )
    smtp_send(env, customer[1], [user.address], mail.message)

    async with env.mongo() as db, pipeline() as running:

        async def activities() -> list[dict[str, Any]]:
            running.check()
            return cast("list[dict[str, Any]]", await db.activities.find().to_list(None))

        docs = await eventually(activities, timeout=90, what="the activity")
        assert len(docs) == 1
        doc = docs[0]
        assert doc["subject"] == "Objednávka č. 4711 – potvrzení"
        assert doc["from"] == {"name": "Zuzana Černá", "address": "zuzana@kvetinarstvi-cerna.cz"}
        assert doc["to"] == [{"name": "Alice", "address": user.address}]
        assert doc["date"] == dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
        assert doc["message_id"] == mail.message_id
        assert doc["account_ids"] == [account.account_id]
        assert doc["direction"] == "inbound"
        assert [(s["account_id"], s["folder"], s["duplicate"]) for s in doc["sightings"]] == [
            (account.account_id, "INBOX", False)
        ]
        assert "Dobrý den" in doc["snippet"] or doc["snippet"]

        # The user's read state is untouched: the message is still unseen.
        assert env.dovecot.status(user.address, "INBOX")["unseen"] == "1"

    # Fetch the same mailbox again from scratch (cursors gone, as after a lost database
    # collection): still exactly one activity, with one sighting.
    async with env.mongo() as db:
        await db.folder_cursors.delete_many({})
        async with pipeline() as running:

            async def refetched() -> bool:
                running.check()
                return bool(await db.folder_cursors.count_documents({"last_uid": {"$gte": 1}}) >= 1)

            await eventually(refetched, timeout=90, what="the refetch")
            writer = running.service("activity-writer")

            async def rewritten() -> bool:
                running.check()
                return writer.loop is not None and writer.loop.written >= 1

            # The refetched copy went through dedup and the writer...
            await eventually(rewritten, timeout=90, what="the writer to process the refetched copy")
        docs = await db.activities.find().to_list(None)
        assert len(docs) == 1
        assert len(docs[0]["sightings"]) == 1
