"""Which partitions of the table on disk are ahead of their changelog (pure)."""

from __future__ import annotations

from services.dedup.local_table import stale_partitions


def test_files_within_the_changelog_are_kept() -> None:
    # Offset 4 applied, the changelog's next record is 5 (or later: written since).
    assert stale_partitions({0: 4, 1: 4}, {0: 5, 1: 900}) == []


def test_files_that_applied_a_record_the_changelog_lacks_are_dropped() -> None:
    # A deleted and recreated changelog: empty (end 0) or shorter than what was applied.
    assert stale_partitions({0: 0, 1: 7, 2: 3}, {0: 0, 1: 7, 2: 9}) == [0, 1]


def test_a_partition_missing_from_the_changelog_counts_as_empty() -> None:
    assert stale_partitions({3: 0}, {}) == [3]
