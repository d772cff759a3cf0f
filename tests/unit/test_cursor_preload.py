"""A preload asks for the cursors under the names the account's worker will ask for."""

from __future__ import annotations

import datetime as dt

from schemas.account import AccountRecord, Endpoint, PersonalOwnership, Security
from services.fetcher.cursor_preload import folder_names


def _record(folders: tuple[str, ...]) -> AccountRecord:
    return AccountRecord.model_validate(
        {
            "account_id": "jana",
            "address": "jana@firma.example",
            "ownership": PersonalOwnership(owner="u-jana"),
            "imap": Endpoint(host="127.0.0.1", port=993, security=Security.TLS, username="j"),
            "updated_at": dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
            "folders": folders,
        }
    )


def test_inbox_in_any_case_is_asked_as_INBOX_and_each_name_once() -> None:
    assert folder_names(_record(("inbox", "Sent", "Odeslaná pošta", "INBOX"))) == [
        "INBOX",
        "Sent",
        "Odeslaná pošta",
    ]
