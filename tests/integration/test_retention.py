"""Retention per account and erasure on request remove exactly what they should."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from schemas.account import SharedOwnership
from schemas.topics import ACCOUNTS, ACTIVITY_EVENTS, TAGGED_MESSAGES
from services.api.store import AccountStore
from services.common.kafka import ensure_topics, producer
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually, meta_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NOW = dt.datetime.now(dt.UTC)


def mail(mid: str, to: list[str], days_ago: int, attachment: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "customer@example.org"
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"message {mid}"
    msg["Date"] = (NOW - dt.timedelta(days=days_ago)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg["Message-ID"] = f"<{mid}@example.org>"
    msg.set_content("body")
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="a.bin")
    return msg.as_bytes(policy=SMTP)


async def test_retention_and_erasure(env: Env, pipeline: Pipeline) -> None:
    a_user, b_user = env.mail_user("keep30"), env.mail_user("keepall")
    suffix = env.overrides["mongo_database"]
    a = env.account(a_user, account_id=f"a-{suffix}", retention_days=30)
    b = env.account(b_user, account_id=f"b-{suffix}", ownership=SharedOwnership(group="g"))
    # Retention is set once the mail is imported: set from the start, the first import
    # would not fetch the old mail at all (tests/integration/test_erased_stays_erased.py).
    await env.publish_accounts(a.model_copy(update={"retention_days": None}), b)
    shared_pdf, lonely_pdf = b"S" * 5000, b"L" * 5000
    env.dovecot.deliver(a_user.address, mail("old-a", [a_user.address], 60, lonely_pdf))
    both = mail("old-both", [a_user.address, b_user.address], 60, shared_pdf)
    env.dovecot.deliver(a_user.address, both)
    env.dovecot.deliver(b_user.address, both)
    env.dovecot.deliver(a_user.address, mail("new-a", [a_user.address], 1, shared_pdf))

    async with env.mongo() as db:
        async with pipeline(writer_retention_interval_s=1.0) as running:

            async def imported() -> bool:
                running.check()
                docs = await db.activities.find().to_list(None)
                return len(docs) == 3 and sum(len(d["account_ids"]) for d in docs) == 4

            await eventually(imported, timeout=120, what="the mail imported")
            await env.publish_accounts(a)

            async def settled() -> dict[str, dict[str, Any]] | None:
                running.check()
                docs = {d["message_id"]: d for d in await db.activities.find().to_list(None)}
                done = set(docs) == {"old-both@example.org", "new-a@example.org"} and docs[
                    "old-both@example.org"
                ]["account_ids"] == [b.account_id]
                return docs if done else None

            docs = await eventually(settled, timeout=120, what="retention to apply")
        assert [s["account_id"] for s in docs["old-both@example.org"]["sightings"]] == [
            b.account_id
        ]
        # Whichever account's sighting was canonical, the one left is (issue 15).
        assert docs["old-both@example.org"]["sightings"][0]["duplicate"] is False
        blobs = {f["_id"] for f in await db["blobs.files"].find().to_list(None)}
        shared_sha = docs["new-a@example.org"]["attachments"][0]["sha256"]
        assert shared_sha in blobs  # still used
        assert len(blobs) == 1  # the attachment only the deleted message had is gone
        # The expired message's Message-ID is not kept in the writer's index either.
        assert await _message_ids(db) == {
            "old-both@example.org": [docs["old-both@example.org"]["_id"]],
            "new-a@example.org": [docs["new-a@example.org"]["_id"]],
        }

        # GDPR erasure of one message, from the command line.
        environ = env.environ()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "services",
                "erase",
                "--yes",
                "--message-id",
                "<new-a@example.org>",
            ],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "1 activities erased"
        left = [d["message_id"] for d in await db.activities.find().to_list(None)]
        assert left == ["old-both@example.org"]
        # The shared attachment is still used by old-both; nothing else remains.
        assert {f["_id"] for f in await db["blobs.files"].find().to_list(None)} == {shared_sha}
        assert await _message_ids(db) == {
            "old-both@example.org": [docs["old-both@example.org"]["_id"]]
        }

    events = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(ACTIVITY_EVENTS))
    deleted = {
        meta_of(r)["message_id"]: meta_of(r)["reason"]
        for r in events
        if meta_of(r)["kind"] == "deleted"
    }
    assert deleted == {
        "old-a@example.org": f"retention of {a.account_id}",
        "new-a@example.org": "erased on request (GDPR)",
    }


async def test_mail_of_a_removed_account_still_in_flight_is_not_written(
    env: Env, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """Removed (and purged) while its mail was already tagged and on its way to the
    writer: that mail never becomes activities; another account's mail still does."""
    suffix = env.overrides["mongo_database"]
    gone_user, kept_user = env.mail_user("gone"), env.mail_user("kept")
    gone = env.account(gone_user, account_id=f"gone-{suffix}")
    kept = env.account(kept_user, account_id=f"kept-{suffix}")
    await ensure_topics(env.settings, [ACCOUNTS])
    prod = producer(env.settings, client_id="test")
    await prod.start()
    try:
        async with env.mongo() as db:
            store = AccountStore(db, prod, env.settings)
            for acc in (gone, kept):
                await store.save(acc)
                for i in range(3):
                    raw = mail(f"{acc.account_id}-{i}", [acc.address], 1, b"")
                    env.dovecot.deliver(acc.address, raw)

            async def tagged(running: Any) -> bool:
                running.check()
                records = await read_topic(
                    env.overrides["kafka_bootstrap"], env.settings.topic(TAGGED_MESSAGES)
                )
                return len(records) == 6

            # Fetched and tagged, not yet written: no writer runs.
            async with pipeline("fetcher", "dedup") as running:
                await eventually(lambda: tagged(running), timeout=90, what="6 tagged records")
            await store.delete(gone.account_id)  # what the API's remove does first

            caplog.set_level(logging.INFO, logger="mailsync.activity_writer")
            async with pipeline("activity-writer") as running:

                async def written() -> bool:
                    running.check()
                    n = await db.activities.count_documents({"account_ids": kept.account_id})
                    return n == 3 and "dropped sightings of removed accounts" in caplog.text

                what = "the kept account's activities, the removed one's dropped"
                await eventually(written, timeout=90, what=what)
            assert await db.activities.count_documents({"account_ids": gone.account_id}) == 0
            assert gone.account_id in caplog.text

            # Saved again, the account is no longer listed as removed.
            await store.save(gone)
            assert await db.removed_accounts.count_documents({"_id": gone.account_id}) == 0
    finally:
        await prod.stop()


async def _message_ids(db: Any) -> dict[str, list[str]]:
    """The writer's Message-ID index, entry by entry."""
    return {d["_id"]: d["ids"] for d in await db.message_ids.find().to_list(None)}
