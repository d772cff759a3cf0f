"""Flags changed and messages expunged in the mailbox reach the activities' sightings."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from devservers.corpus import build
from schemas.topics import ACTIVITY_EVENTS, MAILBOX_EVENTS
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually, meta_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Zuzana Černá", "zuzana@kvetinarstvi-cerna.cz")


async def test_flag_changes_and_expunges_update_the_sightings(env: Env, pipeline: Pipeline) -> None:
    user = env.mail_user("flags")
    account = env.account(user, account_id=f"flags-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(81)
    ids = []
    for day in (1, 2, 3):
        mail = build(
            rng, CUSTOMER, [("F", user.address)], date=dt.datetime(2026, 4, day, tzinfo=dt.UTC)
        )
        env.dovecot.deliver(user.address, mail.message)
        ids.append(mail.message_id)

    async with env.mongo() as db, pipeline() as running:

        async def sighting(mid: str) -> dict[str, Any]:
            doc = await db.activities.find_one({"message_id": mid})
            return doc["sightings"][0] if doc else {}

        async def written() -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == 3)

        await eventually(written, timeout=90, what="3 activities")
        assert (await sighting(ids[0]))["flags"] == []  # delivered unread

        # The user flags the first message and deletes the second in their mail client.
        env.dovecot.doveadm(
            "flags", "add", "-u", user.address, "\\Flagged \\Seen", "mailbox", "INBOX", "uid", "1"
        )
        env.dovecot.expunge(user.address, "INBOX", 2)

        async def applied() -> bool:
            running.check()
            first, second = await sighting(ids[0]), await sighting(ids[1])
            return set(first.get("flags", [])) == {"\\Flagged", "\\Seen"} and bool(
                second.get("expunged_at")
            )

        await eventually(applied, timeout=60, what="the flag change and the expunge")
        third = await sighting(ids[2])
        assert third["flags"] == [] and third.get("expunged_at") is None

    bootstrap = env.overrides["kafka_bootstrap"]
    mailbox = [
        meta_of(r)["event"] for r in await read_topic(bootstrap, env.settings.topic(MAILBOX_EVENTS))
    ]
    assert {(e["kind"], e["location"]["uid"]) for e in mailbox} >= {("flags", 1), ("expunged", 2)}
    updates = [
        meta_of(r)["reason"]
        for r in await read_topic(bootstrap, env.settings.topic(ACTIVITY_EVENTS))
        if meta_of(r)["kind"] == "updated"
    ]
    assert "flags" in updates and "expunged" in updates
