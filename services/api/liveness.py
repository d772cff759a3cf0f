"""Is anyone running the account? The status the API shows (pure).

A stored status is only as true as the fetcher that wrote it is alive. A state is
stamped when its status changes (``heartbeat_at``), and its replica (``worker``) beats
for all its states every poll interval in one document of its own
(:class:`~schemas.mailbox_state.WorkerHeartbeat`, :func:`with_heartbeat`); a state
stamped by neither within ``stale_after_s`` (a few poll intervals), or released by a
replica that stopped, is ``not_running``: after a restart that did not take the
accounts up again, the page must not say "idle".
"""

from __future__ import annotations

import datetime as dt

from schemas.mailbox_state import AccountState, AccountStatus, WorkerHeartbeat

# States stored before heartbeats existed have no stale_after_s: three 30 s polls.
DEFAULT_STALE_AFTER_S = 90.0


def live_status(state: AccountState, now: dt.datetime) -> tuple[AccountStatus, str | None]:
    """The status to show, and its reason."""
    if state.heartbeat_at is None:
        return AccountStatus.NOT_RUNNING, "no fetcher is running this account"
    stale_after = dt.timedelta(seconds=state.stale_after_s or DEFAULT_STALE_AFTER_S)
    if now - state.heartbeat_at > stale_after:
        seen = state.heartbeat_at.isoformat(timespec="seconds")
        was = state.status.value
        return AccountStatus.NOT_RUNNING, f"no fetcher has run this account since {seen} ({was})"
    return state.status, state.reason


def with_heartbeat(state: AccountState, beat: WorkerHeartbeat | None) -> AccountState:
    """``state`` as its replica's latest heartbeat tells it: alive as of the beat if that
    is newer than the state's own stamp, and an idle account synced then (the replica
    was watching it). A released state (no ``worker``, no stamp) stays released."""
    if beat is None or state.worker != beat.id or state.heartbeat_at is None:
        return state
    if beat.heartbeat_at <= state.heartbeat_at:
        return state
    update: dict[str, object] = {
        "heartbeat_at": beat.heartbeat_at,
        "stale_after_s": beat.stale_after_s,
    }
    if state.status is AccountStatus.IDLE:
        update["last_sync"] = beat.heartbeat_at
    return state.model_copy(update=update)
