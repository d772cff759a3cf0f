"""NOTIFY (RFC 5465): the request, and reading what the server pushes during IDLE."""

from __future__ import annotations

from schemas.common import FolderRole
from services.imap import Folder
from services.imap.commands.idle import IdleNews, _read
from services.imap.commands.notify import notify_request
from services.imap.folder_status import parse_status, status_mailbox


def folder(name: str, wire: str | None = None) -> Folder:
    return Folder(name=name, wire_name=wire or name, flags=frozenset(), role=FolderRole.OTHER)


def test_the_request_names_the_other_folders_quoted() -> None:
    request = notify_request([folder("Sent"), folder("Odeslané", "Odeslan&AOk-"), folder('a"b')])
    assert request == (
        "SET (selected (MessageNew MessageExpunge FlagChange)) "
        '(mailboxes ("Sent" "Odeslan&AOk-" "a\\"b") '
        "(MessageNew MessageExpunge FlagChange MailboxName))"
    )
    assert notify_request([]) == "SET (selected (MessageNew MessageExpunge FlagChange))"


def test_a_status_line_names_its_mailbox_quoted_or_not() -> None:
    assert status_mailbox(b"STATUS Sent (MESSAGES 1 UIDNEXT 2)") == "Sent"
    assert status_mailbox(b'STATUS "Sent Items" (MESSAGES 1)') == "Sent Items"
    assert status_mailbox(b'STATUS "a\\"b" (MESSAGES 1)') == 'a"b'
    assert status_mailbox(b"OK Still here") is None


def test_status_keeps_to_the_folder_asked_when_another_is_pushed() -> None:
    lines: list[bytes | bytearray] = [
        b"STATUS Sent (MESSAGES 7 UIDNEXT 8 HIGHESTMODSEQ 3)",  # a NOTIFY push
        b'STATUS "Archive" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 9)',
        b"Status completed (0.001 + 0.000 secs).",
    ]
    assert parse_status(lines, "Archive") == {"MESSAGES": 2, "UIDNEXT": 3, "UIDVALIDITY": 9}


def test_what_ends_an_idle() -> None:
    assert _read([b"OK Still here"]) == IdleNews()
    assert _read([b"3 EXISTS", b"1 RECENT"]) == IdleNews(selected=True)
    assert _read([b"STATUS Sent (HIGHESTMODSEQ 3)"]) == IdleNews(mailboxes=frozenset({"Sent"}))
    renamed = _read([b'LIST (\\NonExistent) "/" Sent', b'LIST () "/" Sent'])
    assert renamed.renamed and renamed.changed
    assert not IdleNews(woken=True).changed
