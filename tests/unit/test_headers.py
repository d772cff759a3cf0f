"""Header blocks parsed once and tolerantly."""

from __future__ import annotations

import pytest

from services.mail.headers import parse_headers, split
from services.rfc2047 import decode_words

CZECH = "Příliš žluťoučký kůň"


def message(*headers: str, body: str = "Body\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("ascii")


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("=?utf-8?Q?P=C5=99=C3=ADli=C5=A1_=C5=BElu=C5=A5ou=C4=8Dk=C3=BD_k=C5=AF=C5=88?=", CZECH),
        ("=?UTF-8?B?UMWZw61sacWhIMW+bHXFpW91xI1rw70ga8WvxYg=?=", CZECH),
        ("=?iso-8859-2?Q?P=F8=EDli=B9_=BElu=BBou=E8k=FD_k=F9=F2?=", CZECH),
        ("=?windows-1250?Q?P=F8=EDli=9A_=9Elu=9Dou=E8k=FD_k=F9=F2?=", CZECH),
        ("=?KOI8-R?B?8NLJ18XULCDNydI=?=", "Привет, мир"),
        ("=?ISO-2022-JP?B?GyRCMnE1RCRONUQ7dk8/GyhC?=", "会議の議事録"),
        ("=?utf-8?q?Re=3A_caf=C3=A9?=", "Re: café"),
        ("Plain ASCII subject", "Plain ASCII subject"),
    ],
)
def test_subject_in_encoded_words(encoded: str, decoded: str) -> None:
    assert parse_headers(message(f"Subject: {encoded}")).subject == decoded


def test_mixed_plain_and_encoded_words() -> None:
    subject = parse_headers(message("Subject: Re: =?utf-8?q?caf=C3=A9?= ok")).subject
    assert subject == "Re: café ok"


def test_adjacent_encoded_words_join_without_the_space_between_them() -> None:
    """RFC 2047 6.2: whitespace between adjacent encoded words is not displayed."""
    subject = parse_headers(message("Subject: =?utf-8?q?K=C5=AF?= =?utf-8?q?=C5=88?=")).subject
    assert subject == "Kůň"


def test_folded_subject_is_unfolded() -> None:
    raw = message("Subject: =?utf-8?q?P=C5=99=C3=ADli=C5=A1?=\r\n =?utf-8?q?_dlouh=C3=BD?= text")
    assert parse_headers(raw).subject == "Příliš dlouhý text"


def test_unknown_charset_degrades_without_raising() -> None:
    subject = parse_headers(message("Subject: =?x-no-such-charset?Q?caf=C3=A9?=")).subject
    assert subject == "café"


def test_unknown_charset_with_bytes_that_are_not_utf8() -> None:
    subject = parse_headers(message("Subject: =?x-no-such-charset?Q?caf=E9?=")).subject
    assert subject.startswith("caf") and len(subject) == 4


def test_malformed_encoded_word_does_not_raise() -> None:
    headers = parse_headers(message("Subject: =?utf-8?B?not base64 at all?="))
    assert isinstance(headers.subject, str)


def test_decode_words_of_nothing() -> None:
    assert decode_words(None) == ""
    assert decode_words("") == ""


def test_raw_utf8_headers() -> None:
    raw = "Subject: Café ☕\r\nFrom: Jiří <jiri@example.cz>\r\n\r\nbody".encode()
    headers = parse_headers(raw)
    assert headers.subject == "Café ☕"
    assert headers.from_ == (("Jiří", "jiri@example.cz"),)


def test_full_header_block() -> None:
    raw = message(
        "Message-ID: <abc.123@Mail.Example.COM>",
        "From: =?utf-8?b?SmnFmcOtIE5vdsOhaw==?= <Jiri.Novak@Example.CZ>",
        "To: Anna <anna@example.cz>, bob@example.cz",
        'Cc: "Dave, D." <dave@example.cz>',
        "Date: Mon, 23 Nov 2026 16:15:18 +0000",
        "In-Reply-To: <parent@example.cz>",
        "References: <root@example.cz>\r\n <parent@example.cz>",
    )
    headers = parse_headers(raw)
    assert headers.message_id == "abc.123@Mail.Example.COM"
    assert headers.from_ == (("Jiří Novák", "jiri.novak@example.cz"),)
    assert headers.to == (("Anna", "anna@example.cz"), ("", "bob@example.cz"))
    assert headers.cc == (("Dave, D.", "dave@example.cz"),)
    assert headers.date == "Mon, 23 Nov 2026 16:15:18 +0000"
    assert headers.in_reply_to == "parent@example.cz"
    assert headers.references == ("root@example.cz", "parent@example.cz")


def test_missing_headers_give_empty_fields() -> None:
    headers = parse_headers(message("X-Mailer: nothing useful"))
    assert headers.message_id is None
    assert headers.subject == ""
    assert headers.from_ == ()
    assert headers.to == ()
    assert headers.cc == ()
    assert headers.delivered_to == ()
    assert headers.x_original_to == ()
    assert headers.date is None
    assert headers.in_reply_to is None
    assert headers.references == ()


@pytest.mark.parametrize("raw", [b"", b"no colon here\r\n\r\nbody", b"\r\n\r\nonly a body"])
def test_degenerate_messages_do_not_raise(raw: bytes) -> None:
    headers = parse_headers(raw)
    assert headers.from_ == ()
    assert headers.message_id is None


def test_repeated_to_headers_are_all_kept() -> None:
    raw = message("To: anna@example.cz", "To: Bob <bob@example.cz>, carol@example.cz")
    assert [a for _, a in parse_headers(raw).to] == [
        "anna@example.cz",
        "bob@example.cz",
        "carol@example.cz",
    ]


def test_delivery_headers_are_lowercased_and_repeatable() -> None:
    raw = message(
        "Delivered-To: Info@Firma.CZ",
        "Delivered-To: <Archive@Firma.cz>",
        "X-Original-To: Sales@Firma.CZ",
    )
    headers = parse_headers(raw)
    assert headers.delivered_to == ("info@firma.cz", "archive@firma.cz")
    assert headers.x_original_to == ("sales@firma.cz",)


def test_addresses_without_at_sign_are_dropped() -> None:
    raw = message("To: undisclosed-recipients:;", "Cc: postmaster, real@example.cz")
    headers = parse_headers(raw)
    assert headers.to == ()
    assert [a for _, a in headers.cc] == ["real@example.cz"]


def test_message_id_without_angle_brackets() -> None:
    assert parse_headers(message("Message-ID: bare-id@example.cz")).message_id == (
        "bare-id@example.cz"
    )


def test_message_id_with_a_comment() -> None:
    raw = message("Message-ID: <id-1@example.cz> (generated by a mailer)")
    assert parse_headers(raw).message_id == "id-1@example.cz"


def test_only_the_header_block_is_read() -> None:
    raw = message("Subject: top", body="Subject: not a header\r\nTo: x@example.cz\r\n")
    headers = parse_headers(raw)
    assert headers.subject == "top"
    assert headers.to == ()


def test_lf_only_message() -> None:
    raw = b"Subject: =?utf-8?q?Ko=C5=A1?=\nTo: a@example.cz\n\nbody\n"
    headers = parse_headers(raw)
    assert headers.subject == "Koš"
    assert [a for _, a in headers.to] == ["a@example.cz"]


@pytest.mark.parametrize(
    ("raw", "head", "body"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", b"A: 1\r\nB: 2", b"body\r\n\r\nmore"),
        (b"A: 1\nB: 2\n\nbody\n\nmore", b"A: 1\nB: 2", b"body\n\nmore"),
        (b"A: 1\r\n", b"A: 1\r\n", b""),
        (b"A: 1\r\n\r\n", b"A: 1", b""),
        (b"", b"", b""),
    ],
)
def test_split(raw: bytes, head: bytes, body: bytes) -> None:
    assert split(raw) == (head, body)
