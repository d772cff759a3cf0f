"""Commands deferred to go out with the session's next command, in one write (pipelining,
RFC 3501 5.5; issue #16: a round trip fewer each): against Dovecot, ENABLE CONDSTORE is
in force before that command runs and its refusal fails that command; NOTIFY is set
before it runs, and its refusal is only reported."""

from __future__ import annotations

import asyncio
import ssl

import aioimaplib
import pytest

from schemas.account import Endpoint, Security
from services.imap import Folder, FolderError, FolderStatus, ImapSession, ImapUnavailable
from tests.fixtures.imap_writes import record_writes
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MESSAGE = b"From: a@example.net\r\nSubject: x\r\nMessage-ID: <de@example.net>\r\n\r\nhi\r\n"


def _endpoint(env: Env, address: str) -> tuple[Endpoint, ssl.SSLContext]:
    assert env.dovecot.cert is not None
    endpoint = Endpoint(
        host="127.0.0.1", port=env.dovecot.imaps_port, security=Security.TLS, username=address
    )
    return endpoint, ssl.create_default_context(cafile=str(env.dovecot.cert.cert))


async def test_condstore_is_enabled_with_the_next_command(env: Env) -> None:
    user = env.mail_user("deferredenable")
    env.dovecot.deliver(user.address, MESSAGE)
    endpoint, tls = _endpoint(env, user.address)
    # EXAMINE first (a second import connection's first command): it reports
    # HIGHESTMODSEQ only where CONDSTORE was enabled before it ran (RFC 7162 3.1).
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        assert imap.has("CONDSTORE")
        sent = record_writes(imap)
        inbox = next(f for f in await imap.list_folders() if f.name == "INBOX")
        assert len(sent) == 1 and b"ENABLE CONDSTORE\r\n" in sent[0] and b"LIST" in sent[0]
        status = await imap.examine(inbox)
        assert status.exists == 1 and status.highestmodseq is not None
        assert not imap.client.protocol._ahead  # answered


async def test_a_refused_deferred_command_fails_the_one_it_went_with(env: Env) -> None:
    user = env.mail_user("deferredrefused")
    endpoint, tls = _endpoint(env, user.address)
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        protocol = imap.client.protocol
        sent = next(f for f in await imap.list_folders() if f.name == "Sent")
        # A command the server does not know: BAD.
        protocol.defer(aioimaplib.Command("XNONSENSE", protocol.new_tag(), loop=protocol.loop))
        with pytest.raises(ImapUnavailable, match="XNONSENSE failed: BAD"):
            await imap.status(sent)


async def test_notify_goes_with_the_examine_and_its_refusal_is_only_reported(env: Env) -> None:
    user = env.mail_user("deferrednotify")
    endpoint, tls = _endpoint(env, user.address)
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        by_name = {f.name: f for f in await imap.list_folders()}
        agreed = imap.defer_notify([by_name["Sent"]])
        assert not agreed.done()
        await imap.examine(by_name["INBOX"])
        assert agreed.done() and agreed.result() is None
        env.dovecot.save(user.address, "Sent", MESSAGE)  # pushed during IDLE (RFC 5465)
        news = await imap.idle_until(10)
        assert news.mailboxes == {"Sent"}

        # A refusal is what the server said; the command it went with goes on.
        protocol = imap.client.protocol
        refused: list[tuple[str, str]] = []
        protocol.defer(
            aioimaplib.Command("NOTIFY", protocol.new_tag(), "SET (nonsense)", loop=protocol.loop),
            lambda result, text: refused.append((result, text)),
        )
        status = await imap.examine(by_name["INBOX"])
        assert status.uidvalidity > 0
        assert len(refused) == 1 and refused[0][0] in ("BAD", "NO")


async def test_examine_and_idle_go_in_one_write_and_new_mail_ends_the_idle(env: Env) -> None:
    user = env.mail_user("examineidle")
    endpoint, tls = _endpoint(env, user.address)
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        inbox = next(f for f in await imap.list_folders() if f.name == "INBOX")
        looked = await imap.status(inbox)
        sent = record_writes(imap)
        seen: list[FolderStatus] = []

        def arrived(status: FolderStatus) -> bool:
            seen.append(status)
            return status.uidnext > looked.uidnext

        # Nothing new: it waits in IDLE until mail comes, and says so.
        idling = asyncio.ensure_future(imap.examine_and_idle(inbox, 20, arrived=arrived))
        await asyncio.sleep(1.0)
        assert not idling.done() and imap.selected == "INBOX"
        assert b"EXAMINE" in sent[0] and sent[0].endswith(b"IDLE\r\n")  # one write
        env.dovecot.deliver(user.address, MESSAGE)
        news = await asyncio.wait_for(idling, 15)
        assert news.selected and seen[0].exists == 0

        # Mail that came before the EXAMINE ends the IDLE at once (no push would tell).
        news = await asyncio.wait_for(imap.examine_and_idle(inbox, 20, arrived=arrived), 5)
        assert news.selected and seen[-1].exists == 1
        assert not imap.client.has_pending_idle()
        assert (await imap.status(by_name(await imap.list_folders(), "Sent"))).exists == 0


async def test_a_refused_examine_before_idle_is_the_folder_error(env: Env) -> None:
    user = env.mail_user("examineidlegone")
    env.dovecot.create_folder(user.address, "Gone")
    endpoint, tls = _endpoint(env, user.address)
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        gone = by_name(await imap.list_folders(), "Gone")
        env.dovecot.doveadm("mailbox", "delete", "-u", user.address, "Gone")
        with pytest.raises(FolderError, match="EXAMINE refused"):
            await asyncio.wait_for(imap.examine_and_idle(gone, 20, arrived=lambda s: False), 10)
        assert imap.selected is None and not imap.client.has_pending_idle()
        # The session goes on.
        inbox = by_name(await imap.list_folders(), "INBOX")
        assert (await imap.examine(inbox)).uidvalidity > 0


def by_name(folders: list[Folder], name: str) -> Folder:
    return next(f for f in folders if f.name == name)
