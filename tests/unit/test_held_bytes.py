"""services.fetcher.held_bytes: the replica's count of fetched mail, and who it wakes."""

from __future__ import annotations

from services.fetcher.held_bytes import HeldBytes


def test_full_only_past_the_limit_and_never_without_one() -> None:
    held = HeldBytes(100)
    held.add(100)
    assert not held.full
    held.add(1)
    assert held.full
    unlimited = HeldBytes(None)
    unlimited.add(10**12)
    assert not unlimited.full


def test_the_fetches_waiting_are_woken_when_it_falls_back_under_the_limit() -> None:
    held, woken = HeldBytes(100), list[str]()
    stop_a = held.watch(lambda: woken.append("a"))
    held.watch(lambda: woken.append("b"))
    held.add(150)
    held.remove(20)  # still over: nobody may read yet
    assert woken == []
    held.remove(30)  # back to the limit
    assert woken == ["a", "b"]
    held.remove(100)  # under it already: no second wake
    assert woken == ["a", "b"]
    stop_a()
    held.add(200)
    held.remove(200)
    assert woken == ["a", "b", "b"]
    assert held.held == 0
