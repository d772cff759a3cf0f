"""Nothing lost, nothing mislabeled (issue 15): every IMAP message is a sighting, the
canonical sighting is MongoDB's, not dedup's table's."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from devservers.corpus import build
from schemas.account import SharedOwnership
from schemas.common import Direction, FolderRole
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import AccountTag, TaggedMessageMeta
from services.activity_writer.mapping import Mapped, to_activity
from services.activity_writer.repository import ActivityRepository, Written
from services.common import metrics
from services.mail.headers import parse_headers
from services.mail.identity import identify
from tests.fixtures.pipeline import Env, erase_activity, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Petr Dvořák", "petr.dvorak@stavby-dvorak.cz")
WHEN = dt.datetime(2026, 8, 3, 7, 45, tzinfo=dt.UTC)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def places(docs: list[dict[str, Any]]) -> list[tuple[str, str, int, int]]:
    return sorted(
        (s["account_id"], s["folder"], s["uidvalidity"], s["uid"])
        for d in docs
        for s in d["sightings"]
    )


async def test_every_imap_message_is_a_sighting_and_id_collisions_are_linked(
    env: Env, pipeline: Any
) -> None:
    user = env.mail_user("ids")
    account = env.account(user, account_id=f"ids-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    mail = build(random.Random(7), CUSTOMER, [("Jana", user.address)], date=WHEN, subject="Offer")
    # A mailing-list copy: tagged subject, list fields, a footer. The same message.
    listed = mail.message.replace(b"Subject: Offer", b"Subject: [team] Offer\r\nList-Id: <t.x>")
    listed += b"\r\n-- \r\nteam mailing list\r\n"
    # A broken client stamped the same Message-ID on another message.
    conflict = mail.message.replace(b"Subject: Offer", b"Subject: Invoice 7").replace(
        b"Date: Mon, 03 Aug 2026", b"Date: Tue, 04 Aug 2026"
    )
    odd = build(random.Random(8), CUSTOMER, [("J", user.address)], date=WHEN, subject="Odd id")
    spaced = odd.message.replace(f"<{odd.message_id}>".encode(), b"< ODD.Case.Id@Example.TEST >")
    empty = b"\r\n"
    noise = bytes(random.Random(9).randrange(256) for _ in range(2000))
    for raw in (mail.message, listed, conflict, spaced, empty, noise):
        env.dovecot.save(user.address, "INBOX", raw)
    # Per account only where MAILSYNC_METRICS_PER_ACCOUNT is on (off by default): the
    # totals otherwise, which this test alone moves while it runs.
    labels = {"account": account.account_id} if metrics.per_account() else {}
    before_sightings = counter("mailsync_sightings_written_total", **labels, folder="INBOX")
    before_created = counter("mailsync_activities_created_total", **labels)

    async with env.mongo() as db, pipeline() as running:

        async def settled() -> list[dict[str, Any]] | None:
            running.check()
            docs = await db.activities.find().to_list(None)
            linked = sum(d.get("message_id_conflict", False) for d in docs)
            return docs if len(places(docs)) == 6 and linked == 2 else None

        docs = await eventually(settled, timeout=120, what="6 sightings, 2 linked conflicts")
    # Every UID of the folder is exactly one sighting of one activity.
    uidvalidity = docs[0]["sightings"][0]["uidvalidity"]
    assert places(docs) == [(account.account_id, "INBOX", uidvalidity, u) for u in range(1, 7)]
    same = [d for d in docs if d["message_id"] == mail.message_id]
    assert len(same) == 2  # the message (with its list copy) and the conflicting one
    (offer,) = [d for d in same if d["subject"] == "Offer"]
    (invoice,) = [d for d in same if d["subject"] == "Invoice 7"]
    assert sorted(s["uid"] for s in offer["sightings"]) == [1, 2]
    assert [s["uid"] for s in invoice["sightings"]] == [3]
    assert offer["conflicts_with"] == [invoice["_id"]] and invoice["conflicts_with"] == [
        offer["_id"]
    ]
    assert offer["message_id_conflict"] and invoice["message_id_conflict"]
    assert [d["message_id"] for d in docs if d["subject"] == "Odd id"] == [
        "ODD.Case.Id@example.test"
    ]
    # The empty message and the random bytes: two activities, not one.
    assert len(docs) == 5
    others = [d for d in docs if d["message_id"] != mail.message_id]
    assert not any(d.get("message_id_conflict") or d.get("conflicts_with") for d in others)
    # The counters say what MongoDB holds.
    sightings = counter("mailsync_sightings_written_total", **labels, folder="INBOX")
    created = counter("mailsync_activities_created_total", **labels)
    assert (sightings - before_sightings, created - before_created) == (6, 5)


async def _delete_changelog(env: Env) -> None:
    """dedup's table, gone: its changelog topic deleted (a lost broker volume)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.overrides["kafka_bootstrap"])
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.endswith("-changelog")]
        mine = [t for t in mine if t.startswith(env.overrides["topic_prefix"])]
        assert mine, "dedup's changelog topic"
        await admin.delete_topics(mine)
    finally:
        await admin.close()


async def test_a_lost_dedup_table_leaves_one_canonical_sighting(env: Env, pipeline: Any) -> None:
    jana, info = env.mail_user("jana"), env.mail_user("info")
    suffix = env.overrides["mongo_database"]
    personal = env.account(jana, account_id=f"jana-{suffix}")
    shared = env.account(info, account_id=f"info-{suffix}", ownership=SharedOwnership(group="g"))
    await env.publish_accounts(personal)
    rng = random.Random(41)
    both = [
        build(rng, CUSTOMER, [("J", jana.address), ("I", info.address)], date=WHEN, subject=s)
        for s in ("Order 1", "Order 2", "Order 3", "Order 4")
    ]
    for mail in both:
        env.dovecot.deliver(jana.address, mail.message)

    async with env.mongo() as db:
        async with pipeline() as running:

            async def first() -> bool:
                running.check()
                return bool(await db.activities.count_documents({}) == 4)

            await eventually(first, timeout=120, what="jana's 4 activities")
        await _delete_changelog(env)
        # A new dedup (its data dir too): it starts with an empty table.
        await env.publish_accounts(shared)
        for mail in both:
            env.dovecot.deliver(info.address, mail.message)
        fresh = {"data_dir": env.overrides["data_dir"] / "fresh"}
        async with pipeline(**fresh) as running:

            async def second() -> list[dict[str, Any]] | None:
                running.check()
                docs = await db.activities.find().to_list(None)
                return docs if len(places(docs)) == 8 else None

            docs = await eventually(second, timeout=120, what="both accounts' sightings")
    assert len(docs) == 4
    for doc in docs:
        canonical = [s for s in doc["sightings"] if not s["duplicate"]]
        assert [s["account_id"] for s in canonical] == [personal.account_id], doc["sightings"]
        assert doc["sightings"][0]["account_id"] == personal.account_id


def _tagged(account: str, uid: int, raw: bytes, canonical: bool) -> TaggedMessageMeta:
    ident = identify(parse_headers(raw), raw)
    now = dt.datetime.now(dt.UTC)
    meta = RawMessageMeta(
        location={"account_id": account, "folder": "INBOX", "uidvalidity": 1, "uid": uid},
        folder_role=FolderRole.INBOX,
        internaldate=now,
        size=len(raw),
        sha256="0" * 64,
        fetched_at=now,
    )
    sighting = {"account_id": account, "folder": "INBOX", "uidvalidity": 1, "uid": uid}
    return TaggedMessageMeta(
        raw=meta,
        account=AccountTag(account_id=account, kind="personal", owner="o"),
        alias=None,
        direction=Direction.INBOUND,
        fingerprint=ident.fingerprint,
        activity_id=ident.activity_id,
        canonical=canonical,  # what a lost table would say: every copy "canonical"
        duplicate_of=None,
        sightings=({**sighting, "folder_role": "inbox"},),
    )


async def test_two_writers_racing_and_replays_store_one_canonical_sighting(env: Env) -> None:
    """Two writers (two repositories, two connections) write sightings of one activity at
    once, each told by its dedup that its sighting is canonical; then everything again."""
    raw = build(random.Random(3), CUSTOMER, [("J", "j@x.cz")], date=WHEN).message
    now = dt.datetime.now(dt.UTC)
    items = [
        to_activity(_tagged(a, u, raw, True), raw, now) for a, u in [("a", 1), ("b", 2), ("c", 3)]
    ]
    async with env.mongo() as db, env.mongo() as db2:
        one, two = ActivityRepository(db), ActivityRepository(db2)
        for attempt in range(2):  # the second time: a replay of every write
            await asyncio.gather(
                *(
                    repo.write([(m.activity, m.sighting)])
                    for repo, m in zip([one, two, one], items, strict=True)
                )
            )
            (doc,) = await db.activities.find().to_list(None)
            assert len(doc["sightings"]) == 3, attempt
            assert [s["duplicate"] for s in doc["sightings"]] == [False, True, True]
            assert sorted(doc["account_ids"]) == ["a", "b", "c"]


def _same_id(subjects: list[str]) -> list[Mapped]:
    """One message per subject, all stamped with one Message-ID (a broken client)."""
    raw = build(random.Random(5), CUSTOMER, [("J", "j@x.cz")], date=WHEN, subject="S0").message
    now = dt.datetime.now(dt.UTC)
    return [
        to_activity(_tagged("a", uid, m, True), m, now)
        for uid, m in enumerate(
            (raw.replace(b"Subject: S0", f"Subject: {s}".encode()) for s in subjects), 1
        )
    ]


async def _write(repo: ActivityRepository, batch: list[Mapped], link: bool = True) -> list[Written]:
    """As the writer does: the batch, then its Message-ID conflicts (unless it crashed)."""
    written = await repo.write([(m.activity, m.sighting) for m in batch])
    if link:
        await repo.link_conflicts(written)
    return written


def _links(docs: list[dict[str, Any]]) -> dict[str, tuple[bool, list[str]]]:
    return {
        d["_id"]: (d.get("message_id_conflict", False), sorted(d.get("conflicts_with", [])))
        for d in docs
    }


async def test_two_writers_racing_and_replays_link_every_conflict_the_same(env: Env) -> None:
    """Three messages with one Message-ID written at once by two writers, each alone in
    its batch, then everything again: each is linked to the other two, the same way."""
    items = _same_id(["Offer", "Invoice", "Reminder"])
    ids = sorted(m.activity.id for m in items)
    async with env.mongo() as db, env.mongo() as db2:
        one, two = ActivityRepository(db), ActivityRepository(db2)
        await asyncio.gather(one.ensure_indexes(), two.ensure_indexes())
        rounds = []
        for _ in range(2):  # the second time: a replay of every write
            await asyncio.gather(
                *(_write(repo, [m]) for repo, m in zip([one, two, one], items, strict=True))
            )
            rounds.append(await db.activities.find().sort("_id").to_list(None))
            assert _links(rounds[-1]) == {i: (True, [x for x in ids if x != i]) for i in ids}
        assert rounds[0] == rounds[1]
        (entry,) = await db.message_ids.find().to_list(None)
        assert (entry["_id"], sorted(entry["ids"])) == (items[0].activity.message_id, ids)


async def test_a_replay_links_what_a_crash_left_unlinked(env: Env) -> None:
    offer, invoice = _same_id(["Offer", "Invoice"])
    raw = build(random.Random(6), CUSTOMER, [("J", "j@x.cz")], date=WHEN).message
    other = to_activity(_tagged("a", 9, raw, True), raw, dt.datetime.now(dt.UTC))
    async with env.mongo() as db:
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        await _write(repo, [offer, other])
        # Stopped after the insert, before the link: the offset was not committed.
        await _write(repo, [invoice], link=False)
        assert not any(
            d.get("message_id_conflict") for d in await db.activities.find().to_list(None)
        )
        written = await _write(repo, [invoice])  # the replay
        assert not written[0].inserted
        docs = await db.activities.find().to_list(None)
    assert _links(docs) == {
        offer.activity.id: (True, [invoice.activity.id]),
        invoice.activity.id: (True, [offer.activity.id]),
        other.activity.id: (False, []),
    }


async def test_activities_stored_before_the_message_id_index_are_linked(env: Env) -> None:
    """An activity written by a writer that kept no ``message_ids`` (an older version):
    the next writer's start records it, and a later conflict with it is linked."""
    offer, invoice = _same_id(["Offer", "Invoice"])
    async with env.mongo() as db:
        await db.activities.insert_one(offer.activity.model_dump(by_alias=True))
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        await _write(repo, [invoice])
        docs = await db.activities.find().to_list(None)
    assert _links(docs) == {
        offer.activity.id: (True, [invoice.activity.id]),
        invoice.activity.id: (True, [offer.activity.id]),
    }


async def test_erasure_leaves_no_message_id_of_erased_mail(env: Env) -> None:
    """Of two messages sharing a Message-ID, the erased one's id leaves ``message_ids``;
    once both are erased the Message-ID is stored nowhere."""
    offer, invoice = _same_id(["Offer", "Invoice"])
    mid = offer.activity.message_id
    async with env.mongo() as db:
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        await _write(repo, [offer, invoice])
        assert sorted((await db.message_ids.find_one({"_id": mid}))["ids"]) == sorted(
            [offer.activity.id, invoice.activity.id]
        )
        await erase_activity(env, invoice.activity.id)
        assert await db.message_ids.find().to_list(None) == [
            {"_id": mid, "ids": [offer.activity.id]}
        ]
        await erase_activity(env, offer.activity.id)
        assert await db.message_ids.count_documents({}) == 0
        assert await db.activities.count_documents({"message_id": mid}) == 0


async def test_direction_does_not_depend_on_the_order_accounts_were_added(
    env: Env, pipeline: Any
) -> None:
    """Mail from jana to info, synced while only info's account exists: inbound. Once
    jana's account is added too, it is internal, as if both had existed from the start."""
    jana, info = env.mail_user("jana"), env.mail_user("info")
    suffix = env.overrides["mongo_database"]
    personal = env.account(jana, account_id=f"jana-{suffix}")
    shared = env.account(info, account_id=f"info-{suffix}", ownership=SharedOwnership(group="g"))
    mail = build(random.Random(12), ("Jana", jana.address), [("Info", info.address)], date=WHEN)
    env.dovecot.deliver(info.address, mail.message)
    await env.publish_accounts(shared)

    async with env.mongo() as db, pipeline() as running:

        async def direction(wanted: str) -> bool:
            running.check()
            doc = await db.activities.find_one({"message_id": mail.message_id})
            return bool(doc) and doc["direction"] == wanted

        await eventually(lambda: direction("inbound"), timeout=90, what="inbound")
        await env.publish_accounts(personal)  # jana's INBOX holds nothing of it
        await eventually(lambda: direction("internal"), timeout=60, what="internal")
