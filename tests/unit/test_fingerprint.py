"""Fingerprints and activity ids."""

from __future__ import annotations

import random
import re

import pytest

from services.mail.headers import Headers, parse_headers
from services.mail.identity import activity_id, fingerprint, normalise_message_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<abc.123@Mail.Example.COM>", "abc.123@mail.example.com"),
        ("abc.123@mail.example.com", "abc.123@mail.example.com"),
        ("  <CaseSensitive@EXAMPLE.cz>  ", "CaseSensitive@example.cz"),
    ],
)
def test_normalise_message_id(raw: str, expected: str) -> None:
    assert normalise_message_id(raw) == expected


def test_local_part_keeps_its_case() -> None:
    assert normalise_message_id("<ABC@x.cz>") != normalise_message_id("<abc@x.cz>")


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "<>", "unknown", "<unknown>", "NULL", "none", "localhost", "<@x.cz>"]
)
def test_placeholder_message_ids_are_not_identifiers(raw: str | None) -> None:
    assert normalise_message_id(raw) is None


def headers(
    *,
    message_id: str | None = None,
    subject: str = "Quarterly report",
    to: str = "bob@example.cz",
    date: str = "Mon, 23 Nov 2026 16:15:18 +0000",
) -> bytes:
    lines = [f"Subject: {subject}", "From: anna@example.cz", f"To: {to}", f"Date: {date}"]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_fingerprint_uses_the_message_id() -> None:
    fp = fingerprint(parse_headers(headers(message_id="<X1@Example.COM>")), b"body")
    assert fp == "mid:X1@example.com"


def test_fingerprint_by_message_id_ignores_everything_else() -> None:
    a = fingerprint(parse_headers(headers(message_id="<1@x.cz>", subject="a")), b"one")
    b = fingerprint(parse_headers(headers(message_id="<1@X.CZ>", subject="b")), b"two")
    assert a == b


def message(body: bytes = b"x", **fields: str) -> tuple[Headers, bytes]:
    raw = headers(**fields) + body
    return parse_headers(raw), raw


def fp_of(body: bytes = b"x", **fields: str) -> str:
    return fingerprint(*message(body, **fields))


def test_fingerprint_without_message_id_is_a_hash() -> None:
    assert re.fullmatch(r"hash:[0-9a-f]{64}", fp_of(b"Hello"))


def test_placeholder_message_id_falls_back_to_the_hash() -> None:
    assert fp_of(message_id="<>").startswith("hash:")


def test_hash_covers_every_byte_of_the_body() -> None:
    """The whole message, not a normalised form: different bytes, different activities
    (issue 15: an empty message and random bytes shared one). This replaces the old
    rule that folded body white space."""
    a = fp_of(b"Hello  world,\r\n\r\nbye\r\n")
    b = fp_of(b"  Hello world,\n bye")
    c = fp_of(b"Hello\tworld,\r\n\tbye\n\n\n")
    assert len({a, b, c}) == 3


def test_hash_differs_for_different_subjects() -> None:
    assert fp_of(b"same body", subject="Invoice 1") != fp_of(b"same body", subject="Invoice 2")


def test_hash_differs_for_different_bodies() -> None:
    assert fp_of(b"one") != fp_of(b"two")


def test_hash_differs_for_different_dates() -> None:
    a = fp_of(date="Mon, 23 Nov 2026 16:15:18 +0000")
    b = fp_of(date="Mon, 23 Nov 2026 16:15:19 +0000")
    assert a != b


def test_an_empty_message_and_random_bytes_do_not_share_a_fingerprint() -> None:
    noise = bytes(random.Random(5).randrange(256) for _ in range(300)).replace(b"\n", b"")
    fps = {fingerprint(parse_headers(raw), raw) for raw in (b"", b"\r\n\r\n", noise)}
    assert len(fps) == 3


def test_hash_ignores_the_fields_added_on_delivery() -> None:
    """The same message delivered to two mailboxes (RFC 5321 4.4 trace fields, the
    delivery address, the mailbox's bookkeeping) is one activity."""
    _, raw = message(b"Hello")
    delivered = (
        b"Return-Path: <anna@example.cz>\r\nDelivered-To: info@example.cz\r\n"
        b"Received: from mx.example.cz by imap.example.cz;\r\n Mon, 23 Nov 2026 16:15:20 +0000\r\n"
        b"X-Spam-Status: No, score=0.1\r\n" + raw + b""
    )
    elsewhere = b"Received: from a.b by c.d; Mon, 23 Nov 2026 16:15:21 +0000\r\n" + raw
    fps = {fingerprint(parse_headers(r), r) for r in (raw, delivered, elsewhere)}
    assert len(fps) == 1


def test_activity_id_is_deterministic_and_url_safe() -> None:
    a = activity_id("mid:X1@example.com")
    assert a == activity_id("mid:X1@example.com")
    assert re.fullmatch(r"[0-9a-f]{32}", a)


def test_activity_ids_differ_per_fingerprint() -> None:
    assert activity_id("mid:1@x.cz") != activity_id("mid:2@x.cz")


def test_activity_id_known_value() -> None:
    """Ids are stored in MongoDB: a change of derivation would orphan every activity."""
    assert activity_id("mid:1@x.cz") == "f428b921d3f0b08a508bb6719d567c6a"


def test_forwarded_copy_with_a_rewritten_message_id_keeps_the_original_fingerprint() -> None:
    original = parse_headers(b"Message-ID: <orig-1@shop.example>\r\nSubject: Order\r\n\r\nx")
    forwarded = parse_headers(
        b"Message-ID: <rewritten-77@relay.example>\r\n"
        b"X-Original-Message-ID: <orig-1@shop.example>\r\nSubject: Order\r\n\r\nx"
    )
    assert fingerprint(forwarded, b"x") == fingerprint(original, b"x") == "mid:orig-1@shop.example"
