"""The visibility rule: owners, group members, admins; foreign sightings never shown."""

from __future__ import annotations

import datetime as dt

from schemas.account import AccountRecord, Endpoint, PersonalOwnership, SharedOwnership
from services.activity_writer.visibility import Viewer, can_see, redact, visible_accounts

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def account(account_id: str, ownership: PersonalOwnership | SharedOwnership) -> AccountRecord:
    return AccountRecord(
        account_id=account_id,
        address=f"{account_id}@example.com",
        ownership=ownership,
        imap=Endpoint(host="imap.example.com", port=993, username=account_id),
        updated_at=NOW,
    )


JANA = account("jana", PersonalOwnership(owner="u-jana"))
PETR = account("petr", PersonalOwnership(owner="u-petr"))
INFO = account("info", SharedOwnership(group="sales"))
ALL = [JANA, PETR, INFO]


def test_owner_sees_only_their_personal_mailbox() -> None:
    assert visible_accounts(Viewer("u-jana"), ALL) == {"jana"}


def test_group_members_see_the_shared_mailbox() -> None:
    assert visible_accounts(Viewer("u-petr", frozenset({"sales"})), ALL) == {"petr", "info"}


def test_admin_sees_everything_and_strangers_nothing() -> None:
    assert visible_accounts(Viewer("root", admin=True), ALL) == {"jana", "petr", "info"}
    assert visible_accounts(Viewer("u-nobody", frozenset({"support"})), ALL) == frozenset()
    assert not can_see(Viewer("u-petr"), JANA)


def test_redact_hides_sightings_of_mailboxes_the_viewer_cannot_see() -> None:
    activity = {
        "_id": "a1",
        "account_ids": ["jana", "info"],
        "sightings": [
            {"account_id": "jana", "folder": "INBOX"},
            {"account_id": "info", "folder": "INBOX"},
        ],
    }
    shown = redact(activity, frozenset({"info"}))
    assert shown is not None
    assert shown["account_ids"] == ["info"]
    assert shown["sightings"] == [{"account_id": "info", "folder": "INBOX"}]
    assert redact(activity, frozenset({"petr"})) is None
