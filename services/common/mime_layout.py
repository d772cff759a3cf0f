"""A large message split into its skeleton and its big base64 parts, decoded (pure).

A message holds an attachment base64-encoded (RFC 2045 6.8) and the activity stores the
decoded bytes, so the two never share a chunk. :func:`split` cuts each large base64
leaf part out of the raw message, keeps it decoded (the bytes the activity's attachment
is), and records how to encode it again: the line length and the line break. A part is
cut only when encoding its decoded bytes that way gives back exactly the text it had
(anything else, quoted-printable or a hand-wrapped base64, stays in the skeleton), so
:func:`assemble` always rebuilds the original bytes. Multipart bodies are walked as
RFC 2046 5.1.1 draws them: the line break before a delimiter line belongs to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

MIN_PART_BYTES = 64 * 1024  # encoded; smaller parts stay in the skeleton
MAX_DEPTH = 16  # nested multiparts followed
_HEADERS = BytesHeaderParser(policy=compat32)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Part:
    """A base64 part cut out: its decoded bytes are the blob ``sha256``."""

    offset: int  # where its encoded text goes back in the skeleton
    sha256: str
    size: int  # decoded bytes
    line: int  # characters per encoded line
    eol: bytes  # b"\r\n" or b"\n"


@dataclass(frozen=True)
class Layout:
    skeleton: bytes
    parts: tuple[Part, ...]
    contents: Mapping[str, bytes]  # SHA-256 -> decoded bytes of each part


def encode(data: bytes, line: int, eol: bytes) -> bytes:
    """``data`` in base64, ``line`` characters a line, lines joined by ``eol``."""
    text = base64.b64encode(data)
    return eol.join(text[i : i + line] for i in range(0, len(text), line))


def _body_start(raw: bytes, start: int, end: int) -> int | None:
    """Where an entity's body starts (after the blank line), or None without one."""
    for eol in (b"\r\n", b"\n"):
        if raw.startswith(eol, start):  # no header fields at all
            return start + len(eol)
    found = _BLANK_LINE.search(raw, start, end)
    return found.end() if found else None


def _children(raw: bytes, start: int, end: int, boundary: bytes) -> Iterator[tuple[int, int]]:
    """The body parts of a multipart body ``raw[start:end]``: (start, end) of each."""
    delimiter = re.compile(rb"--" + re.escape(boundary) + rb"(--)?[ \t]*(\r?\n|$)")
    previous: int | None = None  # where the part after the last delimiter starts
    for found in delimiter.finditer(raw, start, end):
        at = found.start()
        if at != start and raw[at - 1 : at] != b"\n":
            continue  # not at the start of a line: part of some content
        if previous is not None:
            cut = at - 2 if raw[at - 2 : at] == b"\r\n" else at - 1
            yield previous, max(previous, cut)
        if found.group(1):  # the close delimiter
            return
        previous = found.end()


def _leaves(raw: bytes, start: int, end: int, depth: int) -> Iterator[tuple[int, int, str]]:
    """(body start, body end, Content-Transfer-Encoding) of each leaf part."""
    body = _body_start(raw, start, end)
    if body is None:
        return
    headers = _HEADERS.parsebytes(raw[start:body])
    boundary = headers.get_param("boundary")
    if headers.get_content_maintype() == "multipart" and isinstance(boundary, str):
        if depth < MAX_DEPTH:
            for child_start, child_end in _children(raw, body, end, boundary.encode("latin-1")):
                yield from _leaves(raw, child_start, child_end, depth + 1)
        return
    encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
    yield body, end, encoding


def _decoded(text: bytes) -> bytes:
    try:
        return binascii.a2b_base64(text)  # line breaks skipped; the check comes after
    except binascii.Error:
        return b""


def _wrapped_as(text: bytes, data: bytes, line: int, eol: bytes) -> bool:
    """Whether ``text == encode(data, line, eol)``, without building it (3x faster):
    the line breaks are where that puts them, and the rest is the canonical base64."""
    plain = base64.b64encode(data)
    breaks = max(0, -(-len(plain) // line) - 1)
    if len(text) != len(plain) + breaks * len(eol):
        return False
    step = line + len(eol)
    if any(text[line + i :: step][:breaks] != eol[i : i + 1] * breaks for i in range(len(eol))):
        return False
    return text.replace(eol, b"") == plain


def _cut(raw: bytes, start: int, end: int) -> tuple[Part, bytes, int] | None:
    """The base64 text in ``raw[start:end]`` as a part, if it re-encodes exactly."""
    text_end = end
    while text_end > start and raw[text_end - 1] in b"\r\n":
        text_end -= 1  # a trailing line break stays in the skeleton
    text = raw[start:text_end]
    newline = text.find(b"\n")
    if newline == -1:
        line, eol = len(text), b"\r\n"
    else:
        eol = b"\r\n" if text[newline - 1 : newline] == b"\r" else b"\n"
        line = newline - len(eol) + 1
    if line <= 0 or not _wrapped_as(text, data := _decoded(text), line, eol):
        return None
    digest = hashlib.sha256(data).hexdigest()
    return Part(offset=0, sha256=digest, size=len(data), line=line, eol=eol), data, text_end


def split(raw: bytes, min_part: int = MIN_PART_BYTES) -> Layout:
    """``raw`` as a skeleton and its base64 parts of at least ``min_part`` bytes."""
    pieces: list[bytes] = []
    parts: list[Part] = []
    contents: dict[str, bytes] = {}
    done = 0  # raw[:done] is accounted for
    skeleton_length = 0
    for start, end, encoding in _leaves(raw, 0, len(raw), 0):
        if encoding != "base64" or end - start < min_part:
            continue
        cut = _cut(raw, start, end)
        if cut is None:
            continue
        part, data, text_end = cut
        pieces.append(raw[done:start])
        skeleton_length += start - done
        parts.append(Part(skeleton_length, part.sha256, part.size, part.line, part.eol))
        contents[part.sha256] = data
        done = text_end
    pieces.append(raw[done:])
    return Layout(b"".join(pieces), tuple(parts), contents)


def assemble(skeleton: bytes, parts: Sequence[Part], contents: Mapping[str, bytes]) -> bytes:
    """The original message: each part encoded again, at its place in the skeleton."""
    pieces: list[bytes] = []
    done = 0
    for part in parts:
        pieces.append(skeleton[done : part.offset])
        pieces.append(encode(contents[part.sha256], part.line, part.eol))
        done = part.offset
    pieces.append(skeleton[done:])
    return b"".join(pieces)
