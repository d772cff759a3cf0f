"""Malformed and hostile mail: every message comes out as an activity or a dead letter."""

from __future__ import annotations

import pytest

from devservers.hostile import hostile_messages
from schemas.topics import DEAD_LETTERS, RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_no_hostile_message_is_lost(env: Env, pipeline: Pipeline) -> None:
    user = env.mail_user("hostile")
    account = env.account(user, account_id=f"hostile-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    corpus = hostile_messages(user.address)
    for raw in corpus.values():
        env.dovecot.save(user.address, "INBOX", raw)
    assert env.dovecot.status(user.address, "INBOX")["messages"] == str(len(corpus))

    bootstrap = env.overrides["kafka_bootstrap"]
    async with env.mongo() as db, pipeline() as running:

        async def accounted_for() -> tuple[int, int] | None:
            running.check()
            written = sum(len(d["sightings"]) for d in await db.activities.find().to_list(None))
            dead = len(await read_topic(bootstrap, env.settings.topic(DEAD_LETTERS)))
            return (written, dead) if written + dead >= len(corpus) else None

        written, dead = await eventually(accounted_for, timeout=120, what="every message")
        docs = await db.activities.find().to_list(None)

    # Every one is an activity: what fast-mail-parser refuses, the stdlib parser reads.
    assert (written, dead) == (len(corpus), 0)
    records = await read_topic(bootstrap, env.settings.topic(RAW_MESSAGES))
    assert len(records) == len(corpus)
    # What the parsers made of the legacy charsets, as the CRM will show it.
    subjects = {d["subject"] for d in docs}
    assert {"見積もりのお願い", "Счёт на оплату", "Žluťoučký kůň", "Zażółć gęślą jaźń"} <= subjects
