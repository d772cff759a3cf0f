"""The dedup table for one fingerprint, for any arrival order of its sightings."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from schemas.common import FolderRole
from schemas.tagged_message import MessageTags, Sighting, TaggedMessageMeta
from services.dedup.sighting_rules import SightingVerdict, record_sighting, tagged_meta
from tests.property.strategies import FAST, message_tags

# Few accounts, folders and UIDs, so that sightings collide and renumberings happen.
sightings = st.builds(
    Sighting,
    account_id=st.sampled_from(["jan", "info", "eva"]),
    folder=st.sampled_from(["INBOX", "Sent", "Archiv"]),
    uidvalidity=st.integers(min_value=1, max_value=3),
    uid=st.integers(min_value=1, max_value=5),
    folder_role=st.sampled_from(FolderRole),
    alias=st.none() | st.sampled_from(["jan@firma.cz", "sales@firma.cz"]),
)
arrivals = st.lists(sightings, min_size=1, max_size=10)


def fold(seq: Sequence[Sighting]) -> tuple[tuple[Sighting, ...], list[SightingVerdict]]:
    known: tuple[Sighting, ...] = ()
    verdicts = []
    for s in seq:
        verdict = record_sighting(known, s)
        known = verdict.sightings
        verdicts.append(verdict)
    return known, verdicts


def where(s: Sighting) -> tuple[str, str, int, int]:
    return (s.account_id, s.folder, s.uidvalidity, s.uid)


def cursor_set(seq: Sequence[Sighting]) -> set[tuple[str, str, int, int]]:
    return {(s.account_id, s.folder, s.uidvalidity, s.uid) for s in seq}


@FAST
@given(st.data())
def test_the_set_of_sightings_does_not_depend_on_arrival_order(data: st.DataObject) -> None:
    seq = data.draw(arrivals)
    shuffled = data.draw(st.permutations(seq))
    assert cursor_set(fold(seq)[0]) == cursor_set(fold(shuffled)[0])


@FAST
@given(arrivals)
def test_every_imap_message_is_one_sighting(seq: list[Sighting]) -> None:
    """Each (account, folder, UIDVALIDITY, UID) that arrived is kept, exactly once."""
    known, _ = fold(seq)
    assert len(cursor_set(known)) == len(known)
    assert cursor_set(known) == cursor_set(seq)


@FAST
@given(arrivals)
def test_the_first_to_arrive_is_the_one_canonical(seq: list[Sighting]) -> None:
    known, verdicts = fold(seq)
    first = where(seq[0])
    assert where(known[0]) == first
    for s, verdict in zip(seq, verdicts, strict=True):
        assert verdict.canonical is (where(s) == first)
        if verdict.canonical:
            assert verdict.duplicate_of is None
        else:
            assert verdict.duplicate_of is not None
            assert where(verdict.duplicate_of) == first
            assert verdict.duplicate_of == verdict.sightings[0]


@FAST
@given(st.data())
def test_replaying_a_recorded_sighting_changes_nothing(data: st.DataObject) -> None:
    seq = data.draw(arrivals)
    known, verdicts = fold(seq)
    index = data.draw(st.integers(min_value=0, max_value=len(seq) - 1))
    replay = record_sighting(known, seq[index])
    assert replay.sightings == known
    assert replay.canonical is verdicts[index].canonical
    assert replay.duplicate_of == (None if replay.canonical else known[0])


@given(message_tags, st.lists(sightings, max_size=4))
@FAST
def test_the_tagged_header_is_what_validation_would_build(
    tags: MessageTags, known: list[Sighting]
) -> None:
    """tagged_meta skips validation; the header is still valid and the same, byte for byte."""
    verdict = record_sighting(tuple(known), tags.sighting)
    built = tagged_meta(tags, verdict).model_dump_json(by_alias=True)
    validated = TaggedMessageMeta(
        **tags.model_dump(),
        canonical=verdict.canonical,
        duplicate_of=verdict.duplicate_of,
        sightings=verdict.sightings,
    )
    assert built == validated.model_dump_json(by_alias=True)
    assert TaggedMessageMeta.model_validate_json(built) == validated
