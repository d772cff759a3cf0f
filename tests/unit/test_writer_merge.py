"""Which sighting a stored activity gains, and which is canonical (the writer's rule)."""

from __future__ import annotations

from schemas.activity import SightingDoc
from schemas.common import FolderRole
from services.activity_writer.merge import Place, conflict_links, fold


def doc(account: str, folder: str = "INBOX", uidvalidity: int = 1, uid: int = 1) -> SightingDoc:
    return SightingDoc(
        account_id=account,
        folder=folder,
        uidvalidity=uidvalidity,
        uid=uid,
        folder_role=FolderRole.INBOX,
        duplicate=False,
    )


def at(s: SightingDoc) -> Place:
    return (s.account_id, s.folder, s.uidvalidity, s.uid)


def test_the_first_stored_sighting_stays_canonical() -> None:
    first, second = doc("jan"), doc("info", uid=7)
    folded = fold((at(first),), second)
    assert folded.added and not folded.created
    assert folded.sightings == (at(first), at(second))
    replay = fold(folded.sightings, first)
    assert not replay.added and replay.created  # a replay of the creator: still canonical


def test_a_second_uid_in_the_same_folder_is_added_not_swapped() -> None:
    a, b = doc("jan", uid=3), doc("jan", uid=9)
    assert fold((at(a),), b).sightings == (at(a), at(b))


def test_a_sighting_of_a_void_uidvalidity_is_not_added() -> None:
    """A replay from before a remap: the folder's old numbering is void (RFC 3501 2.3.1.1)."""
    remapped, stale = doc("jan", uidvalidity=7, uid=1), doc("jan", uidvalidity=3, uid=40)
    assert not fold((at(remapped),), stale).added
    assert fold((at(remapped),), doc("jan", "Sent", uidvalidity=3)).added


def test_conflicting_activities_are_linked_both_ways() -> None:
    links = conflict_links({"q1@x": ["b", "a", "a"], "solo@x": ["c"]})
    assert links == {"a": ("b",), "b": ("a",)}
