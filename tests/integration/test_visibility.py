"""The query layer on real data: one message in a personal and a shared mailbox."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from devservers.corpus import build
from schemas.account import PersonalOwnership, SharedOwnership
from services.activity_writer.queries import ActivityQueries
from services.activity_writer.visibility import Viewer, visible_accounts
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_each_viewer_sees_only_their_own_sightings(env: Env, pipeline: Pipeline) -> None:
    jana, info = env.mail_user("jana"), env.mail_user("info")
    suffix = env.overrides["mongo_database"]
    personal = env.account(
        jana, account_id=f"jana-{suffix}", ownership=PersonalOwnership(owner="u-jana")
    )
    shared = env.account(
        info, account_id=f"info-{suffix}", ownership=SharedOwnership(group="sales")
    )
    await env.publish_accounts(personal, shared)
    customer = ("Иван Петров", "ivan.petrov@example.ru")
    mail = build(
        random.Random(41),
        customer,
        [("Jana", jana.address), ("Info", info.address)],
        date=dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC),
    )
    env.dovecot.deliver(jana.address, mail.message)
    env.dovecot.deliver(info.address, mail.message)

    async with env.mongo() as db, pipeline() as running:

        async def both() -> bool:
            running.check()
            doc = await db.activities.find_one({"message_id": mail.message_id})
            return bool(doc) and len(doc["sightings"]) == 2

        await eventually(both, timeout=90, what="one activity with two sightings")
        queries = ActivityQueries(db)
        accounts = [personal, shared]

        def visible(viewer: Viewer) -> frozenset[str]:
            return visible_accounts(viewer, accounts)

        as_jana = await queries.list(visible(Viewer("u-jana")))
        as_sales = await queries.list(visible(Viewer("u-karel", frozenset({"sales"}))))
        as_admin = await queries.list(visible(Viewer("root", admin=True)))
        as_stranger = await queries.list(visible(Viewer("u-eve", frozenset({"support"}))))
        by_participant = await queries.list(
            visible(Viewer("u-jana")), participant="IVAN.PETROV@example.ru"
        )
        foreign_account = await queries.list(
            visible(Viewer("u-jana")), account_id=shared.account_id
        )
        stranger_get = await queries.get(
            visible(Viewer("u-eve")), as_admin[0]["_id"] if as_admin else "x"
        )

    assert [[s["account_id"] for s in a["sightings"]] for a in as_jana] == [[personal.account_id]]
    assert [[s["account_id"] for s in a["sightings"]] for a in as_sales] == [[shared.account_id]]
    assert sorted(s["account_id"] for s in as_admin[0]["sightings"]) == sorted(
        [personal.account_id, shared.account_id]
    )
    assert as_stranger == []
    assert [a["message_id"] for a in by_participant] == [mail.message_id]
    assert foreign_account == []
    assert stranger_get is None
