"""Which pending account states a flush writes (services.fetcher.state.due, pure)."""

from __future__ import annotations

from schemas.mailbox_state import AccountStatus
from services.fetcher.state import due


def test_idle_and_errors_go_at_once_the_statuses_passed_through_once_they_last() -> None:
    for status in (AccountStatus.IDLE, AccountStatus.ERROR, AccountStatus.AUTH_FAILED):
        assert due(status, unwritten_since=10.0, now=10.0, settle_s=2.0)
    for status in (AccountStatus.CONNECTING, AccountStatus.SYNCING):
        assert not due(status, unwritten_since=10.0, now=11.9, settle_s=2.0)
        assert due(status, unwritten_since=10.0, now=12.0, settle_s=2.0)
