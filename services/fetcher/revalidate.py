"""A folder's UIDVALIDITY changed: the same messages renumbered, or another folder? (pure)

RFC 3501 2.3.1.1 voids every stored UID when UIDVALIDITY changes, but servers also
change it without changing the folder (a restored backup, a migrated index, Dovecot's
``doveadm mailbox update --uid-validity``). Like mbsync (isync 1.4, "recovering from
UIDVALIDITY change"), we compare the Message-IDs we stored against what the folder now
holds: if every stored message is still there, the folder was only renumbered and the
old UIDs are remapped to the new ones; otherwise it was replaced and is resynced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from services.mail import message_id_of, parse_headers

# What to fetch to compare: the ids dedup builds its fingerprint from (a forward that
# rewrote Message-ID keeps the original, and the activity is stored under that one).
ID_FIELDS = "MESSAGE-ID X-ORIGINAL-MESSAGE-ID ORIGINAL-MESSAGE-ID"


class UidValidityVerdict(StrEnum):
    SAME = "same"
    REPLACED = "replaced"


@dataclass(frozen=True)
class Revalidation:
    verdict: UidValidityVerdict
    remap: dict[int, int] = field(default_factory=dict)  # old UID -> new UID
    compared: int = 0  # stored messages we could compare (they had a Message-ID)


def message_key(header_block: bytes) -> str | None:
    """The normalised id an activity is stored under, from a message's header block: the
    one its fingerprint names (:func:`services.mail.message_id_of`); None without one."""
    return message_id_of(parse_headers(header_block))


def revalidate(stored: Mapping[int, str], listed: Mapping[int, str | None]) -> Revalidation:
    """Compare what we stored (old UID -> id) with what the folder holds (new UID -> id).

    SAME when every stored message is found again; a Message-ID that occurs k times
    (the same mail filed twice) must occur at least k times, and occurrences pair up in
    UID order. REPLACED when any stored message is gone, or when nothing could be
    compared (no proof of sameness: resyncing is always safe, dedup keeps activities
    single). New messages in the folder do not matter: they are fetched as new mail.
    """
    if not stored:
        return Revalidation(UidValidityVerdict.REPLACED)
    new_by_id: dict[str, list[int]] = defaultdict(list)
    for uid in sorted(listed):
        key = listed[uid]
        if key is not None:
            new_by_id[key].append(uid)
    old_by_id: dict[str, list[int]] = defaultdict(list)
    for uid in sorted(stored):
        old_by_id[stored[uid]].append(uid)
    remap: dict[int, int] = {}
    for key, old_uids in old_by_id.items():
        new_uids = new_by_id.get(key, [])
        if len(new_uids) < len(old_uids):
            return Revalidation(UidValidityVerdict.REPLACED, compared=len(stored))
        remap.update(zip(old_uids, new_uids, strict=False))
    return Revalidation(UidValidityVerdict.SAME, remap, compared=len(stored))


def refetch_after_remap(listed: Mapping[int, str | None], remap: Mapping[int, int]) -> list[int]:
    """New UIDs of a renumbered folder that no stored message maps to, and that lie within
    what we had synced (from the lowest remapped UID up to the highest): messages we
    published but could not compare (no Message-ID, or not yet written to MongoDB). They
    are fetched again; dedup keeps their activities single. UIDs above are new mail,
    fetched as such; UIDs below lie outside the import window and were never wanted.
    """
    if not remap:
        return []
    mapped = set(remap.values())
    low, high = min(mapped), max(mapped)
    return sorted(u for u in listed if low < u < high and u not in mapped)
