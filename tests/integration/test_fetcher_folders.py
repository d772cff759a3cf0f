"""Fetcher on Dovecot: a large initial import, special-use folders, non-ASCII folder names."""

from __future__ import annotations

import datetime as dt
import random
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

import pytest

from devservers.corpus import build
from schemas.topics import RAW_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Kateřina Horáková", "katerina@pekarna-horak.cz")


def small(n: int, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Bulk Sender <bulk@example.net>"
    msg["To"] = to
    msg["Subject"] = f"Objednávka č. {n}"
    msg["Date"] = format_datetime(dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n))
    msg["Message-ID"] = f"<bulk-{n}@example.net>"
    msg.set_content(f"Message {n}.\n")
    return msg.as_bytes(policy=SMTP)


async def test_initial_import_of_3000_messages_publishes_each_once(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("bulk")
    count = 3000
    assert env.dovecot.deliver_many(user.address, (small(n, user.address) for n in range(count)))
    account = env.account(user, account_id=f"bulk-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)

    async with env.mongo() as db, pipeline("fetcher", fetcher_batch_size=500) as running:

        async def cursor_at_end() -> bool:
            running.check()
            cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
            return bool(cur) and cur["last_uid"] == count

        await eventually(cursor_at_end, timeout=180, interval=1, what=f"cursor at UID {count}")
        cursor = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
        assert (cursor["uids"], cursor["missing_uids"], cursor["exists"]) == (
            f"1:{count}",
            [],
            count,
        )

    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    uids = sorted(r.meta["location"]["uid"] for r in raw if r.meta)
    assert uids == list(range(1, count + 1))  # every one once: no duplicate, no gap
    ids = {r.value.split(b"Message-ID: <", 1)[1].split(b">", 1)[0] for r in raw if r.value}
    assert ids == {f"bulk-{n}@example.net".encode() for n in range(count)}


async def test_roles_come_from_special_use_flags_and_names_are_decoded(
    env: Env, pipeline: Pipeline
) -> None:
    user = env.mail_user("roles")
    # Czech names: the role must come from the RFC 6154 attribute the server sends (set
    # in the dev Dovecot's namespace), never from the name. The last has none.
    folders = {
        "Odeslaná pošta": "sent",
        "Koš": "trash",
        "Junk": "junk",
        "Archive": "archive",
        "Zákazníci/Účetnictví": "other",
    }
    for name in ("Odeslaná pošta", "Koš", "Zákazníci", "Zákazníci/Účetnictví"):
        env.dovecot.create_folder(user.address, name)
    rng = random.Random(21)
    mids = {}
    for day, name in enumerate(folders, 1):
        mail = build(
            rng, CUSTOMER, [("Me", user.address)], date=dt.datetime(2026, 3, day, tzinfo=dt.UTC)
        )
        env.dovecot.save(user.address, name, mail.message)
        mids[name] = mail.message_id
    account = env.account(
        user, account_id=f"roles-{env.overrides['mongo_database']}", folders=tuple(folders)
    )
    await env.publish_accounts(account)

    async with env.mongo() as db, pipeline() as running:

        async def all_written() -> bool:
            running.check()
            return bool(await db.activities.count_documents({}) == len(folders))

        await eventually(all_written, timeout=90, what="one activity per folder")
        for name, role in folders.items():
            doc = await db.activities.find_one({"message_id": mids[name]})
            (sighting,) = doc["sightings"]
            assert (sighting["folder"], sighting["folder_role"]) == (name, role)

    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    seen = {(r.meta["location"]["folder"], r.meta["folder_role"]) for r in raw if r.meta}
    assert seen == set(folders.items())
