"""The dedup decision for one fingerprint."""

from __future__ import annotations

from schemas.common import FolderRole
from schemas.tagged_message import Sighting
from services.dedup.sighting_rules import record_sighting


def sighting(
    account: str,
    folder: str = "INBOX",
    uidvalidity: int = 1,
    uid: int = 1,
    alias: str | None = None,
) -> Sighting:
    role = FolderRole.SENT if folder == "Sent" else FolderRole.INBOX
    return Sighting(
        account_id=account,
        folder=folder,
        uidvalidity=uidvalidity,
        uid=uid,
        folder_role=role,
        alias=alias,
    )


def test_first_sighting_is_canonical() -> None:
    s = sighting("jan")
    verdict = record_sighting((), s)
    assert verdict.canonical
    assert verdict.duplicate_of is None
    assert verdict.sightings == (s,)


def test_second_account_is_a_duplicate_of_the_first() -> None:
    first, second = sighting("jan", uid=5), sighting("info", uid=9)
    verdict = record_sighting((first,), second)
    assert not verdict.canonical
    assert verdict.duplicate_of == first
    assert verdict.sightings == (first, second)


def test_other_folder_of_the_same_account_is_a_duplicate() -> None:
    first, second = sighting("jan", "Sent"), sighting("jan", "INBOX")
    verdict = record_sighting((first,), second)
    assert not verdict.canonical
    assert verdict.sightings == (first, second)


def test_replay_changes_nothing() -> None:
    first, second = sighting("jan"), sighting("info")
    known = (first, second)
    assert record_sighting(known, first).sightings == known
    assert record_sighting(known, first).canonical
    assert record_sighting(known, second).sightings == known
    assert not record_sighting(known, second).canonical


def test_two_uids_in_one_folder_are_two_sightings() -> None:
    """A list copy and a direct copy in one INBOX: neither UID replaces the other."""
    low, high = sighting("jan", uid=3), sighting("jan", uid=8)
    assert record_sighting((low,), high).sightings == (low, high)
    assert record_sighting((high,), low).sightings == (high, low)
    assert not record_sighting((high,), low).canonical


def test_a_renumbered_copy_is_another_sighting_not_a_replacement() -> None:
    """Renumbering is the fetcher's remapped events' job (in MongoDB); dedup replaces
    nothing, so no code path can drop a UID's sighting for another's."""
    old, other = sighting("jan", uidvalidity=1, uid=40), sighting("info")
    new = sighting("jan", uidvalidity=2, uid=3)
    verdict = record_sighting((old, other), new)
    assert verdict.sightings == (old, other, new)
    assert not verdict.canonical
    assert verdict.duplicate_of == old
