"""What SELECT/EXAMINE or STATUS says of a folder (pure).

SELECT and EXAMINE answer with untagged ``n EXISTS`` and response codes in untagged
OKs (``[UIDVALIDITY n]``, ``[UIDNEXT n]``, RFC 3501 7.1; ``[HIGHESTMODSEQ n]`` once
CONDSTORE is enabled, RFC 7162 3.1.2.1). STATUS answers with one untagged line,
``* STATUS folder (MESSAGES n UIDNEXT n ...)`` (RFC 3501 7.2.4; HIGHESTMODSEQ from RFC
7162 3.1.3, SIZE from RFC 8438).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.imap.errors import ImapUnavailable

_CODE = {
    name: re.compile(rb"\[" + name.encode() + rb" (\d+)\]")
    for name in ("UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ")
}
_EXISTS = re.compile(rb"^(\d+) EXISTS")
# The STATUS items mailsync asks for: the sync's, and the account check's SIZE.
_STATUS_ITEM = re.compile(rb"(MESSAGES|UIDNEXT|UIDVALIDITY|HIGHESTMODSEQ|SIZE) (\d+)")
# An untagged STATUS response's mailbox: a quoted string or an atom (RFC 3501 9,
# ``mailbox-data``); a literal name arrives split over lines and is not matched.
_STATUS_MAILBOX = re.compile(rb'^STATUS ("(?:[^"\\]|\\.)*"|[^\s"(]+) \(')


@dataclass(frozen=True)
class FolderStatus:
    """What SELECT (or STATUS) says of a folder."""

    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None = None


def parse_select(lines: list[bytes | bytearray]) -> FolderStatus:
    """The status in a SELECT or EXAMINE response; without UIDVALIDITY no UID we keep
    could be trusted, so its absence is the server's failure."""
    values: dict[str, int] = {}
    exists = 0
    for line in lines:
        raw = bytes(line)
        for name, pattern in _CODE.items():
            if m := pattern.search(raw):
                values[name] = int(m[1])
        if m := _EXISTS.match(raw):
            exists = int(m[1])
    if "UIDVALIDITY" not in values:
        raise ImapUnavailable("server did not send UIDVALIDITY on EXAMINE")
    return FolderStatus(
        uidvalidity=values["UIDVALIDITY"],
        uidnext=values.get("UIDNEXT", 1),
        exists=exists,
        highestmodseq=values.get("HIGHESTMODSEQ"),
    )


def status_mailbox(line: bytes | bytearray) -> str | None:
    """The mailbox (its wire name) an untagged ``STATUS`` line is about, else None."""
    m = _STATUS_MAILBOX.match(bytes(line))
    if m is None:
        return None
    name = m[1].decode("ascii", errors="replace")
    if name.startswith('"'):
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def parse_status(lines: list[bytes | bytearray], mailbox: str | None = None) -> dict[str, int]:
    """The items of a STATUS response, by name: ``{"MESSAGES": 3, "SIZE": 2048}``.

    With ``mailbox`` (its wire name), only the lines about it: with NOTIFY (RFC 5465)
    the server may slip another folder's STATUS into the response."""
    mine = [
        line
        for line in lines
        if mailbox is None or (named := status_mailbox(line)) is None or named == mailbox
    ]
    return {k.decode(): int(v) for line in mine for k, v in _STATUS_ITEM.findall(bytes(line))}


def status_of(values: dict[str, int]) -> FolderStatus:
    """A folder's status from STATUS items (MESSAGES is what EXISTS is to SELECT)."""
    return FolderStatus(
        uidvalidity=values.get("UIDVALIDITY", 0),
        uidnext=values.get("UIDNEXT", 1),
        exists=values.get("MESSAGES", 0),
        highestmodseq=values.get("HIGHESTMODSEQ"),
    )
