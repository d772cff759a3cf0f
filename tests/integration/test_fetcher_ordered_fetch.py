"""services.fetcher.ordered_fetch against Dovecot: batches streamed in UID order, and a
caller that stops reading holds the server back instead of filling the fetcher's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from schemas.topics import RAW_MESSAGES
from services.fetcher import ordered_fetch
from services.fetcher.ordered_fetch import ordered_batches
from services.imap import FetchedMessage, ImapSession
from services.topic_reader import read_topic
from tests.fixtures.imap_session import filler, inbox_uids, session
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MB = 1_000_000


def _counting(imap: ImapSession, handed: list[int]) -> None:
    """Count the bytes the connection hands over, as they come off the wire."""
    fetch_each = imap.uid_fetch_each

    async def counted(uids: list[int], each: Callable[[FetchedMessage], None]) -> None:
        def count(message: FetchedMessage) -> None:
            handed.append(len(message.body))
            each(message)

        await fetch_each(uids, count)

    imap.uid_fetch_each = counted  # type: ignore[method-assign]


async def test_a_caller_that_stalls_holds_the_server_back(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publisher that stops (a broker that does not answer) must not make the fetcher
    read the whole mailbox into memory: past the window it reads nothing more, then goes
    on when the publisher does, with every message whole and in order."""
    monkeypatch.setattr(ordered_fetch, "AHEAD_BYTES", 4 * MB)
    user = env.mail_user("stall")
    sent = [filler(i, MB) for i in range(30)]  # 30 MB, 6 batches of 5
    for raw in sent:
        env.dovecot.deliver(user.address, raw)
    async with session(env, user.address, user.password) as imap:
        uids = await inbox_uids(imap)
        handed: list[int] = []
        _counting(imap, handed)
        chunks = [uids[i : i + 5] for i in range(0, len(uids), 5)]
        got: list[FetchedMessage] = []
        async with contextlib.aclosing(ordered_batches(imap, chunks)) as batches:
            async for _, arriving in batches:
                async for message in arriving:
                    got.append(message)
                    if len(got) == 1:
                        await asyncio.sleep(1.5)  # Dovecot would send all 30 MB by now
                        # What it read and the caller did not take: the window (4 MB),
                        # the message that crossed it, and what one read brought with it.
                        assert sum(handed) - len(message.body) <= 4 * MB + 2 * MB
                        assert not imap.client.protocol.transport.is_reading()
    assert [m.uid for m in got] == uids
    assert all(m.body.endswith(s) for m, s in zip(got, sent, strict=True))


async def test_a_hold_longer_than_the_imap_timeout_does_not_fail_the_fetch(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time a connection is held waits on us, not on the server: it must not count
    toward the FETCH's timeout, or a slow broker would fail every import."""
    monkeypatch.setattr(ordered_fetch, "AHEAD_BYTES", 2 * MB)
    user = env.mail_user("holdlong")
    sent = [filler(i, MB) for i in range(12)]
    for raw in sent:
        env.dovecot.deliver(user.address, raw)
    async with session(env, user.address, user.password, timeout=1.0) as imap:
        uids = await inbox_uids(imap)
        chunks = [uids[i : i + 4] for i in range(0, len(uids), 4)]
        got: list[int] = []
        async with contextlib.aclosing(ordered_batches(imap, chunks)) as batches:
            async for _, arriving in batches:
                async for message in arriving:
                    got.append(message.uid)
                    if len(got) == 1:
                        await asyncio.sleep(2.5)
        # The session is still good for the next command.
        assert await imap.uid_search("ALL") == uids
    assert got == uids


async def test_an_import_of_large_inline_mail_past_the_window_is_whole_and_in_order(
    env: Env, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages just under the inline limit go to Kafka whole: past the window the
    fetcher waits for the broker's acknowledgement before it sends more, and every
    message still arrives once, in UID order, with the cursor at the last."""
    monkeypatch.setattr(ordered_fetch, "AHEAD_BYTES", 3 * MB)
    user = env.mail_user("inline")
    account = env.account(user, account_id=f"inline-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    sent = [filler(i, 900_000) for i in range(24)]  # inline: under the 1 MiB limit
    for raw in sent:
        env.dovecot.deliver(user.address, raw)
    async with env.mongo() as db, pipeline("fetcher", fetcher_batch_size=10) as running:

        async def cursor_at_last() -> bool:
            running.check()
            cur = await db.folder_cursors.find_one({"_id": f"{account.account_id}/INBOX"})
            return bool(cur) and cur["last_uid"] == len(sent)

        await eventually(cursor_at_last, timeout=90, what="the cursor at the last UID")
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    mine = [r for r in records if r.meta and r.meta["location"]["account_id"] == account.account_id]
    assert [r.meta["location"]["uid"] for r in mine if r.meta] == list(range(1, 25))
    assert all((r.value or b"").endswith(s) for r, s in zip(mine, sent, strict=True))


async def test_a_second_connection_that_joins_late_takes_its_share_in_order(env: Env) -> None:
    """With a second connection (a large import), every batch is handed out once, whole
    and in UID order, whichever connection fetched it and whenever it joined."""
    user = env.mail_user("twoconn")
    assert env.dovecot.deliver_many(user.address, (filler(i, 2000) for i in range(1200)))
    async with (
        session(env, user.address, user.password) as first,
        session(env, user.address, user.password) as second,
    ):
        uids = await inbox_uids(first)
        await inbox_uids(second)
        fetched_by_second: list[int] = []
        _counting(second, fetched_by_second)

        async def joins_late() -> ImapSession:
            await asyncio.sleep(0.05)  # the first has taken a few batches by then
            return second

        chunks = [uids[i : i + 25] for i in range(0, len(uids), 25)]
        got: list[int] = []
        async with contextlib.aclosing(ordered_batches(first, chunks, joins_late())) as batches:
            async for batch, arriving in batches:
                mine = [m.uid async for m in arriving]
                assert mine == batch
                got += mine
    assert got == uids
    assert fetched_by_second  # it did take a share


async def test_one_fetch_asks_for_whole_batches_up_to_the_span(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UID FETCH carries as many whole batches as fit in SPAN_UIDS (so that a command
    line stays within the server's limit whatever the batch size), and at least one."""
    monkeypatch.setattr(ordered_fetch, "SPAN_UIDS", 100)
    user = env.mail_user("span")
    assert env.dovecot.deliver_many(user.address, (filler(i, 500) for i in range(300)))
    async with session(env, user.address, user.password) as imap:
        uids = await inbox_uids(imap)
        asked: list[int] = []
        fetch_each = imap.uid_fetch_each

        async def counted(uids: list[int], each: Callable[[FetchedMessage], None]) -> None:
            asked.append(len(uids))
            await fetch_each(uids, each)

        imap.uid_fetch_each = counted  # type: ignore[method-assign]
        got: list[int] = []
        for size in (30, 150):  # 3 batches a FETCH; then one batch larger than the span
            asked.clear()
            chunks = [uids[i : i + size] for i in range(0, len(uids), size)]
            async with contextlib.aclosing(ordered_batches(imap, chunks)) as batches:
                got = [m.uid async for _, arriving in batches async for m in arriving]
            assert got == uids
            assert asked == ([90, 90, 90, 30] if size == 30 else [150, 150])
