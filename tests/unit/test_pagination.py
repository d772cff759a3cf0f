"""Cursor pagination (pure): cursors, pages of accounts and the activity keyset."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from services.api.activity_list import ActivityFilter, activity_query, after_key
from services.api.cursors import account_cursor, activity_cursor, after_account, after_activity
from services.api.errors import InvalidCursor
from services.api.pagination import page_after
from services.api.problems import from_error

WHEN = dt.datetime(2026, 5, 1, 9, 30, 15, 123000, tzinfo=dt.UTC)


def test_cursors_round_trip_and_are_url_safe() -> None:
    assert after_account(account_cursor("acc-1/ü")) == "acc-1/ü"
    assert after_activity(activity_cursor(WHEN, "a1")) == (WHEN, "a1")
    assert after_activity(activity_cursor(None, "a1")) == (None, "a1")
    for cursor in (account_cursor("a" * 50), activity_cursor(WHEN, "x?&=" * 10)):
        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def _forged(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "@@@",
        _forged("[]"),
        _forged('{"a": 1}'),
        _forged('["account", 3]'),
        _forged('["activity", "2026-05-01T09:30:00", "a1"]'),  # no timezone
        _forged('["activity", "yesterday", "a1"]'),
        _forged("\xff\xfe"),
        account_cursor("a1") + "x",
    ],
)
def test_a_cursor_this_api_did_not_hand_out_is_a_400_problem(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        after_account(cursor)
    with pytest.raises(InvalidCursor) as raised:
        after_activity(cursor)
    body = from_error(raised.value, "/v1/activities").body()
    assert (body["status"], body["code"]) == (400, "invalid_cursor")


def test_a_cursor_of_another_list_is_refused() -> None:
    with pytest.raises(InvalidCursor, match="activities"):
        after_activity(account_cursor("a1"))
    with pytest.raises(InvalidCursor, match="accounts"):
        after_account(activity_cursor(WHEN, "a1"))


def test_pages_of_accounts_cover_everything_once_by_id() -> None:
    ids = [f"acc-{n:02}" for n in (7, 1, 5, 3, 2, 6, 4)]
    seen, after = [], None
    while True:
        page, last = page_after(ids, str, after, 3)
        seen += page
        if last is None:
            break
        after = last
    assert seen == sorted(ids)
    assert page_after(ids, str, None, 7) == (sorted(ids), None)
    assert page_after([], str, None, 3) == ([], None)
    # One removed meanwhile (the cursor's own item included): nothing shifts or repeats.
    assert page_after([i for i in ids if i != "acc-03"], str, "acc-03", 2) == (
        ["acc-04", "acc-05"],
        "acc-05",
    )


def test_the_activity_keyset_follows_date_descending_then_id_and_dateless_last() -> None:
    assert after_key((WHEN, "a5")) == {
        "$or": [
            {"date": {"$lt": WHEN}},
            {"date": WHEN, "_id": {"$lt": "a5"}},
            {"date": None},
        ]
    }
    assert after_key((None, "a5")) == {"date": None, "_id": {"$lt": "a5"}}


def test_the_activity_filter_keeps_to_the_visible_accounts() -> None:
    visible = frozenset({"a2", "a1"})
    assert activity_query(visible, ActivityFilter(account_id="other"), None) is None
    assert activity_query(visible, ActivityFilter(), None) == {"account_ids": {"$in": ["a1", "a2"]}}
    query = activity_query(
        visible, ActivityFilter(account_id="a1", participant=" Bo@Example.com "), (None, "x")
    )
    assert query == {
        "$and": [
            {"account_ids": {"$in": ["a1"]}},
            {
                "$or": [
                    {"from.address": "bo@example.com"},
                    {"to.address": "bo@example.com"},
                    {"cc.address": "bo@example.com"},
                ]
            },
            {"date": None, "_id": {"$lt": "x"}},
        ]
    }
