"""The dedup decision for one activity (pure).

The table keeps, per activity, every sighting so far. A sighting is one IMAP message:
(account, folder, UIDVALIDITY, UID), RFC 3501 2.3.1.1's unique identifier. Two UIDs
are two sightings even in one folder (a list copy and a direct copy of the same
message), and no sighting ever replaces another: a folder renumbered by a UIDVALIDITY
change is remapped by the fetcher's ``remapped`` events, in MongoDB. The first sighting
to arrive is canonical; later ones are duplicates. Dedup's verdict is published on the
tagged-messages topic; the activity writer decides the stored one from MongoDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.tagged_message import MessageTags, Sighting, TaggedMessageMeta


@dataclass(frozen=True)
class SightingVerdict:
    sightings: tuple[Sighting, ...]
    canonical: bool
    duplicate_of: Sighting | None


def place(s: Sighting) -> tuple[str, str, int, int]:
    """The IMAP message a sighting is: (account, folder, UIDVALIDITY, UID)."""
    return (s.account_id, s.folder, s.uidvalidity, s.uid)


def record_sighting(known: Sequence[Sighting], new: Sighting) -> SightingVerdict:
    """Add ``new`` to the sightings of its activity and say whether it is canonical."""
    where = place(new)
    merged = tuple(known)
    if all(place(old) != where for old in known):
        merged = (*merged, new)
    first = merged[0]
    canonical = place(first) == where
    return SightingVerdict(merged, canonical, None if canonical else first)


def tagged_meta(tags: MessageTags, verdict: SightingVerdict) -> TaggedMessageMeta:
    """The public header of a tagged message: ``tags`` plus ``verdict``.

    Built without validating again: every part is a validated model already, and a
    second validation of the whole (the tags, the raw metadata, every sighting) was a
    tenth of the ``dedup`` agent's own work per message.
    """
    return TaggedMessageMeta.model_construct(
        **dict(tags),
        canonical=verdict.canonical,
        duplicate_of=verdict.duplicate_of,
        sightings=verdict.sightings,
    )
