"""LIST-STATUS (RFC 5819) against Dovecot: one command gives what STATUS gives for each
folder asked, and leaves out what it cannot answer for (issue #16)."""

from __future__ import annotations

import ssl

import pytest

from schemas.account import Endpoint, Security
from schemas.common import FolderRole
from services.imap import Folder, ImapSession
from tests.fixtures.imap_writes import record_writes
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MESSAGE = b"From: a@example.net\r\nSubject: x\r\nMessage-ID: <ls@example.net>\r\n\r\nhi\r\n"


async def test_list_status_answers_as_status_does_for_every_folder_asked(env: Env) -> None:
    user = env.mail_user("liststatus")
    env.dovecot.create_folder(user.address, "Odeslaná pošta")  # mUTF-7 on the wire
    env.dovecot.create_folder(user.address, "Doomed")
    env.dovecot.deliver(user.address, MESSAGE)
    env.dovecot.save(user.address, "Odeslaná pošta", MESSAGE)
    assert env.dovecot.cert is not None
    endpoint = Endpoint(
        host="127.0.0.1", port=env.dovecot.imaps_port, security=Security.TLS, username=user.address
    )
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        assert imap.has("LIST-STATUS")
        by_name = {f.name: f for f in await imap.list_folders()}
        asked = [by_name[n] for n in ("INBOX", "Sent", "Odeslaná pošta", "Doomed")]
        env.dovecot.doveadm("mailbox", "delete", "-u", user.address, "Doomed")

        got = await imap.list_status(asked)
        assert set(got) == {"INBOX", "Sent", "Odeslaná pošta"}  # not the deleted one
        for f in asked[:3]:
            assert got[f.name] == await imap.status(f)
        assert got["INBOX"].exists == 1 and got["INBOX"].highestmodseq is not None

        # The selected folder is left to STATUS, which EXAMINEs it afresh.
        await imap.examine(by_name["INBOX"])
        assert set(await imap.list_status(asked)) == {"Sent", "Odeslaná pošta"}


async def test_chosen_folders_are_listed_with_their_status_in_one_command(env: Env) -> None:
    user = env.mail_user("listchosen")
    env.dovecot.create_folder(user.address, "Odeslaná pošta")
    env.dovecot.deliver(user.address, MESSAGE)
    assert env.dovecot.cert is not None
    endpoint = Endpoint(
        host="127.0.0.1", port=env.dovecot.imaps_port, security=Security.TLS, username=user.address
    )
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
        sent = record_writes(imap)
        chosen = await imap.list_chosen(["inbox", "Sent", "Odeslaná pošta"])
        assert chosen is not None and len(sent) == 1  # one write: ENABLE and the LIST
        listed = {f.name: f for f in await imap.list_folders()}

        def seen(f: Folder) -> tuple[str, str, FolderRole, bool]:
            return f.name, f.wire_name, f.role, f.selectable

        # As LIST "*" shows them, roles too (RETURN (SPECIAL-USE)), in the server's order.
        assert sorted(map(seen, chosen.folders)) == sorted(
            seen(listed[n]) for n in ("INBOX", "Sent", "Odeslaná pošta")
        )
        assert {f.role for f in chosen.folders} == {FolderRole.INBOX, FolderRole.SENT}
        for f in chosen.folders:
            assert chosen.status[f.name] == await imap.status(f)
        assert chosen.status["INBOX"].exists == 1

        # A chosen folder the server does not list: the caller lists every folder.
        assert await imap.list_chosen(["INBOX", "Deleted meanwhile"]) is None
