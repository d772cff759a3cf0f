"""``ImapSession.uid_fetch_each`` against Dovecot: each message is the caller's as soon as
the server sent it, and a caller that fails on one leaves the connection in step."""

from __future__ import annotations

import pytest

from services.imap import FetchedMessage
from tests.fixtures.imap_session import filler, inbox_uids, session
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

COUNT = 40
SIZE = 50_000


async def test_messages_are_handed_over_before_the_fetch_completes(env: Env) -> None:
    user = env.mail_user("each")
    sent = [filler(i, SIZE) for i in range(COUNT)]
    assert env.dovecot.deliver_many(user.address, sent)
    async with session(env, user.address, user.password) as imap:
        uids = await inbox_uids(imap)
        got: list[FetchedMessage] = []
        pending_when_handed: list[bool] = []

        def each(message: FetchedMessage) -> None:
            got.append(message)
            protocol = imap.client.protocol  # FETCH is one of aioimaplib's async commands
            pending_when_handed.append(bool(protocol.pending_async_commands))

        await imap.uid_fetch_each(uids, each)
    # Whole and in UID order (after the trace headers Dovecot's LMTP adds).
    assert len(got) == COUNT
    assert all(m.body.endswith(s) for m, s in zip(got, sent, strict=True))
    assert [m.uid for m in got] == uids
    # The first message was the caller's while Dovecot was still sending the others.
    assert pending_when_handed[0]


async def test_a_caller_that_fails_fails_the_fetch_and_the_session_goes_on(env: Env) -> None:
    user = env.mail_user("eachfail")
    sent = [filler(i, SIZE) for i in range(5)]
    assert env.dovecot.deliver_many(user.address, sent)
    async with session(env, user.address, user.password) as imap:
        uids = await inbox_uids(imap)
        seen: list[int] = []

        def each(message: FetchedMessage) -> None:
            seen.append(message.uid)
            if len(seen) == 2:
                raise ValueError("no room for this one")

        with pytest.raises(ValueError, match="no room"):
            await imap.uid_fetch_each(uids, each)
        assert seen == uids[:2]  # nothing more is handed over after the failure
        # The whole answer was read: the next command gets its own answer.
        again = await imap.uid_fetch(uids)
    assert len(again) == len(sent)
    assert all(m.body.endswith(s) for m, s in zip(again, sent, strict=True))
