"""Subject threads (``thread_keys``): every key of a batch finds the thread of its
latest activity, a later reply in another thread moves it, erasure moves it back, and
activities stored before the collection existed are found too."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from devservers.corpus import build
from schemas.common import Direction, FolderRole
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import AccountTag, TaggedMessageMeta
from services.activity_writer.mapping import Mapped, to_activity
from services.activity_writer.repository import ActivityRepository
from services.common.mongo import IN_SLICE
from services.mail.headers import parse_headers
from services.mail.identity import identify
from tests.fixtures.pipeline import Env, erase_activity

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Petr Dvořák", "petr.dvorak@stavby-dvorak.cz")
ME = ("Jana", "jana@example.com")
WHEN = dt.datetime(2026, 8, 3, 7, 45, tzinfo=dt.UTC)


def _mapped(uid: int, subject: str, date: dt.datetime, in_reply_to: str | None = None) -> Mapped:
    raw = build(
        random.Random(uid), CUSTOMER, [ME], date=date, subject=subject, in_reply_to=in_reply_to
    ).message
    ident = identify(parse_headers(raw), raw)
    now = dt.datetime.now(dt.UTC)
    meta = TaggedMessageMeta(
        raw=RawMessageMeta(
            location={"account_id": "a", "folder": "INBOX", "uidvalidity": 1, "uid": uid},
            folder_role=FolderRole.INBOX,
            internaldate=now,
            size=len(raw),
            sha256="0" * 64,
            fetched_at=now,
        ),
        account=AccountTag(account_id="a", kind="personal", owner="o"),
        alias=None,
        direction=Direction.INBOUND,
        fingerprint=ident.fingerprint,
        activity_id=ident.activity_id,
        canonical=True,
        duplicate_of=None,
        sightings=(
            {
                "account_id": "a",
                "folder": "INBOX",
                "uidvalidity": 1,
                "uid": uid,
                "folder_role": "inbox",
            },
        ),
    )
    return to_activity(meta, raw, now)


async def _write(repo: ActivityRepository, batch: list[Mapped]) -> None:
    """As the writer does once a batch is threaded: the write, then its subject keys."""
    await repo.record_threads(await repo.write([(m.activity, m.sighting) for m in batch]))


async def test_every_key_of_a_batch_finds_the_thread_of_its_latest_activity(env: Env) -> None:
    subjects = [f"Zakázka {n}" for n in range(2 * IN_SLICE + 7)]  # more than one read
    firsts = [_mapped(n, s, WHEN + dt.timedelta(minutes=n)) for n, s in enumerate(subjects, 1)]
    # Another thread with the first subject, later (a reply to mail we never stored) ...
    later = _mapped(1001, subjects[0], WHEN + dt.timedelta(days=3), "<elsewhere@x.example>")
    # ... and one with the last subject, earlier than the first of that subject.
    earlier = _mapped(1002, subjects[-1], WHEN - dt.timedelta(days=3), "<older@x.example>")
    assert later.activity.thread_id != firsts[0].activity.thread_id
    assert earlier.activity.thread_id != firsts[-1].activity.thread_id
    keys = [m.activity.thread_key for m in firsts]
    assert len(set(keys)) == len(subjects) and None not in keys
    expected = {m.activity.thread_key: m.activity.thread_id for m in firsts}
    async with env.mongo() as db:
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        await _write(repo, firsts)
        assert await repo.threads_by_key([k for k in keys if k]) == expected
        await _write(repo, [later, earlier])
        found = await repo.threads_by_key([k for k in keys if k])
        await _write(repo, [later, earlier])  # a replay
        again = await repo.threads_by_key([k for k in keys if k])
    expected[later.activity.thread_key] = later.activity.thread_id
    assert found == again == expected


async def test_erasure_gives_a_key_back_to_the_thread_of_its_latest_activity_left(
    env: Env,
) -> None:
    first = _mapped(1, "Reklamace", WHEN)
    later = _mapped(2, "Reklamace", WHEN + dt.timedelta(days=1), "<elsewhere@x.example>")
    key = first.activity.thread_key
    assert key is not None and key == later.activity.thread_key
    async with env.mongo() as db:
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        await _write(repo, [first])
        await _write(repo, [later])
        assert await repo.threads_by_key([key]) == {key: later.activity.thread_id}
        await erase_activity(env, later.activity.id)
        assert await repo.threads_by_key([key]) == {key: first.activity.thread_id}
        await erase_activity(env, first.activity.id)
        assert await repo.threads_by_key([key]) == {}
        assert await db.thread_keys.count_documents({}) == 0


async def test_activities_stored_before_the_thread_keys_are_found(env: Env) -> None:
    """Written by a writer that kept no ``thread_keys`` (an older version): the next
    writer's start records their keys."""
    first = _mapped(1, "Faktura", WHEN)
    later = _mapped(2, "Faktura", WHEN + dt.timedelta(days=1), "<elsewhere@x.example>")
    key = first.activity.thread_key
    async with env.mongo() as db:
        await db.activities.insert_many(
            [m.activity.model_dump(by_alias=True) for m in (later, first)]
        )
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        assert key is not None
        assert await repo.threads_by_key([key]) == {key: later.activity.thread_id}
