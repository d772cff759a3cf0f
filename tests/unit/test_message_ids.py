"""Which entries of ``message_ids`` a write creates, fills in, and reads as conflicts."""

from __future__ import annotations

from services.activity_writer.message_ids import entries, missing, shared


def test_a_batch_groups_its_activities_by_message_id_once_each() -> None:
    pairs = [("m1", "b"), ("m2", "c"), ("m1", "a"), ("m1", "b")]  # "b" sighted twice
    assert entries(pairs) == {"m1": ("a", "b"), "m2": ("c",)}


def test_only_ids_an_entry_lacks_are_added() -> None:
    wanted = {"m1": ("a", "b"), "m2": ("c",), "m3": ("d",)}
    stored = {"m1": ("a", "x"), "m2": ("c",)}
    # m2 holds its id already (a replay, another sighting); m3's entry is gone (erased).
    assert missing(wanted, stored) == {"m1": ("b",), "m3": ("d",)}


def test_a_conflict_is_an_entry_naming_two_activities() -> None:
    held = {"m1": ("a", "b"), "m2": ("c",), "m3": ("d", "d")}
    assert shared(held) == {"m1": ("a", "b")}
