"""UID sets as IMAP writes them: ``1:3,7,9:10`` (RFC 3501 section 9 sequence-set) (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def uid_set(uids: Sequence[int]) -> str:
    """``[1,2,3,7,9,10]`` -> ``1:3,7,9:10`` (RFC 3501 sequence-set, ascending input)."""
    parts: list[str] = []
    start = prev = None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:  # type: ignore[operator]
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


def expand_uid_set(text: str) -> set[int]:
    """``1:3,7`` -> ``{1, 2, 3, 7}`` (the inverse of :func:`uid_set`)."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition(":")
        out.update(range(int(first), int(last or first) + 1))
    return out


def uid_list(text: str) -> list[int]:
    """``5:7,3`` -> ``[5, 6, 7, 3]``: the UIDs in the order written, as APPENDUID names
    those of a MULTIAPPEND, one per message appended (RFC 4315 3)."""
    out: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition(":")
        low, high = sorted((int(first), int(last or first)))
        out.extend(range(low, high + 1))
    return out
