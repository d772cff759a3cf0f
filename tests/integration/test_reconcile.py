"""Reconcile on Dovecot: activities lost downstream come back; flags without CONDSTORE."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sys
from typing import Any

import pytest

from devservers.corpus import build
from schemas.topics import MAILBOX_EVENTS, RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually, meta_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Bohumil Hrabal", "bohumil@tiche-samoty.cz")


def deliver(env: Env, address: str, rng: random.Random, n: int) -> list[str]:
    mids = []
    for day in range(1, n + 1):
        when = dt.datetime(2026, 5, day, 9, 0, tzinfo=dt.UTC)
        mail = build(rng, CUSTOMER, [("Me", address)], date=when)
        env.dovecot.deliver(address, mail.message, mail_from=CUSTOMER[1])
        mids.append(mail.message_id)
    return mids


async def test_reconcile_on_request_restores_activities_the_broker_lost(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("recon")
    account = env.account(user, account_id=f"recon-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    mids = deliver(env, user.address, random.Random(31), 5)

    # No periodic reconcile during the test: only the request below triggers one.
    async with (
        env.mongo() as db,
        pipeline(fetcher_reconcile_interval_s=3600.0, fetcher_reconcile_grace_s=0.0) as running,
    ):

        async def written(n: int) -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == n)

        await eventually(lambda: written(5), timeout=90, what="5 activities")
        # Two activities vanish downstream, as if the broker had lost their records
        # after the fetcher's cursor moved past them.
        lost = mids[1:3]
        assert (await db.activities.delete_many({"message_id": {"$in": lost}})).deleted_count == 2

        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "reconcile",
            account.account_id,
            env=env.environ(),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await cli.communicate()
        assert cli.returncode == 0, out
        await eventually(lambda: written(5), timeout=60, what="the lost activities restored")
        stored = {d["message_id"] for d in await db.activities.find().to_list(None)}
        assert stored == set(mids)
        state = await db.account_states.find_one({"_id": account.account_id})
        assert state["last_reconcile"]["refetched"] == 2
        assert await db.reconcile_requests.count_documents({}) == 0  # answered

    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    uids = [r.meta["location"]["uid"] for r in raw if r.meta]
    assert uids == [1, 2, 3, 4, 5, 2, 3]  # only the gaps were published again


async def test_flag_changes_without_condstore_are_found_by_the_periodic_reconcile(
    env: Env, pipeline: Pipeline
) -> None:
    suffix = env.overrides["topic_prefix"].strip(".")
    # This user's Dovecot announces bare IMAP4rev1: no CONDSTORE (RFC 7162), no IDLE.
    user = env.dovecot.add_user(
        f"nocs-{suffix}@example.com", "pw-nocs", settings="userdb_imap_capability=IMAP4rev1"
    )
    account = env.account(user, account_id=f"nocs-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    mids = deliver(env, user.address, random.Random(32), 3)

    async with (
        env.mongo() as db,
        pipeline(fetcher_reconcile_interval_s=1.0, fetcher_reconcile_grace_s=0.0) as running,
    ):

        async def sighting(mid: str) -> dict[str, Any]:
            doc = await db.activities.find_one({"message_id": mid})
            return doc["sightings"][0] if doc else {}

        async def written() -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == 3)

        await eventually(written, timeout=90, what="3 activities")
        assert (await sighting(mids[0]))["flags"] == []
        env.dovecot.doveadm(
            "flags", "add", "-u", user.address, "\\Flagged \\Seen", "mailbox", "INBOX", "uid", "1"
        )

        async def flagged() -> bool:
            running.check()
            return set((await sighting(mids[0])).get("flags", [])) == {"\\Flagged", "\\Seen"}

        await eventually(flagged, timeout=60, what="the flag change on the sighting")
        assert (await sighting(mids[1]))["flags"] == []

    events = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(MAILBOX_EVENTS))
    changes = [meta_of(r)["event"] for r in events]
    assert {(e["kind"], e["location"]["uid"], e["modseq"]) for e in changes} == {("flags", 1, None)}
