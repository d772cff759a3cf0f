"""Reconcile: gaps between the server and MongoDB, and flag changes by comparison."""

from __future__ import annotations

import math

from services.fetcher.reconcile import add_mark, find_gaps, flag_changes, settled_uid


def test_only_uids_on_the_server_published_and_settled_are_gaps() -> None:
    on_server = [1, 2, 3, 4, 5, 6, 9]
    published = [1, 2, 3, 4, 5, 6, 7]  # 7 was expunged since; 9 is new mail, not ours yet
    stored = [1, 3]
    assert find_gaps(on_server, published, stored, settled=5) == [2, 4, 5]
    assert find_gaps(on_server, published, stored, settled=0) == []
    assert find_gaps(on_server, published, [1, 2, 3, 4, 5, 6], settled=9) == []


def test_what_was_published_within_the_grace_period_is_not_settled() -> None:
    marks = [(-math.inf, 10)]  # published by an earlier run
    marks = add_mark(marks, 100.0, 20, grace=30)
    marks = add_mark(marks, 120.0, 25, grace=30)
    assert settled_uid(marks, 110.0, 30) == 10
    assert settled_uid(marks, 131.0, 30) == 20
    assert settled_uid(marks, 151.0, 30) == 25
    assert settled_uid([], 151.0, 30) == 0


def test_marks_stay_few() -> None:
    marks: list[tuple[float, int]] = []
    for t in range(1000):
        marks = add_mark(marks, float(t), t, grace=10)
    assert len(marks) <= 12
    assert settled_uid(marks, 999.0, 10) == 989


def test_flag_changes_compare_sets_without_recent_and_case() -> None:
    on_server = {
        1: ("\\Seen", "\\Flagged"),
        2: ("\\Seen",),
        3: ("\\Recent",),
        4: ("$label1",),
        5: ("\\Seen",),  # not stored: its activity is not written yet, or a gap
    }
    stored = {1: ("\\Seen",), 2: ("\\Seen",), 3: (), 4: ("$Label1",), 6: ("\\Seen",)}
    assert flag_changes(on_server, stored) == {1: ("\\Seen", "\\Flagged")}
    assert flag_changes({1: ()}, {1: ("\\Seen",)}) == {1: ()}
