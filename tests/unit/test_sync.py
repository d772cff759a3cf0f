"""What to fetch from a folder, given its cursor and the server's status."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.account import ImportAll, ImportLastN, ImportSince
from schemas.common import FolderRole
from schemas.mailbox_state import FolderCursor
from services.fetcher.sync import (
    batches,
    has_changes,
    retention_floor,
    search_criteria,
    select_uids,
    uidvalidity_changed,
)
from services.imap.folder_status import FolderStatus
from services.imap.sequence_set import uid_set

NOW = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)


def cursor(
    uidvalidity: int = 100, last_uid: int = 10, missing: tuple[int, ...] = ()
) -> FolderCursor:
    return FolderCursor(  # type: ignore[call-arg]  # by its alias, _id, as stored
        _id="acc/INBOX",
        account_id="acc",
        folder="INBOX",
        folder_role=FolderRole.INBOX,
        uidvalidity=uidvalidity,
        last_uid=last_uid,
        missing_uids=missing,
        exists=10,
        updated_at=NOW,
    )


def status(uidvalidity: int = 100, uidnext: int = 11, exists: int = 10) -> FolderStatus:
    return FolderStatus(uidvalidity=uidvalidity, uidnext=uidnext, exists=exists)


def test_uidvalidity_unchanged() -> None:
    assert not uidvalidity_changed(cursor(uidvalidity=100), status(uidvalidity=100))


def test_uidvalidity_changed() -> None:
    assert uidvalidity_changed(cursor(uidvalidity=100), status(uidvalidity=101))


def test_no_cursor_is_not_a_uidvalidity_change() -> None:
    assert not uidvalidity_changed(None, status())


def test_nothing_new_when_uidnext_follows_the_cursor() -> None:
    assert not has_changes(cursor(last_uid=10), status(uidnext=11))


def test_new_mail_above_the_cursor() -> None:
    assert has_changes(cursor(last_uid=10), status(uidnext=12))


def test_missing_uids_are_due_for_a_retry() -> None:
    assert has_changes(cursor(last_uid=10, missing=(4,)), status(uidnext=11))


@pytest.mark.parametrize(("exists", "expected"), [(0, False), (3, True)])
def test_first_sync_depends_on_whether_the_folder_has_messages(exists: int, expected: bool) -> None:
    assert has_changes(None, status(exists=exists, uidnext=1 + exists)) is expected


@pytest.mark.parametrize(("exists", "expected"), [(0, False), (2, True)])
def test_after_a_uidvalidity_change_any_message_is_new(exists: int, expected: bool) -> None:
    """UIDs were renumbered: even a UIDNEXT below the cursor means mail to refetch."""
    assert has_changes(cursor(last_uid=50), status(uidvalidity=7, uidnext=3, exists=exists)) is (
        expected
    )


def test_search_criteria_first_import_of_everything() -> None:
    assert search_criteria(0, ImportAll()) == "UID 1:*"


def test_search_criteria_above_the_cursor() -> None:
    assert search_criteria(41, ImportAll()) == "UID 42:*"


@pytest.mark.parametrize(
    ("since", "date"),
    [
        (dt.date(2026, 2, 1), "1-Feb-2026"),
        (dt.date(2026, 12, 24), "24-Dec-2026"),
        (dt.date(2025, 10, 9), "9-Oct-2025"),
    ],
)
def test_search_criteria_first_import_since(since: dt.date, date: str) -> None:
    assert search_criteria(0, ImportSince(since=since)) == f"UID 1:* SINCE {date}"


def test_search_criteria_since_applies_to_the_first_import_only() -> None:
    assert search_criteria(5, ImportSince(since=dt.date(2026, 2, 1))) == "UID 6:*"


def test_search_criteria_last_n_has_no_date() -> None:
    assert search_criteria(0, ImportLastN(count=3)) == "UID 1:*"


def test_select_uids_sorts_and_dedupes() -> None:
    assert select_uids([9, 3, 5, 3], 0, ImportAll()) == [3, 5, 9]


def test_select_uids_drops_the_highest_uid_below_the_cursor() -> None:
    """``UID 11:*`` matches the highest UID even when it is below 11 (RFC 3501 6.4.8)."""
    assert select_uids([10], 10, ImportAll()) == []
    assert select_uids([7], 10, ImportAll()) == []


def test_select_uids_keeps_only_uids_above_the_cursor() -> None:
    assert select_uids([9, 10, 11, 15], 10, ImportAll()) == [11, 15]


def test_select_uids_last_n_keeps_the_newest_on_first_import() -> None:
    assert select_uids([1, 2, 3, 4, 5], 0, ImportLastN(count=2)) == [4, 5]


def test_select_uids_last_n_exactly_all() -> None:
    assert select_uids([1, 2, 3], 0, ImportLastN(count=3)) == [1, 2, 3]


def test_select_uids_last_zero_imports_nothing_at_first() -> None:
    assert select_uids([1, 2, 3], 0, ImportLastN(count=0)) == []


def test_select_uids_last_n_applies_to_the_first_import_only() -> None:
    assert select_uids([11, 12, 13, 14], 10, ImportLastN(count=1)) == [11, 12, 13, 14]


def test_select_uids_last_n_larger_than_the_folder_takes_everything() -> None:
    assert select_uids([1, 2, 3], 0, ImportLastN(count=5)) == [1, 2, 3]


def test_select_uids_since_window_does_not_filter_locally() -> None:
    """The date is applied by the server's SEARCH; locally only the cursor matters."""
    assert select_uids([1, 2], 0, ImportSince(since=dt.date(2026, 2, 1))) == [1, 2]


@pytest.mark.parametrize(
    ("uids", "expected"),
    [
        ([], ""),
        ([5], "5"),
        ([1, 2, 3], "1:3"),
        ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
        ([2, 4, 6], "2,4,6"),
        ([4294967294, 4294967295], "4294967294:4294967295"),
    ],
)
def test_uid_set(uids: list[int], expected: str) -> None:
    assert uid_set(uids) == expected


def test_batches() -> None:
    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert batches([1, 2], 5) == [[1, 2]]
    assert batches([], 3) == []


def test_retention_keeps_the_first_import_from_fetching_what_it_would_delete() -> None:
    floor = retention_floor(30, NOW)
    assert floor == dt.date(2026, 10, 25)  # 24 Oct expires within the day: skipped too
    assert search_criteria(0, ImportAll(), floor) == "UID 1:* SENTSINCE 25-Oct-2026"
    since = ImportSince(since=dt.date(2026, 1, 2))
    assert search_criteria(0, since, floor) == "UID 1:* SINCE 2-Jan-2026 SENTSINCE 25-Oct-2026"
    # After the first import every new message is fetched; retention deletes it later.
    assert search_criteria(12, ImportAll(), floor) == "UID 13:*"
    assert retention_floor(None, NOW) is None
