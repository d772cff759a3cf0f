"""Fingerprints and activity ids."""

from __future__ import annotations

import re

import pytest

from services.dedup.fingerprint import activity_id, fingerprint, normalise_message_id
from services.dedup.headers import parse_headers


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


def test_fingerprint_without_message_id_is_a_hash() -> None:
    fp = fingerprint(parse_headers(headers()), b"Hello")
    assert re.fullmatch(r"hash:[0-9a-f]{64}", fp)


def test_placeholder_message_id_falls_back_to_the_hash() -> None:
    assert fingerprint(parse_headers(headers(message_id="<>")), b"x").startswith("hash:")


def test_hash_is_stable_under_body_whitespace_changes() -> None:
    h = parse_headers(headers())
    a = fingerprint(h, b"Hello  world,\r\n\r\nbye\r\n")
    b = fingerprint(h, b"  Hello world,\n bye")
    c = fingerprint(h, b"Hello\tworld,\r\n\tbye\n\n\n")
    assert a == b == c


def test_hash_differs_for_different_subjects() -> None:
    a = fingerprint(parse_headers(headers(subject="Invoice 1")), b"same body")
    b = fingerprint(parse_headers(headers(subject="Invoice 2")), b"same body")
    assert a != b


def test_hash_differs_for_different_bodies() -> None:
    h = parse_headers(headers())
    assert fingerprint(h, b"one") != fingerprint(h, b"two")


def test_hash_differs_for_different_dates() -> None:
    a = fingerprint(parse_headers(headers(date="Mon, 23 Nov 2026 16:15:18 +0000")), b"x")
    b = fingerprint(parse_headers(headers(date="Mon, 23 Nov 2026 16:15:19 +0000")), b"x")
    assert a != b


def test_hash_ignores_the_order_of_recipients() -> None:
    a = fingerprint(parse_headers(headers(to="a@x.cz, b@x.cz")), b"x")
    b = fingerprint(parse_headers(headers(to="b@x.cz, a@x.cz")), b"x")
    assert a == b


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
