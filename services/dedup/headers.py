"""The header block of a message, parsed once and tolerantly (pure).

Only the headers are read: tagging and fingerprinting need nothing else, and
splitting at the first blank line is much cheaper than parsing MIME bodies.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from services.rfc2047 import decode_words

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_PARSER = HeaderParser(policy=compat32)


@dataclass(frozen=True)
class Headers:
    message_id: str | None
    subject: str
    from_: tuple[tuple[str, str], ...]
    to: tuple[tuple[str, str], ...]
    cc: tuple[tuple[str, str], ...]
    delivered_to: tuple[str, ...]
    x_original_to: tuple[str, ...]
    date: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    original_message_id: str | None = None


def split(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body); a message with no blank line is all headers."""
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def _addresses(msg: Message, name: str) -> tuple[tuple[str, str], ...]:
    values = [str(v) for v in msg.get_all(name, [])]
    if not values:
        return ()
    pairs = email.utils.getaddresses(values)
    return tuple((decode_words(n), a.strip().lower()) for n, a in pairs if "@" in a)


def _plain(msg: Message, name: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in msg.get_all(name, []):
        out += [a.strip().lower() for _, a in email.utils.getaddresses([str(value)]) if "@" in a]
    return tuple(out)


def _msgid(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    match = re.search(r"<([^<>\s]+)>", text)
    return match[1] if match else (text.split()[0] if text else None)


def _header_text(block: bytes) -> str:
    """Header bytes as text, line by line: UTF-8 (RFC 6532), else windows-1252.

    Raw 8-bit headers are common in the wild: modern mailers send UTF-8, old ones send
    their local charset; a line that is not valid UTF-8 is read as windows-1252.
    """
    lines = []
    for line in block.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace"))
    return "\n".join(lines)


def parse_headers(raw: bytes) -> Headers:
    """Parse the header block of ``raw``; malformed headers give empty fields, not errors."""
    block, _ = split(raw)
    msg = _PARSER.parsestr(_header_text(block) + "\r\n\r\n", headersonly=True)
    refs = " ".join(str(v) for v in msg.get_all("References", []))
    return Headers(
        message_id=_msgid(msg.get("Message-ID")),
        # Forwarders that rewrite Message-ID keep the original here (Exchange, list
        # managers); RFC 8098 names it Original-Message-ID.
        original_message_id=_msgid(
            msg.get("X-Original-Message-ID") or msg.get("Original-Message-ID")
        ),
        subject=decode_words(str(msg.get("Subject", ""))),
        from_=_addresses(msg, "From"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        delivered_to=_plain(msg, "Delivered-To"),
        x_original_to=_plain(msg, "X-Original-To"),
        date=str(msg["Date"]) if msg["Date"] is not None else None,
        in_reply_to=_msgid(msg.get("In-Reply-To")),
        references=tuple(re.findall(r"<([^<>\s]+)>", refs)),
    )
