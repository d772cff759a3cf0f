"""The header block of a message, parsed once and tolerantly (pure).

Only the headers are read: dedup's tagging and a message's identity (and the
fetcher's UIDVALIDITY check, which fetches nothing else) need nothing more, and
splitting at the first blank line is much cheaper than parsing MIME bodies.
"""

from __future__ import annotations

import email.utils
import io
import re
from dataclasses import dataclass

from services.rfc2047 import decode_words

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# RFC 5322 2.2 field names (printable ASCII but ":"), a continuation, or mbox's "From ".
_FIELD_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")


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


# The common address-list shapes (``a@b``, ``Name <a@b>``, ``<a@b>``, comma-separated)
# without quotes, comments, groups, routes or domain literals. RFC 5322 3.4's full
# grammar (email.utils.getaddresses) costs ten times more, so it is kept for the rest;
# tests/property/test_headers_properties.py checks that both give the same answer.
_ATOM = r"[^ \t\r\n\"(),.:;<>@\[\\\]]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_SIMPLE_ITEM = re.compile(
    rf"[ \t\r\n]*(?:([^\"(),:;<>@\[\\\]]*?)[ \t\r\n]*<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t\r\n]*"
)
_LWS = re.compile(r"[ \t\r\n]+")
# Whitespace other than SP, HT, CR, LF (NBSP, VT, FF, U+2028...): the stdlib's parser
# treats some of it as folding white space, so such lists take the full grammar.
_ODD_SPACE = re.compile(r"[^\S \t\r\n]")


def getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """``email.utils.getaddresses(values)``, with a fast path for simple address lists."""
    pairs: list[tuple[str, str]] = []
    joined = ", ".join(values)
    if _ODD_SPACE.search(joined):
        return email.utils.getaddresses(values)
    for item in joined.split(","):
        match = _SIMPLE_ITEM.fullmatch(item)
        if match is None:
            return email.utils.getaddresses(values)
        name, routed, bare = match.groups()
        if bare is not None:
            pairs.append(("", bare))
        else:
            pairs.append((" ".join(w for w in _LWS.split(name) if w), routed))
    return pairs


def header_fields(text: str) -> dict[str, list[str]]:
    """Header values by lowercased name, in order, as the compat32 header parser reads them.

    The same rules as ``email.feedparser`` in headers-only mode (lines end at CR, LF or
    CRLF; a continuation line joins the field before it; the first line that is neither
    a field nor a continuation ends the block; a leading mbox ``From `` line is
    skipped), without building a ``Message``: a third of the cost of tagging was there.
    tests/property/test_headers_properties.py checks it against the stdlib parser.
    """
    lines = io.StringIO(text + "\r\n\r\n", newline="").readlines()
    block: list[str] = []
    for line in lines:
        if not _FIELD_LINE.match(line):
            break
        block.append(line)
    fields: dict[str, list[str]] = {}
    source: list[str] = []
    for lineno, line in enumerate(block):
        if line[0] in " \t":
            if source:  # a continuation before any field is a defect, and ignored
                source.append(line)
            continue
        if source:
            _store(fields, source)
            source = []
        if line.startswith("From "):
            if lineno == len(block) - 1 and lineno > 0:
                return fields  # the first line of a body without a blank line before it
            continue  # the mbox envelope line, or a misplaced one (a defect)
        if line.find(":") == 0:
            continue  # no field name: a defect, and the field is dropped
        source = [line]
    if source:
        _store(fields, source)
    return fields


def _store(fields: dict[str, list[str]], source: list[str]) -> None:
    name, value = source[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(source[1:])
    fields.setdefault(name.lower(), []).append(value.rstrip("\r\n"))


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def _addresses(fields: dict[str, list[str]], name: str) -> tuple[tuple[str, str], ...]:
    values = fields.get(name)
    if not values:
        return ()
    pairs = getaddresses(values)
    return tuple((decode_words(n), a.strip().lower()) for n, a in pairs if "@" in a)


def _plain(fields: dict[str, list[str]], name: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in fields.get(name, ()):
        out += [a.strip().lower() for _, a in getaddresses([value]) if "@" in a]
    return tuple(out)


# RFC 5322 3.6.4: msg-id is "<" id-left "@" id-right ">"; the obsolete syntax (4.5.4)
# allows folding white space inside the brackets, which is not part of the id.
_MSG_ID = re.compile(r"<([^<>]+)>")
_SPACE = re.compile(r"\s+")


def msg_ids(value: str) -> list[str]:
    """Every bracketed id in ``value``, white space inside the brackets removed."""
    return [i for i in (_SPACE.sub("", m) for m in _MSG_ID.findall(value)) if i]


def _msgid(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    found = msg_ids(text)
    return found[0] if found else (text.split()[0] if text else None)


def _header_text(block: bytes) -> str:
    """Header bytes as text, line by line: UTF-8 (RFC 6532), else windows-1252.

    Raw 8-bit headers are common in the wild: modern mailers send UTF-8, old ones send
    their local charset; a line that is not valid UTF-8 is read as windows-1252.
    """
    try:
        return block.decode("utf-8")  # every line is valid UTF-8: the common case
    except UnicodeDecodeError:
        pass
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
    fields = header_fields(_header_text(block))
    refs = " ".join(fields.get("references", ()))
    return Headers(
        message_id=_msgid(_first(fields, "message-id")),
        # Forwarders that rewrite Message-ID keep the original here (Exchange, list
        # managers); RFC 8098 names it Original-Message-ID.
        original_message_id=_msgid(
            _first(fields, "x-original-message-id") or _first(fields, "original-message-id")
        ),
        subject=decode_words(_first(fields, "subject") or ""),
        from_=_addresses(fields, "from"),
        to=_addresses(fields, "to"),
        cc=_addresses(fields, "cc"),
        delivered_to=_plain(fields, "delivered-to"),
        x_original_to=_plain(fields, "x-original-to"),
        date=_first(fields, "date"),
        in_reply_to=_msgid(_first(fields, "in-reply-to")),
        references=tuple(msg_ids(refs)),
    )
