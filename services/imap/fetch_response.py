"""UID FETCH responses (streamed one at a time, or as aioimaplib's lines) to messages (pure).

A message's FETCH response comes as the line up to the literal's ``{size}``, the
literal, and the rest of the line (usually just ``)``): from a streamed FETCH one
response at a time (:func:`parse_response`), from aioimaplib as lines of many responses,
each literal a bytearray (:func:`parse_fetch`). Servers may put the attributes before or
after the literal (RFC 3501 section 7.4.2), so both halves are searched.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.imap.dates import parse_internaldate

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_MODSEQ = re.compile(rb"\bMODSEQ \((\d+)\)")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    body: bytes
    size: int
    flags: tuple[str, ...]
    internaldate: dt.datetime | None
    modseq: int | None = None


def parse_fetch(lines: list[bytes | bytearray]) -> list[FetchedMessage]:
    """Messages in a UID FETCH response; lines that are not part of one are ignored."""
    out: list[FetchedMessage] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytearray) or not _FETCH_START.match(line):
            i += 1
            continue
        parts: list[bytes | bytearray] = [line]
        i += 1
        # Its literal, then the rest of the response (aioimaplib: a bytearray, a line).
        if i < len(lines) and isinstance(lines[i], bytearray):
            parts.append(lines[i])
            i += 1
            if i < len(lines) and not isinstance(lines[i], bytearray):
                parts.append(lines[i])
                i += 1
        message = parse_response(parts)
        if message is not None:
            out.append(message)
    return out


def parse_response(parts: Sequence[bytes | bytearray]) -> FetchedMessage | None:
    """One FETCH response: its line up to the body's literal, the literal, the rest of
    the response (``[b'1 FETCH (UID 7 BODY[] {5}', b'hello', b')']``). None when it has
    no literal: an unsolicited FETCH (another client changed flags while we fetched,
    RFC 3501 7.4.2), not a message; or when it has no UID."""
    if len(parts) < 2:
        return None
    head, body = parts[0], parts[1]
    attrs = head + b" " + parts[2] if len(parts) > 2 else head
    uid = _UID.search(attrs)
    if uid is None:
        return None
    size = _SIZE.search(attrs)
    flags = _FLAGS.search(attrs)
    date = _INTERNALDATE.search(attrs)
    modseq = _MODSEQ.search(attrs)
    return FetchedMessage(
        uid=int(uid[1]),
        body=body if type(body) is bytes else bytes(body),
        size=int(size[1]) if size else len(body),
        flags=tuple(f for f in flags[1].decode().split() if f != "\\Recent") if flags else (),
        internaldate=parse_internaldate(date[1].decode()) if date else None,
        modseq=int(modseq[1]) if modseq else None,
    )


def parse_search(lines: list[bytes | bytearray]) -> list[int]:
    """UIDs from a (UID) SEARCH response.

    aioimaplib strips the ``SEARCH`` keyword from the untagged line (``b"1 2 3"``); the
    last line is the tagged completion text and is never all digits.
    """
    uids: list[int] = []
    for line in lines[:-1]:
        tokens = bytes(line).split()
        if tokens and tokens[0] == b"SEARCH":
            tokens = tokens[1:]
        if tokens and all(t.isdigit() for t in tokens):
            uids.extend(int(t) for t in tokens)
    return uids


@dataclass(frozen=True)
class FlagUpdate:
    uid: int
    flags: tuple[str, ...]
    modseq: int | None


def parse_flag_updates(lines: list[bytes | bytearray]) -> list[FlagUpdate]:
    """``UID FETCH ... (UID FLAGS) (CHANGEDSINCE n)`` responses (RFC 7162 3.1.4)."""
    out = []
    for line in lines:
        if isinstance(line, bytearray) or not _FETCH_START.match(line):
            continue
        uid, flags, modseq = _UID.search(line), _FLAGS.search(line), _MODSEQ.search(line)
        if uid is None or flags is None:
            continue
        out.append(
            FlagUpdate(
                uid=int(uid[1]),
                flags=tuple(f for f in flags[1].decode().split() if f != "\\Recent"),
                modseq=int(modseq[1]) if modseq else None,
            )
        )
    return out
