"""The sighting update each mailbox event makes (pure)."""

from __future__ import annotations

import datetime as dt

from schemas.common import FolderRole, MessageLocation
from schemas.mailbox_event import Expunged, Moved
from services.activity_writer.mailbox_events import sighting_update

AT = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
WAS = MessageLocation(account_id="a", folder="INBOX", uidvalidity=5, uid=3)


def test_a_move_the_server_named_takes_the_sighting_to_the_new_folder_and_uid() -> None:
    event = Moved(
        location=WAS, folder="Trash", folder_role=FolderRole.TRASH, uidvalidity=9, uid=41, at=AT
    )
    assert sighting_update(event, AT)["$set"] == {
        "sightings.$.folder": "Trash",
        "sightings.$.folder_role": "trash",
        "sightings.$.uidvalidity": 9,
        "sightings.$.uid": 41,
        "updated_at": AT,
    }


def test_a_move_without_copyuid_is_an_expunge_with_its_reason() -> None:
    update = sighting_update(Expunged(location=WAS, reason="moved", at=AT), AT)["$set"]
    assert update["sightings.$.expunged_at"] == AT
    assert update["sightings.$.expunged_reason"] == "moved"
    plain = sighting_update(Expunged(location=WAS, at=AT), AT)["$set"]
    assert plain["sightings.$.expunged_reason"] == "expunged"
