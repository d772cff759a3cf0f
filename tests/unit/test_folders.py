"""LIST lines, as aioimaplib returns them (without ``* LIST``), to folders."""

from __future__ import annotations

import pytest

from schemas.common import FolderRole
from services.imap.folders import parse_list, parse_list_line, quote, with_sent_folder


def test_sent_folder_by_special_use_flag() -> None:
    folder = parse_list_line(b'(\\HasNoChildren \\Sent) "/" Sent')
    assert folder is not None
    assert folder.name == "Sent"
    assert folder.wire_name == "Sent"
    assert folder.role is FolderRole.SENT
    assert folder.flags == frozenset({"\\hasnochildren", "\\sent"})
    assert folder.selectable


def test_noselect_folder_is_not_selectable() -> None:
    folder = parse_list_line(b'(\\Noselect \\HasChildren) "/" Projekty')
    assert folder is not None
    assert folder.name == "Projekty"
    assert folder.role is FolderRole.OTHER
    assert not folder.selectable


def test_nonexistent_folder_is_not_selectable() -> None:
    folder = parse_list_line(b'(\\NonExistent \\HasChildren) "/" Old')
    assert folder is not None
    assert not folder.selectable


def test_quoted_name_is_decoded_from_modified_utf7() -> None:
    folder = parse_list_line(b'(\\HasNoChildren) "/" "Odeslan&AOE- po&AWE-ta"')
    assert folder is not None
    assert folder.name == "Odeslaná pošta"
    assert folder.wire_name == "Odeslan&AOE- po&AWE-ta"
    assert folder.role is FolderRole.OTHER


def test_hierarchical_name_keeps_its_delimiter() -> None:
    folder = parse_list_line(b'(\\HasNoChildren) "/" "Projekty/&AQw-e&AWE-tina"')
    assert folder is not None
    assert folder.name == "Projekty/Čeština"


def test_quoted_name_with_escaped_quote_and_backslash() -> None:
    folder = parse_list_line(b'(\\HasNoChildren) "/" "say \\"hi\\" \\\\o/"')
    assert folder is not None
    assert folder.wire_name == 'say "hi" \\o/'
    assert folder.name == 'say "hi" \\o/'


@pytest.mark.parametrize("name", [b"INBOX", b"inbox", b'"Inbox"'])
def test_inbox_is_recognised_case_insensitively(name: bytes) -> None:
    folder = parse_list_line(b'(\\HasNoChildren) "/" ' + name)
    assert folder is not None
    assert folder.role is FolderRole.INBOX
    assert folder.name == "INBOX"


def test_inbox_role_wins_over_a_special_use_flag() -> None:
    folder = parse_list_line(b'(\\HasNoChildren \\Sent) "/" INBOX')
    assert folder is not None
    assert folder.role is FolderRole.INBOX


def test_nil_delimiter() -> None:
    folder = parse_list_line(b"(\\Noinferiors) NIL INBOX")
    assert folder is not None
    assert folder.role is FolderRole.INBOX


def test_subfolder_of_inbox_is_not_the_inbox() -> None:
    folder = parse_list_line(b'(\\HasNoChildren) "." INBOX.Archiv')
    assert folder is not None
    assert folder.name == "INBOX.Archiv"
    assert folder.role is FolderRole.OTHER


@pytest.mark.parametrize(
    ("flag", "role"),
    [
        (b"\\Sent", FolderRole.SENT),
        (b"\\Trash", FolderRole.TRASH),
        (b"\\Junk", FolderRole.JUNK),
        (b"\\Drafts", FolderRole.DRAFTS),
        (b"\\Archive", FolderRole.ARCHIVE),
        (b"\\All", FolderRole.ARCHIVE),
        (b"\\Flagged", FolderRole.OTHER),
        (b"\\SENT", FolderRole.SENT),
    ],
)
def test_special_use_roles(flag: bytes, role: FolderRole) -> None:
    folder = parse_list_line(b"(\\HasNoChildren " + flag + b') "/" Folder')
    assert folder is not None
    assert folder.role is role


def test_no_flags_at_all() -> None:
    folder = parse_list_line(b'() "/" Plain')
    assert folder is not None
    assert folder.flags == frozenset()
    assert folder.role is FolderRole.OTHER
    assert folder.selectable


@pytest.mark.parametrize(
    "line", [b"List completed (0.001 + 0.000 secs).", b"", b"LIST garbage", b'(\\Sent) "/"']
)
def test_lines_that_are_not_list_responses(line: bytes) -> None:
    assert parse_list_line(line) is None


def test_parse_list_skips_the_completion_line_and_keeps_order() -> None:
    lines: list[bytes] = [
        b'(\\HasNoChildren) "/" INBOX',
        b'(\\HasNoChildren \\Sent) "/" Sent',
        # aioimaplib hands some lines over as bytearray
        bytearray(b'(\\HasNoChildren \\Trash) "/" "Ko&AWE-"'),  # type: ignore[list-item]
        b'(\\HasNoChildren \\All) "/" "All Mail"',
        b"List completed (0.001 + 0.000 secs).",
    ]
    folders = parse_list(lines)
    assert [(f.name, f.role) for f in folders] == [
        ("INBOX", FolderRole.INBOX),
        ("Sent", FolderRole.SENT),
        ("Koš", FolderRole.TRASH),
        ("All Mail", FolderRole.ARCHIVE),
    ]


def test_parse_list_of_nothing() -> None:
    assert parse_list([b"List completed."]) == []


@pytest.mark.parametrize(
    ("wire", "quoted"),
    [
        ("Sent", '"Sent"'),
        ("Odeslan&AOE- po&AWE-ta", '"Odeslan&AOE- po&AWE-ta"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("", '""'),
    ],
)
def test_quote(wire: str, quoted: str) -> None:
    assert quote(wire) == quoted


def test_the_configured_sent_folder_is_sent_whatever_the_server_flags() -> None:
    listed = parse_list(
        [b'(\\HasNoChildren) "/" "Odeslan&AOk-"', b'(\\HasNoChildren) "/" INBOX', b'() "/" Other']
    )
    assert {f.name: f.role for f in listed}["Odeslané"] is FolderRole.OTHER  # no \\Sent
    roles = {f.name: f.role for f in with_sent_folder(listed, "Odeslané")}
    assert roles == {
        "Odeslané": FolderRole.SENT,
        "INBOX": FolderRole.INBOX,
        "Other": FolderRole.OTHER,
    }
    assert with_sent_folder(listed, None) == listed
    assert with_sent_folder(listed, "INBOX") == listed  # INBOX stays INBOX (RFC 3501 5.1)
