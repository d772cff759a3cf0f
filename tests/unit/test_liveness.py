"""The status the API shows: the stored one only while a fetcher refreshes it."""

from __future__ import annotations

import datetime as dt

from schemas.mailbox_state import AccountState, AccountStatus, WorkerHeartbeat
from services.api.liveness import live_status, with_heartbeat

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


def beat(s_ago: float, worker: str = "replica-1") -> WorkerHeartbeat:
    return WorkerHeartbeat(  # type: ignore[call-arg]  # by its alias, _id, as stored
        _id=worker, heartbeat_at=NOW - dt.timedelta(seconds=s_ago), stale_after_s=30.0
    )


def test_the_replicas_heartbeat_keeps_an_unchanged_state_alive() -> None:
    # Written an hour ago when it became idle; its replica beat 5 s ago.
    old = state(3600).model_copy(update={"worker": "replica-1"})
    shown = with_heartbeat(old, beat(5))
    assert live_status(shown, NOW) == (AccountStatus.IDLE, None)
    assert shown.last_sync == NOW - dt.timedelta(seconds=5)  # watched until then
    assert live_status(with_heartbeat(old, beat(31)), NOW)[0] is AccountStatus.NOT_RUNNING


def test_another_replicas_heartbeat_or_a_released_state_says_nothing() -> None:
    old = state(3600).model_copy(update={"worker": "replica-1"})
    assert with_heartbeat(old, beat(5, worker="replica-2")) == old
    released = state(None).model_copy(update={"worker": None})
    assert live_status(with_heartbeat(released, beat(5)), NOW)[0] is AccountStatus.NOT_RUNNING
    # A state stamped after the beat keeps its own stamp; a non-idle one its last sync.
    fresh = state(1).model_copy(update={"worker": "replica-1"})
    assert with_heartbeat(fresh, beat(5)) == fresh
    error = old.model_copy(update={"status": AccountStatus.ERROR})
    assert with_heartbeat(error, beat(5)).last_sync is None
