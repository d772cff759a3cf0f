"""Building outbound mail: what the recipient's client shows, and what it must not."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest

from schemas.common import Address, BlobRef
from schemas.send_request import OutboundAttachment, SendRequest
from services.sender.compose import (
    Attachment,
    ReplyParent,
    build_message,
    envelope_recipients,
    message_id_for,
    references_for,
)
from services.sender.errors import SendRefused

WHEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def request(**fields: object) -> SendRequest:
    values: dict[str, object] = {
        "request_id": "req-00000001",
        "account_id": "info",
        "sender": Address(name="Obchod Nováková", address="orders@example.com"),
        "requested_by": "jana",
        "to": (Address(name="Zuzana Černá", address="zuzana@example.net"),),
        "subject": "Objednávka č. 4711 – potvrzení",
        "text_body": "Dobrý den,\npotvrzujeme objednávku.\n",
        "requested_at": WHEN,
    }
    values.update(fields)
    return SendRequest.model_validate(values)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def body(msg: email.message.EmailMessage, subtype: str) -> str:
    """The text/``subtype`` body; fails the test without one."""
    part = msg.get_body((subtype,))
    assert part is not None, f"no text/{subtype} body"
    return str(part.get_content())


def test_headers_are_encoded_words_and_decode_back() -> None:
    req = request()
    raw = build_message(req, message_id_for(req.request_id, req.sender.address))
    assert raw.isascii()  # 7-bit: any server takes it, with or without 8BITMIME
    assert b"=?utf-8?" in raw
    msg = parse(raw)
    assert msg["Subject"] == "Objednávka č. 4711 – potvrzení"
    assert msg["From"].addresses[0].display_name == "Obchod Nováková"
    assert msg["To"].addresses[0].addr_spec == "zuzana@example.net"
    text = body(msg, "plain")
    assert text.replace("\r\n", "\n") == "Dobrý den,\npotvrzujeme objednávku.\n"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_the_same_request_builds_the_same_bytes() -> None:
    att = Attachment("faktura.pdf", "application/pdf", b"%PDF-1.4 " * 500)
    req = request(html_body="<p>Dobrý den</p>")
    mid = message_id_for(req.request_id, req.sender.address)
    assert build_message(req, mid, [att]) == build_message(req, mid, [att])
    assert mid == message_id_for("req-00000001", "orders@EXAMPLE.com")
    assert mid.endswith("@example.com>")
    assert mid != message_id_for("req-00000002", "orders@example.com")


def test_bcc_is_in_the_envelope_only() -> None:
    req = request(
        cc=(Address(address="petr@example.net"),),
        bcc=(Address(address="archive@example.com"), Address(address="ZUZANA@example.net")),
    )
    raw = build_message(req, "<x@example.com>")
    assert b"archive@example.com" not in raw
    assert "Bcc" not in parse(raw)
    assert envelope_recipients(req) == [
        "zuzana@example.net",
        "petr@example.net",
        "archive@example.com",
    ]


def test_reply_headers_thread_the_message() -> None:
    parent = ReplyParent("<p3@example.net>", ("<p1@example.net>", "<p2@example.net>"))
    msg = parse(build_message(request(subject="Re: Objednávka"), "<r@example.com>", (), parent))
    assert msg["In-Reply-To"] == "<p3@example.net>"
    assert msg["References"].split() == ["<p1@example.net>", "<p2@example.net>", "<p3@example.net>"]


def test_long_reference_chains_keep_the_root_and_the_latest() -> None:
    refs = tuple(f"<m{i}@example.net>" for i in range(40))
    out = references_for(ReplyParent("<last@example.net>", refs))
    assert len(out) == 20
    assert out[0] == "<m0@example.net>" and out[-1] == "<last@example.net>"


def test_attachments_get_safe_names_and_survive_the_round_trip() -> None:
    data = bytes(range(256)) * 40
    att = Attachment("../../etc/Smlouva č. 7.pdf", "application/pdf", data)
    msg = parse(build_message(request(html_body="<b>Ahoj</b>"), "<a@example.com>", [att]))
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["Smlouva č. 7.pdf"]
    assert parts[0].get_content() == data
    assert body(msg, "html").strip() == "<b>Ahoj</b>"


def test_html_only_gets_a_text_alternative() -> None:
    msg = parse(
        build_message(request(text_body=None, html_body="<p>Hi <b>there</b></p>"), "<h@x.cz>")
    )
    assert body(msg, "plain").strip() == "Hi there"
    assert msg.get_content_type() == "multipart/alternative"


def test_header_injection_is_refused() -> None:
    with pytest.raises(SendRefused, match="cannot build"):
        build_message(request(subject="Hi\r\nBcc: victim@example.net"), "<i@x.cz>")


def test_a_bad_address_is_refused_clearly() -> None:
    with pytest.raises(SendRefused, match="not a valid e-mail address"):
        build_message(request(to=(Address(address="not an address@@"),)), "<i@x.cz>")


def test_a_request_needs_a_recipient_and_a_body() -> None:
    with pytest.raises(ValueError, match="recipient"):
        request(to=())
    with pytest.raises(ValueError, match="body"):
        request(text_body=None)
    ref = BlobRef(sha256="0" * 64, size=1)
    assert request(attachments=(OutboundAttachment(filename="a", blob=ref),)).attachments
