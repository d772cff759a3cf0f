"""Fetcher sync on Dovecot: IDLE pickup, restart from the cursor, UIDVALIDITY change."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from devservers.corpus import build
from schemas.topics import RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually, meta_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Søren Kierkegaard", "soren@filosofi.dk")


def deliver(env: Env, address: str, rng: random.Random, day: int) -> str:
    when = dt.datetime(2026, 10, day, 9, 0, tzinfo=dt.UTC)
    mail = build(rng, CUSTOMER, [("Me", address)], date=when)
    env.dovecot.deliver(address, mail.message, mail_from=CUSTOMER[1])
    return mail.message_id


async def test_idle_picks_up_new_mail_without_polling(env: Env, pipeline: Pipeline) -> None:
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
    env: Env, pipeline: Pipeline
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
                return bool(await db.activities.count_documents({}) == 8)

            await eventually(all_written, timeout=90, what="all 8 activities")

        ids = {d["message_id"] for d in await db.activities.find().to_list(None)}
        assert ids == set(before + after)
    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    uids = sorted(r.meta["location"]["uid"] for r in raw if r.meta)
    assert uids == list(range(1, 9))  # each message published once: no duplicate, no gap


async def test_uidvalidity_change_with_the_same_messages_remaps_and_fetches_nothing(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("uidv")
    account = env.account(user, account_id=f"uidv-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(13)
    mids = [deliver(env, user.address, rng, d) for d in range(1, 4)]
    raw_topic = env.settings.topic(RAW_MESSAGES)

    async with env.mongo() as db, pipeline() as running:

        async def written(n: int) -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == n)

        await eventually(lambda: written(3), timeout=90, what="3 activities")
        old = int(env.dovecot.status(user.address, "INBOX")["uidvalidity"])
        env.dovecot.set_uidvalidity(user.address, "INBOX", 777)

        async def renumbered() -> bool:
            running.check()
            docs = await db.activities.find().to_list(None)
            return len(docs) == 3 and all(d["sightings"][0]["uidvalidity"] == 777 for d in docs)

        await eventually(renumbered, timeout=60, what="sightings renumbered to UIDVALIDITY 777")
        docs = await db.activities.find().to_list(None)
        assert sorted(d["message_id"] for d in docs) == sorted(mids)
        assert all(len(d["sightings"]) == 1 for d in docs)
        state = await db.account_states.find_one({"_id": account.account_id})
        (change,) = state["uidvalidity_changes"]
        assert (change["folder"], change["old_uidvalidity"], change["new_uidvalidity"]) == (
            "INBOX",
            old,
            777,
        )
        assert change["verdict"] == "same" and change["remapped"] == 3
        cursor = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
        assert (cursor["uidvalidity"], cursor["uids"], cursor["missing_uids"]) == (777, "1:3", [])
        # The folder's progress counts its messages, renumbered, not the last pass's.
        (progress,) = state["folders"]
        assert (progress["folder"], progress["done"], progress["total"]) == ("INBOX", 3, 3)

        # Mail after the renumbering is fetched as usual, under the new UIDVALIDITY.
        later = deliver(env, user.address, rng, 4)

        async def fourth() -> bool:
            running.check()
            doc = await db.activities.find_one({"message_id": later})
            return bool(doc) and doc["sightings"][0]["uidvalidity"] == 777

        await eventually(fourth, timeout=60, what="the message delivered after the change")
        state = await db.account_states.find_one({"_id": account.account_id})
        assert [(p["done"], p["total"]) for p in state["folders"]] == [(4, 4)]
    raw = await read_topic(env.overrides["kafka_bootstrap"], raw_topic)
    published = [
        (meta_of(r)["location"]["uidvalidity"], meta_of(r)["location"]["uid"]) for r in raw
    ]
    # Nothing fetched again: three messages before the change, one after.
    assert published == [(old, 1), (old, 2), (old, 3), (777, 4)]


async def test_a_replaced_folder_is_resynced_and_the_change_recorded(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("replaced")
    folder = "Zakázky 2026"  # non-ASCII: modified UTF-7 on the wire (RFC 3501 5.1.3)
    account = env.account(
        user, account_id=f"repl-{env.overrides['mongo_database']}", folders=(folder,)
    )
    env.dovecot.create_folder(user.address, folder)
    rng = random.Random(14)

    def file(day: int) -> str:
        when = dt.datetime(2026, 9, day, 9, 0, tzinfo=dt.UTC)
        mail = build(rng, CUSTOMER, [("Me", user.address)], date=when)
        env.dovecot.save(user.address, folder, mail.message)
        return mail.message_id

    first = [file(d) for d in (1, 2)]
    await env.publish_accounts(account)

    async with env.mongo() as db, pipeline() as running:

        async def written(mids: list[str]) -> bool:
            running.check()
            return bool(
                await db.activities.count_documents({"message_id": {"$in": mids}}) == len(mids)
            )

        await eventually(lambda: written(first), timeout=90, what="the first folder's mail")
        old = int(env.dovecot.status(user.address, folder)["uidvalidity"])
        # The user deletes the folder and makes a new one of the same name, other mail in it.
        env.dovecot.doveadm("mailbox", "delete", "-u", user.address, folder)
        env.dovecot.create_folder(user.address, folder)
        env.dovecot.set_uidvalidity(user.address, folder, old + 1000)
        second = [file(d) for d in (3, 4, 5)]

        await eventually(lambda: written(second), timeout=60, what="the new folder's mail")

        async def gone_marked() -> bool:
            docs = await db.activities.find({"message_id": {"$in": first}}).to_list(None)
            return all(d["sightings"][0].get("expunged_at") for d in docs)

        await eventually(gone_marked, timeout=30, what="the old folder's mail marked expunged")
        state = await db.account_states.find_one({"_id": account.account_id})
        (change,) = state["uidvalidity_changes"]
        assert (change["verdict"], change["old_uidvalidity"], change["new_uidvalidity"]) == (
            "replaced",
            old,
            old + 1000,
        )
        for mid in second:
            doc = await db.activities.find_one({"message_id": mid})
            (sighting,) = doc["sightings"]
            assert (sighting["folder"], sighting["uidvalidity"]) == (folder, old + 1000)
