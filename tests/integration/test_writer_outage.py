"""The database goes away mid-stream: the writer pauses, loses nothing, and goes on."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

import pytest
from pydantic import SecretStr

from devservers import SecantusServer
from devservers.corpus import build
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Łucja Wójcik", "lucja.wojcik@drukarnia.pl")


async def test_database_outage_pauses_the_writer_and_loses_nothing(
    env: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    # A database of this test's own, on a fixed port, so it can be stopped and restarted.
    mongo = SecantusServer(tmp_path / "mongo").start()
    env.overrides["mongo_uri"] = SecretStr(mongo.uri)
    try:
        user = env.mail_user("outage")
        account = env.account(user, account_id=f"outage-{env.overrides['mongo_database']}")
        await env.publish_accounts(account)
        rng = random.Random(21)
        when = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
        mids = []
        for i in range(10):
            mail = build(rng, CUSTOMER, [("Out", user.address)], date=when + dt.timedelta(hours=i))
            env.dovecot.deliver(user.address, mail.message)
            mids.append(mail.message_id)

        async with env.mongo() as db, pipeline() as running:

            async def count(n: int) -> bool:
                running.check()
                return bool(await db.activities.count_documents({}) >= n)

            await eventually(lambda: count(10), timeout=90, what="the first 10 activities")
            mongo.stop()  # the database is down...
            for i in range(10, 20):
                mail = build(
                    rng, CUSTOMER, [("Out", user.address)], date=when + dt.timedelta(hours=i)
                )
                env.dovecot.deliver(user.address, mail.message)
                mids.append(mail.message_id)
            await asyncio.sleep(8)  # ...while mail keeps arriving
            running.check()  # nothing crashed
            mongo.start()

            await eventually(
                lambda: count(20), timeout=120, what="all 20 activities after recovery"
            )
            docs = await db.activities.find().to_list(None)
        assert sorted(d["message_id"] for d in docs) == sorted(mids)
        assert all(len(d["sightings"]) == 1 for d in docs)
    finally:
        mongo.stop()
