"""What happens to processed mail: moved to a folder, or marked with a keyword, and only
after the activity is durable."""

from __future__ import annotations

import datetime as dt
import imaplib
import random
import ssl

import pytest

from devservers.corpus import build
from schemas.account import KeywordProcessed, MoveProcessed
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Petr Dvořák", "petr.dvorak@stavby-dvorak.cz")


def deliver(env: Env, address: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ids = []
    for day in range(1, count + 1):
        mail = build(rng, CUSTOMER, [("P", address)], date=dt.datetime(2026, 2, day, tzinfo=dt.UTC))
        env.dovecot.deliver(address, mail.message)
        ids.append(mail.message_id)
    return ids


async def test_processed_mail_moves_to_trash_after_its_activity_is_written(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("mover")
    account = env.account(
        user,
        account_id=f"mover-{env.overrides['mongo_database']}",
        processed=MoveProcessed(folder="Trash"),
    )
    await env.publish_accounts(account)
    ids = deliver(env, user.address, 3, seed=91)

    async with env.mongo() as db, pipeline() as running:

        async def moved() -> bool:
            running.check()
            return (
                env.dovecot.status(user.address, "INBOX")["messages"] == "0"
                and env.dovecot.status(user.address, "Trash")["messages"] == "3"
                # Done once the move is recorded (after it, not with it: a moment later).
                and await db.processed_queue.count_documents({}) == 0
            )

        await eventually(moved, timeout=120, what="the messages in Trash, the queue empty")
        docs = await db.activities.find().to_list(None)
        assert sorted(d["message_id"] for d in docs) == sorted(ids)
        # We moved them ourselves: the sightings are not reported as expunged.
        assert all(d["sightings"][0].get("expunged_at") is None for d in docs)


async def test_processed_mail_marked_with_a_keyword(env: Env, pipeline: Pipeline) -> None:
    user = env.mail_user("marker")
    account = env.account(
        user,
        account_id=f"marker-{env.overrides['mongo_database']}",
        processed=KeywordProcessed(),
    )
    await env.publish_accounts(account)
    deliver(env, user.address, 2, seed=92)

    def keywords() -> list[bytes]:
        assert env.dovecot.cert is not None
        tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
        client = imaplib.IMAP4_SSL("127.0.0.1", env.dovecot.imaps_port, ssl_context=tls)
        try:
            client.login(user.address, user.password)
            client.select("INBOX", readonly=True)
            _, data = client.uid("FETCH", "1:*", "(FLAGS)")
            return [line for line in data if isinstance(line, bytes)]
        finally:
            client.logout()

    async with pipeline() as running:

        async def marked() -> bool:
            running.check()
            lines = keywords()
            return len(lines) == 2 and all(b"$MailsyncImported" in line for line in lines)

        await eventually(marked, timeout=120, what="the keyword on both messages")
    # Marked, still in INBOX, and still unread: the keyword is all we changed.
    assert env.dovecot.status(user.address, "INBOX")["messages"] == "2"
    assert all(b"\\Seen" not in line for line in keywords())
