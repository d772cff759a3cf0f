"""Tombstones: what erasure leaves, which sightings it stops, when it is stale."""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas.common import MessageLocation
from schemas.tombstone import Tombstone
from services.accounts.tombstone_rules import left_by, stale, stopped

AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def loc(
    account: str = "a", folder: str = "INBOX", uidvalidity: int = 7, uid: int = 3
) -> MessageLocation:
    return MessageLocation(account_id=account, folder=folder, uidvalidity=uidvalidity, uid=uid)


def sighting(account: str, folder: str, uid: int, expunged: bool = False) -> dict[str, Any]:
    return {
        "account_id": account,
        "folder": folder,
        "uidvalidity": 7,
        "uid": uid,
        "folder_role": "inbox",
        "expunged_at": AT if expunged else None,
    }


DOC = {
    "_id": "act1",
    "message_id": "secret@example.org",
    "subject": "private",
    "sightings": [
        sighting("a", "INBOX", 3),
        sighting("a", "Archive", 9, expunged=True),
        sighting("b", "INBOX", 5),
    ],
}


def test_every_sighting_still_on_the_server_leaves_a_tombstone_without_content() -> None:
    out = left_by(DOC, None, "erased", AT)
    assert [(t.account_id, t.folder, t.uid) for t in out] == [("a", "INBOX", 3), ("b", "INBOX", 5)]
    assert {t.activity_id for t in out} == {"act1"}
    dumped = out[0].model_dump_json()
    assert "secret@example.org" not in dumped and "private" not in dumped
    assert out[0].id == "a/7/3/INBOX"


def test_trimming_one_account_tombstones_only_its_sightings() -> None:
    out = left_by(DOC, {"b"}, "retention", AT)
    assert [(t.account_id, t.uid, t.reason) for t in out] == [("b", 5, "retention")]


def test_a_tombstoned_place_is_stopped() -> None:
    tomb = Tombstone.of(loc(), "act1", "erased", AT)
    drop, new = stopped([("act1", loc()), ("act2", loc(uid=4))], [tomb], AT)
    assert drop == {0}
    assert new == []


def test_the_same_message_renumbered_is_stopped_and_tombstoned_at_its_new_place() -> None:
    tomb = Tombstone.of(loc(), "act1", "retention", AT)
    moved = loc(uidvalidity=8, uid=1)
    drop, new = stopped([("act1", moved)], [tomb], AT)
    assert drop == {0}
    assert [(t.uidvalidity, t.uid, t.reason, t.activity_id) for t in new] == [
        (8, 1, "retention", "act1")
    ]


def test_another_account_seeing_the_same_message_is_not_stopped() -> None:
    tomb = Tombstone.of(loc(account="a"), "act1", "erased", AT)
    drop, new = stopped([("act1", loc(account="b"))], [tomb], AT)
    assert drop == set() and new == []


def test_tombstones_of_uids_gone_from_the_server_are_stale() -> None:
    assert stale({3, 5, 8}, [1, 2, 5]) == [3, 8]
    assert stale(set(), [1]) == []
