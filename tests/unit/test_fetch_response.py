"""UID FETCH and UID SEARCH responses, shaped as aioimaplib returns them."""

from __future__ import annotations

import datetime as dt

import pytest

from services.imap.dates import parse_internaldate
from services.imap.fetch_response import parse_fetch, parse_response, parse_search

MESSAGE = (
    b"From: anna@example.cz\r\n"
    b"To: bob@example.cz\r\n"
    b"Subject: Hello\r\n"
    b"Message-ID: <1@example.cz>\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
)
DONE = b"Fetch completed (0.001 + 0.000 secs)."


def head(seq: int, attrs: bytes, size: int) -> bytes:
    return b"%d FETCH (%s BODY[] {%d}" % (seq, attrs, size)


def test_one_message_with_attributes_before_the_literal() -> None:
    lines: list[bytes | bytearray] = [
        head(
            1,
            b'UID 1 FLAGS (\\Seen \\Recent) INTERNALDATE "23-Nov-2026 16:15:18 +0000"'
            b" RFC822.SIZE 294",
            len(MESSAGE),
        ),
        bytearray(MESSAGE),
        b")",
        DONE,
    ]
    [msg] = parse_fetch(lines)
    assert msg.uid == 1
    assert msg.body == MESSAGE
    assert isinstance(msg.body, bytes)
    assert msg.size == 294
    assert msg.flags == ("\\Seen",)
    assert msg.internaldate == dt.datetime(2026, 11, 23, 16, 15, 18, tzinfo=dt.UTC)
    assert msg.modseq is None


def test_attributes_after_the_literal() -> None:
    lines: list[bytes | bytearray] = [
        b"3 FETCH (BODY[] {%d}" % len(MESSAGE),
        bytearray(MESSAGE),
        b" UID 7 FLAGS (\\Seen))",
        DONE,
    ]
    [msg] = parse_fetch(lines)
    assert msg.uid == 7
    assert msg.flags == ("\\Seen",)
    assert msg.body == MESSAGE


def test_size_defaults_to_the_body_length() -> None:
    lines: list[bytes | bytearray] = [
        head(1, b"UID 5 FLAGS ()", len(MESSAGE)),
        bytearray(MESSAGE),
        b")",
        DONE,
    ]
    [msg] = parse_fetch(lines)
    assert msg.size == len(MESSAGE)
    assert msg.flags == ()
    assert msg.internaldate is None


def test_recent_is_dropped_and_keywords_are_kept() -> None:
    lines: list[bytes | bytearray] = [
        head(1, b"UID 2 FLAGS (\\Recent \\Answered $Forwarded \\Flagged)", len(MESSAGE)),
        bytearray(MESSAGE),
        b")",
        DONE,
    ]
    [msg] = parse_fetch(lines)
    assert msg.flags == ("\\Answered", "$Forwarded", "\\Flagged")


def test_modseq() -> None:
    lines: list[bytes | bytearray] = [
        head(1, b"UID 2 MODSEQ (12345) FLAGS (\\Seen)", len(MESSAGE)),
        bytearray(MESSAGE),
        b")",
        DONE,
    ]
    [msg] = parse_fetch(lines)
    assert msg.modseq == 12345


def test_several_messages_in_order() -> None:
    other = b"Subject: second\r\n\r\nsecond body\r\n"
    lines: list[bytes | bytearray] = [
        head(1, b"UID 10 FLAGS (\\Seen) RFC822.SIZE %d" % len(MESSAGE), len(MESSAGE)),
        bytearray(MESSAGE),
        b")",
        b"2 FETCH (BODY[] {%d}" % len(other),
        bytearray(other),
        b" UID 12 FLAGS ())",
        head(3, b"UID 13 FLAGS ()", 0),
        bytearray(b""),
        b")",
        DONE,
    ]
    messages = parse_fetch(lines)
    assert [(m.uid, m.body) for m in messages] == [(10, MESSAGE), (12, other), (13, b"")]


def test_fetch_line_without_uid_is_ignored() -> None:
    lines: list[bytes | bytearray] = [
        b"4 FETCH (FLAGS (\\Seen))",
        head(5, b"UID 20 FLAGS ()", len(MESSAGE)),
        bytearray(MESSAGE),
        b")",
        DONE,
    ]
    assert [m.uid for m in parse_fetch(lines)] == [20]


def test_body_that_looks_like_a_fetch_response_is_not_parsed_as_one() -> None:
    body = b"1 FETCH (UID 99 FLAGS (\\Seen))\r\n"
    lines: list[bytes | bytearray] = [
        head(1, b"UID 3 FLAGS ()", len(body)),
        bytearray(body),
        b")",
        DONE,
    ]
    [msg] = parse_fetch(lines)
    assert msg.uid == 3
    assert msg.body == body


def test_empty_response() -> None:
    assert parse_fetch([DONE]) == []
    assert parse_fetch([]) == []


def test_unsolicited_flags_only_fetch_is_not_a_message() -> None:
    lines: list[bytes | bytearray] = [
        head(1, b"UID 41 FLAGS ()", len(MESSAGE)),
        bytearray(MESSAGE),
        b")",
        b"9 FETCH (UID 40 FLAGS (\\Seen))",
        DONE,
    ]
    assert [m.uid for m in parse_fetch(lines)] == [41]


def test_one_streamed_response_whatever_side_its_attributes_are_on() -> None:
    """A streamed FETCH hands over one response at a time, its literal as bytes."""
    before = parse_response([head(1, b"UID 8 FLAGS (\\Seen)", len(MESSAGE)), MESSAGE, b")"])
    after = parse_response([b"2 FETCH (BODY[] {%d}" % len(MESSAGE), MESSAGE, b" UID 9)"])
    assert before is not None and (before.uid, before.flags, before.body) == (
        8,
        ("\\Seen",),
        MESSAGE,
    )
    assert after is not None and (after.uid, after.size) == (9, len(MESSAGE))
    assert before.body is MESSAGE  # the reader's bytes, not a copy of them


def test_a_streamed_response_without_a_body_or_a_uid_is_not_a_message() -> None:
    assert parse_response([b"4 FETCH (UID 40 FLAGS (\\Seen))"]) is None
    assert parse_response([b"5 FETCH (FLAGS () BODY[] {%d}" % len(MESSAGE), MESSAGE, b")"]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "23-Nov-2026 16:15:18 +0000",
            dt.datetime(2026, 11, 23, 16, 15, 18, tzinfo=dt.UTC),
        ),
        (
            " 3-Feb-2026 08:00:00 +0100",
            dt.datetime(2026, 2, 3, 7, 0, 0, tzinfo=dt.UTC),
        ),
        (
            "01-Jan-2027 00:30:00 -0500",
            dt.datetime(2027, 1, 1, 5, 30, 0, tzinfo=dt.UTC),
        ),
    ],
)
def test_parse_internaldate(text: str, expected: dt.datetime) -> None:
    parsed = parse_internaldate(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() is not None


def test_parse_internaldate_keeps_the_offset() -> None:
    parsed = parse_internaldate("23-Nov-2026 16:15:18 +0130")
    assert parsed is not None
    assert parsed.utcoffset() == dt.timedelta(hours=1, minutes=30)


def test_parse_internaldate_reads_the_month_in_any_case() -> None:
    # RFC 3501 9: date-month is a case-insensitive ABNF string.
    assert parse_internaldate("23-nov-2026 16:15:18 +0000") == parse_internaldate(
        "23-NOV-2026 16:15:18 +0000"
    )
    assert parse_internaldate("23-nov-2026 16:15:18 +0000") is not None


def test_parse_internaldate_shares_one_zone_per_offset() -> None:
    a = parse_internaldate("23-Nov-2026 16:15:18 -0330")
    b = parse_internaldate("24-Nov-2026 01:02:03 -0330")
    assert a is not None and b is not None
    assert a.tzinfo is b.tzinfo
    assert a.utcoffset() == -dt.timedelta(hours=3, minutes=30)


def test_parse_internaldate_falls_back_for_a_loose_form() -> None:
    """Not the strict date-time (trailing space, one-digit day without its SP): the
    lenient parser still reads it."""
    expected = dt.datetime(2026, 2, 3, 8, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert parse_internaldate("3-Feb-2026 08:00:00 +0100 ") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "23-Foo-2026 16:15:18 +0000",
        "x-y-z",
        "30-Feb-2026 08:00:00 +0100",  # strict form, no such day
        "23-Nov-2026 25:15:18 +0000",  # strict form, no such hour
    ],
)
def test_parse_internaldate_rejects_garbage(text: str) -> None:
    assert parse_internaldate(text) is None


def test_parse_search_uids() -> None:
    assert parse_search([b"1 2 3", b"Search completed (0.001 + 0.000 secs)."]) == [1, 2, 3]


def test_parse_search_with_the_keyword_kept() -> None:
    assert parse_search([b"SEARCH 4 8", b"Search completed."]) == [4, 8]


def test_parse_search_over_several_lines_and_bytearrays() -> None:
    lines: list[bytes | bytearray] = [b"1 2", bytearray(b"5"), b"Search completed."]
    assert parse_search(lines) == [1, 2, 5]


@pytest.mark.parametrize(
    "lines",
    [
        [b"Search completed (0.001 + 0.000 secs)."],
        [b"", b"Search completed."],
        [b"SEARCH", b"Search completed."],
        [],
    ],
)
def test_parse_search_empty(lines: list[bytes | bytearray]) -> None:
    assert parse_search(lines) == []


def test_parse_search_ignores_other_untagged_lines() -> None:
    lines: list[bytes | bytearray] = [b"3 EXISTS", b"7 9", b"Search completed."]
    assert parse_search(lines) == [7, 9]
