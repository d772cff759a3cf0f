"""Logins per server host paced (issue #16): a storm spread, one reconnect at once."""

from __future__ import annotations

from services.fetcher.login_pacer import LoginPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_goes_at_once_then_one_login_per_interval() -> None:
    clock = Clock()
    pacer = LoginPacer(rate=10, burst=3, clock=clock)
    waits = [pacer.reserve("imap.example.com") for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert [round(w, 3) for w in waits[3:]] == [0.1, 0.2, 0.3]


def test_ten_thousand_reconnects_are_spread_over_n_over_rate_seconds() -> None:
    clock = Clock()
    pacer = LoginPacer(rate=200, burst=50, clock=clock)
    waits = [pacer.reserve("imap.example.com") for _ in range(10_000)]
    assert round(max(waits), 2) == round((10_000 - 50) / 200, 2)  # 49.75 s, not at once


def test_hosts_do_not_hold_each_other_up_and_a_quiet_host_refills() -> None:
    clock = Clock()
    pacer = LoginPacer(rate=10, burst=1, clock=clock)
    for _ in range(100):
        pacer.reserve("busy.example.com")
    assert pacer.reserve("other.example.com") == 0.0
    clock.now += 60.0  # the busy host's queue has drained
    assert pacer.reserve("busy.example.com") == 0.0


def test_handoffs_take_smaller_slots_and_reconnects_queue_behind_them() -> None:
    clock = Clock()
    pacer = LoginPacer(rate=200, burst=50, handoff_rate=500, clock=clock)
    moved = [pacer.reserve("imap.example.com", handoff=True) for _ in range(5_000)]
    # The 5,000 accounts a rebalance moves log in over ~10 s, not the 25 s of reconnects.
    assert round(max(moved), 3) == round(4_999 / 500 - 49 / 200, 3)
    reconnect = pacer.reserve("imap.example.com")
    assert reconnect > max(moved)  # one schedule per host: never faster together
    assert pacer.reserve("other.example.com") == 0.0
