"""The dedup decision for one fingerprint (pure).

The table keeps, per fingerprint, every sighting so far. A sighting is identified by
(account, folder): the same message renumbered by a UIDVALIDITY change is the same
sighting, and the higher (UIDVALIDITY, UID) wins, so the result does not depend on
arrival order. The first sighting to arrive is canonical; later ones are duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.tagged_message import MessageTags, Sighting, TaggedMessageMeta


@dataclass(frozen=True)
class Verdict:
    sightings: tuple[Sighting, ...]
    canonical: bool
    duplicate_of: Sighting | None


def _key(s: Sighting) -> tuple[str, str]:
    return (s.account_id, s.folder)


def record_sighting(known: Sequence[Sighting], new: Sighting) -> Verdict:
    """Add ``new`` to the sightings of its fingerprint and say whether it is canonical."""
    merged: list[Sighting] = []
    replaced = False
    for old in known:
        if _key(old) == _key(new):
            replaced = True
            merged.append(max(old, new, key=lambda s: (s.uidvalidity, s.uid)))
        else:
            merged.append(old)
    if not replaced:
        merged.append(new)
    first = merged[0]
    canonical = _key(first) == _key(new)
    return Verdict(tuple(merged), canonical, None if canonical else first)


def tagged_meta(tags: MessageTags, verdict: Verdict) -> TaggedMessageMeta:
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
