"""A message split into skeleton and decoded parts puts itself together byte for byte."""

from __future__ import annotations

import base64
import hashlib
import os
import quopri
from email.message import EmailMessage
from email.policy import SMTP
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from services.activity_writer.parse import parse_message
from services.common.mime_layout import assemble, encode, split

PDF = b"%PDF-1.7\n" + os.urandom(300_000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(90_000)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def round_trip(raw: bytes) -> list[str]:
    """The SHA-256 of each part cut out, after checking the message comes back exact."""
    layout = split(raw)
    again = assemble(layout.skeleton, layout.parts, layout.contents)
    assert sha(again) == sha(raw)
    assert len(layout.skeleton) + sum(
        len(encode(layout.contents[p.sha256], p.line, p.eol)) for p in layout.parts
    ) == len(raw)
    return [p.sha256 for p in layout.parts]


def client_message() -> bytes:
    """mixed > (alternative > (plain, related > (html, png)), pdf); CRLF, 76-char base64."""
    msg = EmailMessage()
    msg["From"] = "Shop <sales@shop.example>"
    msg["To"] = "buyer@customer.example"
    msg["Subject"] = "Ceník 2026"
    msg["Message-ID"] = "<layout-1@shop.example>"
    msg.set_content("Price list attached.")
    msg.add_alternative('<p>Price list<img src="cid:logo@shop.example"></p>', subtype="html")
    cast(list[EmailMessage], msg.get_payload())[1].add_related(
        PNG, maintype="image", subtype="png", cid="<logo@shop.example>"
    )
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="cenik.pdf")
    return msg.as_bytes(policy=SMTP)


def test_a_client_message_keeps_its_large_parts_decoded_as_the_activity_stores_them() -> None:
    raw = client_message()
    assert b"\r\n" in raw and max(len(x) for x in raw.split(b"\r\n")[40:-5]) == 76
    cut = round_trip(raw)
    assert cut == [sha(PNG), sha(PDF)]  # the text and html parts stay in the skeleton
    # The blobs are the very ones the writer stores for the activity's attachments.
    assert set(cut) <= {sha(a.content) for a in parse_message(raw).attachments}
    layout = split(raw)
    assert len(layout.skeleton) < 4000 and layout.contents[sha(PDF)] == PDF


def test_lf_line_ends_are_kept() -> None:
    raw = client_message().replace(b"\r\n", b"\n")
    assert round_trip(raw) == [sha(PNG), sha(PDF)]
    assert {p.eol for p in split(raw).parts} == {b"\n"}


def test_a_hand_written_message_with_preamble_padding_and_odd_lines() -> None:
    """72-character lines, upper-case BASE64, a folded quoted boundary, transport padding
    after a delimiter, a blank line before the next, preamble and epilogue."""
    text72 = encode(PDF, 72, b"\r\n")
    raw = (
        b"From: a@example.org\r\nSubject: scans\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed;\r\n\tboundary="=_outer b"\r\n\r\n'
        b"This is a multi-part message in MIME format.\r\n"
        b"--=_outer b  \r\n"
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--=_outer b\r\n"
        b"Content-Type: application/pdf; name=scan.pdf\r\n"
        b"Content-Transfer-Encoding: BASE64\r\n\r\n" + text72 + b"\r\n\r\n"
        b"--=_outer b--\r\nepilogue\r\n"
    )
    assert round_trip(raw) == [sha(PDF)]


def test_what_does_not_encode_back_exactly_stays_in_the_skeleton() -> None:
    ragged = base64.encodebytes(PDF).replace(b"\n", b"\r\n")  # 76 a line...
    ragged = ragged[:1000] + b"\r\n" + ragged[1000:]  # ...but one line broken short
    spaced = encode(PDF, 76, b"\r\n") + b" "  # a space at the end of the text
    qp = quopri.encodestring(PDF)
    for body, cte in ((ragged, b"base64"), (spaced, b"base64"), (qp, b"quoted-printable")):
        raw = (
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body + b"\r\n--b--\r\n"
        )
        assert round_trip(raw) == []


def test_a_single_part_message_and_a_broken_multipart() -> None:
    single = b"Content-Transfer-Encoding: base64\r\n\r\n" + encode(PDF, 76, b"\r\n") + b"\r\n"
    assert round_trip(single) == [sha(PDF)]
    unclosed = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\n' + PDF[:5000]
    assert round_trip(unclosed) == []
    assert round_trip(b"") == [] and round_trip(b"no headers, no blank line") == []


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=70_000),
    line=st.integers(min_value=1, max_value=120),
    eol=st.sampled_from([b"\r\n", b"\n"]),
    tail=st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"\n"]),
)
def test_any_base64_part_round_trips(data: bytes, line: int, eol: bytes, tail: bytes) -> None:
    raw = eol.join(
        [
            b'Content-Type: multipart/mixed; boundary="xyz"',
            b"",
            b"--xyz",
            b"Content-Transfer-Encoding: base64",
            b"",
            encode(data, line, eol) + tail,
            b"--xyz--",
            b"",
        ]
    )
    cut = round_trip(raw)
    assert cut == ([sha(data)] if len(encode(data, line, eol)) >= 64 * 1024 else [])
