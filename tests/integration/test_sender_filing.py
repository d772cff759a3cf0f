"""Filing sent messages in Sent against Dovecot, several at once: what the user's mail
client then shows in Sent, and the copy each request is told is its own."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devservers import MailUser
from schemas.account import AccountRecord
from services.common.oauth2 import TokenProvider
from services.imap import Credentials, ImapSession
from services.sender.errors import FilingFailed
from services.sender.filing import Filed, ImapLink, SentFiler, close_link
from services.sender.pool import Pool
from services.sender.reuse import Limits
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SENT_AT = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)


def message(n: int, body: bytes = b"") -> tuple[str, bytes]:
    mid = f"<{uuid.uuid4().hex}@crm.example.com>"
    raw = (
        f"From: info@example.com\r\nTo: zakaznik@example.net\r\nSubject: Faktura {n:02d}\r\n"
        f"Message-ID: {mid}\r\nDate: Sun, 06 Dec 2026 09:30:00 +0000\r\n\r\n"
    ).encode() + (body or f"Dobrý den, faktura {n}.\r\n".encode())
    return mid, raw


@pytest.fixture
async def filer(env: Env) -> AsyncIterator[SentFiler]:
    assert env.dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    pool: Pool[ImapLink] = Pool(per_account=4, limits=Limits(1000, 600), close=close_link)
    async with TokenProvider(env.box) as tokens:
        yield SentFiler(
            timeout=20, ssl_context=tls, credentials=Credentials(env.box, tokens), pool=pool
        )


async def file_together(
    filer: SentFiler, account: AccountRecord, messages: list[tuple[str, bytes]]
) -> list[Filed | BaseException]:
    """All of ``messages`` handed to the filer at once, as a burst's requests are."""
    async with filer.hold(account.account_id):
        return await asyncio.gather(
            *(filer.file(account, mid, raw, SENT_AT) for mid, raw in messages),
            return_exceptions=True,
        )


# What the user's mail client shows in Sent: UID -> (Message-ID, flags, INTERNALDATE).
Copies = dict[int, tuple[str, tuple[str, ...], dt.datetime]]


async def sent_folder(env: Env, user: MailUser) -> Copies:
    """Sent as a mail client reads it: UID -> (Message-ID, flags, INTERNALDATE)."""
    assert env.dovecot.cert is not None
    account = env.account(user)
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    async with ImapSession(account.imap, user.password, ssl_context=tls) as imap:
        sent = next(f for f in await imap.list_folders() if f.name == "Sent")
        status = await imap.examine(sent)
        uids = await imap.uid_search("ALL") if status.exists else []
        out: Copies = {}
        for m in await imap.uid_fetch(uids) if uids else []:
            mid = next(
                line.split(b":", 1)[1].strip().decode()
                for line in bytes(m.body).split(b"\r\n")
                if line.lower().startswith(b"message-id:")
            )
            assert m.internaldate is not None
            out[m.uid] = (mid, m.flags, m.internaldate)
        return out


def count_appends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of messages each APPEND command carried, from now on."""
    carried: list[int] = []
    one, many = ImapSession.append, ImapSession.append_many

    async def append(self: ImapSession, *args: Any) -> Any:
        carried.append(1)
        return await one(self, *args)

    async def append_many(self: ImapSession, folder: Any, messages: Any) -> Any:
        carried.append(len(messages))
        return await many(self, folder, messages)

    monkeypatch.setattr(ImapSession, "append", append)
    monkeypatch.setattr(ImapSession, "append_many", append_many)
    return carried


def assert_told_their_own(
    sent: Copies,
    messages: list[tuple[str, bytes]],
    filed: list[Filed | BaseException],
) -> None:
    """Each request was told the UID of its own copy, not a neighbour's."""
    for (mid, _), f in zip(messages, filed, strict=True):
        assert isinstance(f, Filed), f
        assert sent[f.uid][0] == mid


async def test_a_burst_is_filed_once_each_under_the_uid_each_request_is_told(
    env: Env, filer: SentFiler, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = env.mail_user("filing")
    account = env.account(user)
    messages = [message(n) for n in range(12)]
    carried = count_appends(monkeypatch)
    filed = await file_together(filer, account, messages)
    assert all(isinstance(f, Filed) and f.appended for f in filed), filed
    sent = await sent_folder(env, user)
    # Each message once, read (the user wrote it), dated when it was sent.
    assert sorted(mid for mid, _, _ in sent.values()) == sorted(mid for mid, _ in messages)
    assert all("\\Seen" in flags and when == SENT_AT for _, flags, when in sent.values())
    assert_told_their_own(sent, messages, filed)
    # The first went alone; the eleven that came meanwhile in one APPEND (MULTIAPPEND).
    assert sum(carried) == 12 and max(carried) > 1 and len(carried) < 12, carried


async def test_a_copy_already_in_sent_is_found_and_only_the_others_are_appended(
    env: Env, filer: SentFiler
) -> None:
    """After a crash between APPEND and the ledger's write, or on a server that files
    sent mail itself: the copy there is the request's, and no second one is made."""
    user = env.mail_user("filingfound")
    account = env.account(user)
    messages = [message(n) for n in range(6)]
    env.dovecot.save(user.address, "Sent", messages[3][1])
    filed = await file_together(filer, account, messages)
    sent = await sent_folder(env, user)
    assert sorted(mid for mid, _, _ in sent.values()) == sorted(mid for mid, _ in messages)
    assert_told_their_own(sent, messages, filed)
    assert [isinstance(f, Filed) and f.appended for f in filed] == [True] * 3 + [False] + [True] * 2


async def test_a_message_the_server_refuses_fails_alone(env: Env, filer: SentFiler) -> None:
    """MULTIAPPEND is all or nothing (RFC 3502): one message Dovecot will not take (an
    empty one) must not keep the rest of the batch out of Sent."""
    user = env.mail_user("filingrefused")
    account = env.account(user)
    messages = [message(n) for n in range(6)]
    messages[4] = (messages[4][0], b"")
    filed = await file_together(filer, account, messages)
    refused = filed.pop(4)
    assert isinstance(refused, FilingFailed) and "APPEND refused" in str(refused)
    del messages[4]
    sent = await sent_folder(env, user)
    assert sorted(mid for mid, _, _ in sent.values()) == sorted(mid for mid, _ in messages)
    assert_told_their_own(sent, messages, filed)


async def test_a_server_without_multiappend_gets_one_append_each(
    env: Env, filer: SentFiler, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = env.mail_user("filinglean")
    account = env.account(user, imap=env.lean_imap(user))
    messages = [message(n) for n in range(5)]
    carried = count_appends(monkeypatch)
    filed = await file_together(filer, account, messages)
    sent = await sent_folder(env, user)
    assert sorted(mid for mid, _, _ in sent.values()) == sorted(mid for mid, _ in messages)
    assert_told_their_own(sent, messages, filed)
    assert carried == [1] * 5


async def test_a_batch_cut_short_leaves_no_one_waiting_and_no_copy_twice(
    env: Env, filer: SentFiler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request filing a batch is cancelled (its replica stops) mid-way: the others
    in the batch are told to try again instead of waiting for ever, and trying again
    files each once."""
    user = env.mail_user("filingcut")
    account = env.account(user)
    (first, raw_first), (mid_b, raw_b), (mid_c, raw_c) = (message(n) for n in range(3))
    appending = asyncio.Event()
    many = ImapSession.append_many

    async def stuck_once(self: ImapSession, folder: Any, messages: Any) -> Any:
        if not appending.is_set():
            appending.set()
            await asyncio.sleep(60)  # the server is slow to answer: cancelled here
        return await many(self, folder, messages)

    monkeypatch.setattr(ImapSession, "append_many", stuck_once)
    async with filer.hold(account.account_id):
        a = asyncio.create_task(filer.file(account, first, raw_first, SENT_AT))
        await asyncio.sleep(0)  # A files alone; B and C wait, then go as one batch
        b = asyncio.create_task(filer.file(account, mid_b, raw_b, SENT_AT))
        c = asyncio.create_task(filer.file(account, mid_c, raw_c, SENT_AT))
        await a
        await asyncio.wait_for(appending.wait(), 10)  # B files the batch of B and C
        b.cancel()
        done, _ = await asyncio.wait([b, c], timeout=10)
        assert c in done, "C still waits for a batch that was cut short"
        assert isinstance(c.exception(), FilingFailed)
        again = [
            await filer.file(account, m, r, SENT_AT) for m, r in ((mid_b, raw_b), (mid_c, raw_c))
        ]
    sent = await sent_folder(env, user)
    assert sorted(mid for mid, _, _ in sent.values()) == sorted([first, mid_b, mid_c])
    assert [sent[f.uid][0] for f in again] == [mid_b, mid_c]
