"""The status the API shows: the stored one only while a fetcher refreshes it."""

from __future__ import annotations

import datetime as dt

from schemas.mailbox_state import AccountState, AccountStatus
from services.api.liveness import live_status

NOW = dt.datetime(2026, 8, 3, 12, 0, tzinfo=dt.UTC)


def state(beat_s_ago: float | None, stale_after_s: float | None = 30.0) -> AccountState:
    return AccountState(  # type: ignore[call-arg]  # by its alias, _id, as stored
        _id="jana",
        status=AccountStatus.IDLE,
        since=NOW - dt.timedelta(hours=1),
        heartbeat_at=None if beat_s_ago is None else NOW - dt.timedelta(seconds=beat_s_ago),
        stale_after_s=stale_after_s,
    )


def test_a_fresh_heartbeat_shows_the_stored_status() -> None:
    assert live_status(state(29), NOW) == (AccountStatus.IDLE, None)


def test_a_stale_heartbeat_is_not_running_never_idle() -> None:
    status, reason = live_status(state(31), NOW)
    assert status is AccountStatus.NOT_RUNNING and reason is not None and "idle" in reason


def test_a_released_or_pre_heartbeat_state_is_not_running() -> None:
    assert live_status(state(None), NOW)[0] is AccountStatus.NOT_RUNNING
    assert live_status(state(60, stale_after_s=None), NOW)[0] is AccountStatus.IDLE  # 90 s
    assert live_status(state(91, stale_after_s=None), NOW)[0] is AccountStatus.NOT_RUNNING
