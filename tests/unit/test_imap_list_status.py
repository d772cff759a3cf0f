"""LIST-STATUS (RFC 5819, RFC 5258 patterns): the request, and reading its answer."""

from __future__ import annotations

from schemas.common import FolderRole
from services.imap import Folder, FolderStatus
from services.imap.commands.list_status import (
    list_status_request,
    named,
    parse_list_status,
    parse_listed,
)


def folder(name: str, wire: str | None = None) -> Folder:
    return Folder(name=name, wire_name=wire or name, flags=frozenset(), role=FolderRole.OTHER)


def test_the_request_quotes_every_folder_and_asks_modseq_only_with_condstore() -> None:
    folders = [folder("INBOX"), folder("Odeslané", "Odeslan&AOk-"), folder('a"b')]
    assert list_status_request(folders, condstore=True) == (
        '"" ("INBOX" "Odeslan&AOk-" "a\\"b") '
        "RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"
    )
    assert list_status_request(folders[:1], condstore=False) == (
        '"" ("INBOX") RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY))'
    )


def test_the_answer_gives_each_folder_asked_its_status_by_decoded_name() -> None:
    lines: list[bytes | bytearray] = [
        b'LIST (\\HasNoChildren) "/" INBOX',
        b"STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 7 HIGHESTMODSEQ 9)",
        b'LIST (\\HasNoChildren \\Sent) "/" "Odeslan&AOk-"',
        b'STATUS "Odeslan&AOk-" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 8)',
        b"List completed (0.001 + 0.000 secs).",
    ]
    got = parse_list_status(lines, [folder("INBOX"), folder("Odeslané", "Odeslan&AOk-")])
    assert got == {
        "INBOX": FolderStatus(uidvalidity=7, uidnext=4, exists=3, highestmodseq=9),
        "Odeslané": FolderStatus(uidvalidity=8, uidnext=1, exists=0),
    }


def test_status_of_folders_not_asked_about_is_ignored() -> None:
    lines: list[bytes | bytearray] = [
        b"STATUS Archive (MESSAGES 5 UIDNEXT 6 UIDVALIDITY 2)",  # a NOTIFY push
        b'LIST () "/" "a*b"',
        b'STATUS "a*b" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 3)',
        b'LIST () "/" "axxb"',  # the pattern's other match
        b'STATUS "axxb" (MESSAGES 9 UIDNEXT 10 UIDVALIDITY 11)',
    ]
    got = parse_list_status(lines, [folder("a*b"), folder("Sent")])
    assert got == {"a*b": FolderStatus(uidvalidity=3, uidnext=2, exists=1)}


def test_a_folder_missing_from_the_answer_is_missing_from_the_result() -> None:
    # Deleted since it was listed: no LIST line, no STATUS; a STATUS without
    # UIDVALIDITY cannot be compared with a cursor and is left to STATUS too.
    lines: list[bytes | bytearray] = [
        b'LIST () "/" Sent',
        b"STATUS Sent (MESSAGES 1 UIDNEXT 2)",
        b'LIST () "/" "MESSAGES 4"',  # a LIST line is never read as STATUS items
        b"List completed.",
    ]
    assert parse_list_status(lines, [folder("Sent"), folder("Gone"), folder("MESSAGES 4")]) == {}


def test_folders_known_by_name_are_asked_with_their_roles_in_modified_utf7() -> None:
    asked = named(["inbox", "Odeslané", "INBOX"])
    assert [(f.name, f.wire_name) for f in asked] == [
        ("INBOX", "INBOX"),
        ("Odeslané", "Odeslan&AOk-"),
    ]
    assert list_status_request(asked, condstore=True, special_use=True) == (
        '"" ("INBOX" "Odeslan&AOk-") '
        "RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"
    )


def test_the_answer_lists_the_folders_with_their_roles() -> None:
    lines: list[bytes | bytearray] = [
        b'LIST (\\HasNoChildren) "/" INBOX',
        b"STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 7)",
        b'LIST (\\HasNoChildren \\Sent) "/" "Odeslan&AOk-"',
        b'STATUS "Odeslan&AOk-" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 8)',
        b"List completed (0.001 + 0.000 secs).",
    ]
    assert [(f.name, f.role) for f in parse_listed(lines)] == [
        ("INBOX", FolderRole.INBOX),
        ("Odeslané", FolderRole.SENT),
    ]
