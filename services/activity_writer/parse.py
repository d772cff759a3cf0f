"""One message -> what an activity shows of it (pure).

fast-mail-parser (a Rust MIME parser, ~60x the stdlib's ``policy.default`` here) reads
the message once. When it gives up (a base64 part that is not base64, say), the stdlib
parser with ``compat32``, which records defects instead of raising, reads it instead:
the CRM still shows who wrote what and when, with whatever body could be decoded.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

import fast_mail_parser

from schemas.common import Address
from services.mail import msg_ids
from services.rfc2047 import decode_words

_STDLIB = BytesParser(policy=compat32)


@dataclass(frozen=True)
class RawAttachment:
    filename: str | None
    content_type: str
    content: bytes
    content_id: str | None
    inline: bool


@dataclass(frozen=True)
class ParsedMail:
    subject: str
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: dt.datetime | None
    text_plain: tuple[str, ...]
    text_html: tuple[str, ...]
    attachments: tuple[RawAttachment, ...]
    in_reply_to: str | None
    references: tuple[str, ...]
    parser: str


def _fast_address(value: Any) -> Address | None:
    if value is None or not getattr(value, "address", None):
        return None
    return Address(name=value.display_name or "", address=value.address.lower())


def _fast_addresses(values: Any) -> tuple[Address, ...]:
    if values is None:
        return ()
    items = values if isinstance(values, list) else [values]
    return tuple(a for a in (_fast_address(v) for v in items) if a is not None)


def _ids(value: str | None) -> tuple[str, ...]:
    return tuple(msg_ids(value or ""))


def _first_header(headers: dict[str, list[str]], name: str) -> str | None:
    for key, values in headers.items():
        if key.lower() == name and values:
            return " ".join(values)
    return None


def _parse_fast(raw: bytes) -> ParsedMail:
    mail = fast_mail_parser.parse_email(raw)
    headers = mail.headers or {}
    parent = _ids(_first_header(headers, "in-reply-to"))
    return ParsedMail(
        subject=mail.subject or "",
        from_=_fast_addresses(mail.from_),
        to=_fast_addresses(mail.to),
        cc=_fast_addresses(mail.cc),
        date=mail.date_parsed,
        text_plain=tuple(mail.text_plain or ()),
        text_html=tuple(mail.text_html or ()),
        attachments=tuple(
            RawAttachment(
                filename=a.filename,
                content_type=a.mimetype or "application/octet-stream",
                content=bytes(a.content),
                content_id=(a.content_id or "").strip("<>") or None,
                inline=(a.disposition or "").lower() == "inline",
            )
            for a in mail.attachments or ()
        ),
        in_reply_to=parent[0] if parent else None,
        references=_ids(_first_header(headers, "references")),
        parser="fast-mail-parser",
    )


def _std_addresses(msg: Message, name: str) -> tuple[Address, ...]:
    values = [str(v) for v in msg.get_all(name, [])]
    pairs = email.utils.getaddresses(values)
    return tuple(Address(name=decode_words(n), address=a.lower()) for n, a in pairs if "@" in a)


def _std_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _parse_stdlib(raw: bytes) -> ParsedMail:
    msg = _STDLIB.parsebytes(raw)
    plain: list[str] = []
    html: list[str] = []
    attachments: list[RawAttachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if part.get_filename() or disposition == "attachment":
            payload = part.get_payload(decode=True)
            attachments.append(
                RawAttachment(
                    filename=decode_words(part.get_filename()),
                    content_type=kind,
                    content=payload if isinstance(payload, bytes) else b"",
                    content_id=(part.get("Content-ID") or "").strip().strip("<>") or None,
                    inline=disposition == "inline",
                )
            )
            continue
        if kind == "text/plain":
            plain.append(_std_text(part))
        elif kind == "text/html":
            html.append(_std_text(part))
    try:
        date = email.utils.parsedate_to_datetime(str(msg["Date"])) if msg["Date"] else None
    except (TypeError, ValueError):
        date = None
    return ParsedMail(
        subject=decode_words(str(msg.get("Subject", ""))),
        from_=_std_addresses(msg, "From"),
        to=_std_addresses(msg, "To"),
        cc=_std_addresses(msg, "Cc"),
        date=date,
        text_plain=tuple(plain),
        text_html=tuple(html),
        attachments=tuple(attachments),
        in_reply_to=next(iter(_ids(msg.get("In-Reply-To"))), None),
        references=_ids(" ".join(str(v) for v in msg.get_all("References", []))),
        parser="stdlib-compat32",
    )


def parse_message(raw: bytes) -> ParsedMail:
    try:
        return _parse_fast(raw)
    except Exception:  # fast-mail-parser's own error classes: fall back, never drop
        return _parse_stdlib(raw)
