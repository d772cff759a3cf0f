"""Once in effect: replays and a writer killed between its write and its commit change nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from devservers.corpus import build
from schemas.topics import ACTIVITY_CONFIRMATIONS, ACTIVITY_EVENTS
from services.activity_writer.consumer import WriterLoop
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Emily Carter", "emily.carter@northwind.example")


async def _die(*args: object) -> None:
    raise RuntimeError("killed before commit")


def _stable(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents without the write time, for comparing two states."""
    return sorted(({k: v for k, v in d.items() if k != "updated_at"} for d in docs), key=str)


async def test_replaying_everything_and_a_killed_writer_change_nothing(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("replay")
    account = env.account(user, account_id=f"replay-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    rng = random.Random(51)
    for day in range(1, 21):
        when = dt.datetime(2026, 5, day, 8, 0, tzinfo=dt.UTC)
        env.dovecot.deliver(
            user.address, build(rng, CUSTOMER, [("R", user.address)], date=when).message
        )

    async with env.mongo() as db:
        async with pipeline() as running:

            async def written(n: int) -> bool:
                running.check()
                return bool(await db.activities.count_documents({}) == n)

            await eventually(lambda: written(20), timeout=90, what="20 activities")
        before = _stable(await db.activities.find().to_list(None))

        # Replay the whole raw topic through a fresh dedup (new app id: empty table) and
        # a fresh writer group: every record is processed a second time.
        replay = {"dedup_app_id": "replay-dedup", "writer_group": "replay-writer"}
        async with pipeline("dedup", "activity-writer", **replay) as running:
            writer = running.services[-1]

            async def replayed() -> bool:
                running.check()
                return writer.loop is not None and writer.loop.written >= 20

            await eventually(replayed, timeout=120, what="the replay to be written")
        assert _stable(await db.activities.find().to_list(None)) == before

        # A writer that dies after its write and before its commit. (Its first commit: a
        # writer patched only once started may have written and committed everything.)
        killed = {"writer_group": "killed-writer"}
        doomed = pipeline("activity-writer", **killed)
        with (
            pytest.MonkeyPatch.context() as patch,
            pytest.raises(RuntimeError, match="killed before commit"),
        ):
            patch.setattr(WriterLoop, "_commit", _die)
            async with doomed:
                while True:
                    doomed.check()
                    await asyncio.sleep(0.2)
        assert doomed.services[-1].loop.written >= 1  # it had written before it died
        async with pipeline("activity-writer", **killed) as running:
            writer = running.services[-1]

            async def rewritten() -> bool:
                running.check()
                return writer.loop is not None and writer.loop.written >= 1

            await eventually(rewritten, timeout=60, what="the restarted writer")
            await asyncio.sleep(2)
        assert _stable(await db.activities.find().to_list(None)) == before

    events = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(ACTIVITY_EVENTS))
    kinds = {(r.meta["activity_id"], r.meta["kind"]) for r in events if r.meta}
    # Every event of every replay says "created": each message has one sighting.
    assert {k for _, k in kinds} == {"created"}
    assert len({a for a, _ in kinds}) == 20
    confirmations = await read_topic(
        env.overrides["kafka_bootstrap"], env.settings.topic(ACTIVITY_CONFIRMATIONS)
    )
    assert {r.meta["uid"] for r in confirmations if r.meta} == set(range(1, 21))
