"""Fetcher sync on Dovecot: IDLE pickup, restart from the cursor, UIDVALIDITY change."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from devservers.corpus import build
from schemas.topics import RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Søren Kierkegaard", "soren@filosofi.dk")


def deliver(env: Env, address: str, rng: random.Random, day: int) -> str:
    when = dt.datetime(2026, 10, day, 9, 0, tzinfo=dt.UTC)
    mail = build(rng, CUSTOMER, [("Me", address)], date=when)
    env.dovecot.deliver(address, mail.message, mail_from=CUSTOMER[1])
    return mail.message_id


async def test_idle_picks_up_new_mail_without_polling(env: Env, pipeline) -> None:
    user = env.mail_user("idle")
    account = env.account(user, account_id=f"idle-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(11)
    first = deliver(env, user.address, rng, 1)

    # Polling every 10 minutes: only IDLE (RFC 2177) can bring the second message in time.
    async with env.mongo() as db, pipeline(fetcher_poll_interval_s=600.0) as running:

        async def idle_with(mid: str) -> bool:
            running.check()
            state = await db.account_states.find_one({"_id": account.account_id})
            found = await db.activities.find_one({"message_id": mid})
            return bool(found) and bool(state) and state["status"] == "idle"

        await eventually(lambda: idle_with(first), timeout=90, what="initial sync and IDLE")
        second = deliver(env, user.address, rng, 2)
        await eventually(lambda: idle_with(second), timeout=30, what="IDLE to bring the new mail")


async def test_restart_resumes_from_the_cursor_without_duplicates_or_gaps(
    env: Env, pipeline
) -> None:
    user = env.mail_user("resume")
    account = env.account(user, account_id=f"resume-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(12)
    before = [deliver(env, user.address, rng, d) for d in range(1, 6)]

    async with env.mongo() as db:
        async with pipeline("fetcher") as running:

            async def cursor_at(uid: int) -> bool:
                running.check()
                cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
                return bool(cur) and cur["last_uid"] == uid

            await eventually(lambda: cursor_at(5), timeout=60, what="cursor at UID 5")
        # Mail arrives while the fetcher is down.
        after = [deliver(env, user.address, rng, d) for d in range(6, 9)]
        async with pipeline() as running:

            async def all_written() -> bool:
                running.check()
                return await db.activities.count_documents({}) == 8

            await eventually(all_written, timeout=90, what="all 8 activities")

        ids = {d["message_id"] for d in await db.activities.find().to_list(None)}
        assert ids == set(before + after)
    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    uids = sorted(r.meta["location"]["uid"] for r in raw if r.meta)
    assert uids == list(range(1, 9))  # each message published once: no duplicate, no gap


async def test_uidvalidity_change_resyncs_without_new_activities(env: Env, pipeline) -> None:
    user = env.mail_user("uidv")
    account = env.account(user, account_id=f"uidv-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(13)
    mids = [deliver(env, user.address, rng, d) for d in range(1, 4)]

    async with env.mongo() as db, pipeline() as running:

        async def written(n: int) -> bool:
            running.check()
            return await db.activities.count_documents({}) == n

        await eventually(lambda: written(3), timeout=90, what="3 activities")
        env.dovecot.set_uidvalidity(user.address, "INBOX", 777)

        async def renumbered() -> bool:
            running.check()
            docs = await db.activities.find().to_list(None)
            return len(docs) == 3 and all(d["sightings"][0]["uidvalidity"] == 777 for d in docs)

        await eventually(renumbered, timeout=60, what="sightings renumbered to UIDVALIDITY 777")
        docs = await db.activities.find().to_list(None)
        assert sorted(d["message_id"] for d in docs) == sorted(mids)
        assert all(len(d["sightings"]) == 1 for d in docs)
