"""Fingerprints, for any header values and bodies."""

from __future__ import annotations

import base64
import re

from hypothesis import assume, given
from hypothesis import strategies as st

from services.mail.headers import Headers, parse_headers
from services.mail.identity import activity_id, fingerprint, normalise_message_id
from tests.property.strategies import FAST

# Words hold any byte but ASCII whitespace, which is what the body normalisation folds.
word = st.lists(
    st.integers(min_value=0, max_value=255).filter(lambda b: b not in b" \t\r\n\f\v"),
    min_size=1,
    max_size=8,
).map(bytes)
whitespace = st.text(alphabet=" \t\r\n", min_size=1, max_size=4).map(str.encode)


def headers(subject: str, message_id: str | None = None) -> Headers:
    return Headers(
        message_id=message_id,
        subject=subject,
        from_=(("Anna", "anna@example.cz"),),
        to=(("", "bob@example.cz"),),
        cc=(),
        delivered_to=(),
        x_original_to=(),
        date="Mon, 23 Nov 2026 16:15:18 +0000",
        in_reply_to=None,
        references=(),
    )


def message(subject: str, body: bytes) -> bytes:
    """A message without Message-ID; the subject as an RFC 2047 encoded word."""
    encoded = base64.b64encode(subject.encode("utf-8", "surrogatepass")).decode()
    return (
        f"Subject: =?utf-8?b?{encoded}?=\r\nFrom: Anna <anna@example.cz>\r\n"
        "To: bob@example.cz\r\nDate: Mon, 23 Nov 2026 16:15:18 +0000\r\n\r\n"
    ).encode() + body


def hashed(raw: bytes) -> str:
    return fingerprint(parse_headers(raw), raw)


@FAST
@given(st.binary(max_size=80), st.binary(max_size=80))
def test_different_bytes_never_share_a_hash(a: bytes, b: bytes) -> None:
    """Issue 15: the hash covers the whole message (was: white space folded, headers
    picked), so different bodies, or different raw bytes, are different messages."""
    assume(a != b)
    assert hashed(message("Subject", a)) != hashed(message("Subject", b))
    # All header, no field at all (so no Message-ID and no transit field to leave out).
    assume(b"\n" not in a + b and b":" not in a + b)
    assert hashed(a) != hashed(b)


@FAST
@given(st.text(max_size=30), st.text(max_size=30), st.binary(max_size=50))
def test_hash_differs_for_different_subjects(a: str, b: str, body: bytes) -> None:
    assume(a != b)
    assert hashed(message(a, body)) != hashed(message(b, body))


@FAST
@given(
    st.from_regex(r"\A[A-Za-z0-9._%+-]{1,20}\Z"),
    st.from_regex(r"\A[A-Za-z0-9-]{1,15}(\.[A-Za-z]{2,6}){1,2}\Z"),
    st.text(max_size=30),
)
def test_message_id_fingerprint_ignores_brackets_domain_case_and_content(
    local: str, domain: str, subject: str
) -> None:
    bare = fingerprint(headers("x", f"{local}@{domain}"), b"one")
    dressed = fingerprint(headers(subject, f" <{local}@{domain.upper()}> "), b"two")
    assert bare == dressed == f"mid:{local}@{domain.lower()}"


@FAST
@given(st.text(max_size=40))
def test_normalised_ids_are_fixed_points(raw: str) -> None:
    once = normalise_message_id(raw)
    assert once is None or normalise_message_id(once) == once


@FAST
@given(st.text(max_size=80))
def test_activity_id_is_a_stable_32_hex_digest(fp: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", activity_id(fp))
    assert activity_id(fp) == activity_id(fp)
