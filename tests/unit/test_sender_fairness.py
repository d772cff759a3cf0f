"""Claims go round-robin across accounts: one busy account cannot starve the others."""

from __future__ import annotations

from services.sender.fairness import fair_pick, next_turn


def test_a_quiet_account_behind_a_busy_ones_backlog_is_picked_at_once() -> None:
    due = [(f"busy-{i}", "busy") for i in range(100)] + [("quiet-0", "quiet")]
    assert fair_pick(due, 2) == ["busy-0", "quiet-0"]


def test_accounts_take_turns_oldest_first_within_each() -> None:
    due = [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"), ("b2", "b")]
    assert fair_pick(due, 5) == ["a1", "b1", "c1", "a2", "b2"]


def test_accounts_with_fewer_in_flight_go_first() -> None:
    due = [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b"), ("b3", "b")]
    assert fair_pick(due, 3, {"a": 2}) == ["b1", "b2", "a1"]


def test_a_busy_account_alone_gets_every_slot() -> None:
    due = [(f"r{i}", "only") for i in range(10)]
    assert fair_pick(due, 4, {"only": 7}) == ["r0", "r1", "r2", "r3"]


def test_fewer_due_than_room_takes_them_all_and_none_twice() -> None:
    due = [("a1", "a"), ("b1", "b")]
    assert sorted(fair_pick(due, 10)) == ["a1", "b1"]
    assert fair_pick([], 3) == []
    assert fair_pick(due, 0) == []


def test_a_freed_slot_goes_to_the_account_with_fewest_at_work_longest_waiting_first() -> None:
    assert next_turn(["busy", "busy", "quiet"], {"busy": 8}) == 2
    assert next_turn(["a", "b", "a", "b"], {"a": 1, "b": 1}) == 0
    assert next_turn(["only", "only"], {"only": 3}) == 0
