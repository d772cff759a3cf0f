"""Where a moved message went: the COPYUID response code (pure).

RFC 4315 section 3: a server with UIDPLUS answers UID COPY with
``OK [COPYUID <uidvalidity> <source uids> <destination uids>]``, the two sets in the
same order; RFC 6851 section 4.3 sends the same code with UID MOVE, in an untagged OK
before the EXPUNGEs. Without it (no UIDPLUS) we only know the message left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The response code, wherever it is in the lines (untagged for MOVE, tagged for COPY).
_COPYUID = re.compile(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", re.IGNORECASE)


@dataclass(frozen=True)
class CopyUid:
    uidvalidity: int  # of the destination folder
    uids: dict[int, int]  # source UID -> destination UID


def _ordered(uid_set: bytes) -> list[int]:
    """RFC 4315 uid-set, in the order given: ``4,1:2`` -> ``[4, 1, 2]``. A range means
    both ends and everything between "regardless of order" (RFC 4315 section 4), and
    pairs with the other set's range in ascending order."""
    out: list[int] = []
    for part in uid_set.split(b","):
        first, _, last = part.partition(b":")
        lo, hi = sorted((int(first), int(last or first)))
        out.extend(range(lo, hi + 1))
    return out


def parse_copyuid(lines: Iterable[bytes | bytearray]) -> CopyUid | None:
    """The COPYUID of a COPY or MOVE response, or None when the server sent none (or an
    inconsistent one: then where the messages went is unknown, not guessed)."""
    uidvalidity = 0
    uids: dict[int, int] = {}
    for line in lines:
        for m in _COPYUID.finditer(bytes(line)):
            source, dest = _ordered(m[2]), _ordered(m[3])
            if len(source) != len(dest) or (uidvalidity and int(m[1]) != uidvalidity):
                return None
            uidvalidity = int(m[1])
            uids.update(zip(source, dest, strict=True))
    return CopyUid(uidvalidity, uids) if uids and uidvalidity else None
