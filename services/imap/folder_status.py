"""What SELECT/EXAMINE or STATUS says of a folder (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FolderStatus:
    """What SELECT (or STATUS) says of a folder."""

    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None = None
