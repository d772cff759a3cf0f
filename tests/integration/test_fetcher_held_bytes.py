"""Accounts importing at once on one fetcher replica hold at most its limit of mail
(MAILSYNC_FETCHER_HELD_MIB, services.fetcher.held_bytes): past it their connections
wait, and every message still arrives once, whole and in UID order, with the gauge ops
watch back at 0 once the imports are done."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from schemas.topics import RAW_MESSAGES
from services.fetcher.held_bytes import HeldBytes
from services.imap.tls_buffer import BULK_READ_BUFFER
from services.topic_reader import read_topic
from tests.fixtures.imap_session import filler
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MIB = 1024 * 1024
SIZE = 100_000  # inline: under the 1 MiB limit, so each message is held whole


async def test_imports_at_once_stay_within_the_replicas_limit(
    env: Env, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    values: list[int] = []  # the replica's count after each message it took in
    add = HeldBytes.add

    def recorded(held: HeldBytes, size: int) -> None:
        add(held, size)
        values.append(held.held)

    monkeypatch.setattr(HeldBytes, "add", recorded)
    prefix = env.overrides["mongo_database"]
    users = [env.mail_user(f"held{n}") for n in range(3)]
    accounts = [env.account(u, account_id=f"held{n}-{prefix}") for n, u in enumerate(users)]
    sent = [filler(i, SIZE) for i in range(60)]  # 6 MB an account, 18 MB in all
    for user in users:
        assert env.dovecot.deliver_many(user.address, sent) == len(sent)
    await env.publish_accounts(*accounts)
    async with (
        env.mongo() as db,
        pipeline("fetcher", fetcher_batch_size=10, fetcher_held_mib=1) as running,
    ):

        async def all_at_the_last_uid() -> bool:
            running.check()
            ids = [f"{a.account_id}/INBOX" for a in accounts]
            cursors = await db.folder_cursors.find({"_id": {"$in": ids}}).to_list(None)
            return len(cursors) == 3 and all(c["last_uid"] == len(sent) for c in cursors)

        await eventually(all_at_the_last_uid, timeout=150, what="every cursor at the last UID")

        async def nothing_held() -> bool:  # as ops see it
            return REGISTRY.get_sample_value("mailsync_fetcher_held_bytes") == 0

        await eventually(nothing_held, timeout=10, what="the held bytes back to 0")
    # Past the limit each connection still hands over what it had read: a read and
    # the message it ends in.
    assert max(values) <= 1 * MIB + len(users) * (BULK_READ_BUFFER + SIZE)
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    for account in accounts:
        mine = [
            r for r in records if r.meta and r.meta["location"]["account_id"] == account.account_id
        ]
        assert [r.meta["location"]["uid"] for r in mine if r.meta] == list(range(1, 61))
        assert all((r.value or b"").endswith(s) for r, s in zip(mine, sent, strict=True))
