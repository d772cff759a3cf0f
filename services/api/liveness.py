"""Is anyone running the account? The status the API shows (pure).

A stored status is only as true as the fetcher that wrote it is alive. Each fetcher
replica stamps the states of the accounts it runs every poll interval (``heartbeat_at``,
with ``stale_after_s``, a few poll intervals); a state that was not stamped within that
time, or was released by a replica that stopped, is ``not_running``: after a restart
that did not take the accounts up again, the page must not say "idle".
"""

from __future__ import annotations

import datetime as dt

from schemas.mailbox_state import AccountState, AccountStatus

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
