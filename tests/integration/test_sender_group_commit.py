"""The ledger's group commit against a real server: several records' updates written
together, and every caller told its own outcome (its lease still held or not, its own
write error, or the server's refusal of the whole write)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from devservers import SecantusServer
from services.sender.group_commit import GroupCommit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Doc = dict[str, Any]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SecantusServer]:
    # Its own server: failCommand failpoints are server-wide.
    with SecantusServer(tmp_path / "mongo", test_commands=True) as mongo:
        yield mongo


@pytest.fixture
async def ledger(server: SecantusServer) -> AsyncIterator[AsyncCollection[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(server.uri)
    col = client["mailsync"]["send_requests"]
    await col.insert_many(
        [
            {"_id": "mine-1", "lease_owner": "me", "attempts": 0},
            {"_id": "mine-2", "lease_owner": "me", "attempts": 0},
            {"_id": "mine-3", "lease_owner": "me", "attempts": "not a number"},
            {"_id": "taken", "lease_owner": "another-replica", "attempts": 0},
        ]
    )
    yield col
    await client.close()


async def together(writes: GroupCommit, updates: dict[str, Doc]) -> list[bool | BaseException]:
    """``updates`` asked for at once while a write is under way: one batch."""
    async with writes._turn:  # the write under way
        asked = [asyncio.create_task(writes.update(rid, u)) for rid, u in updates.items()]
        await asyncio.sleep(0)  # all of them queue behind it
    return await asyncio.gather(*asked, return_exceptions=True)


async def test_updates_written_together_each_learn_their_outcome(
    ledger: AsyncCollection[Doc],
) -> None:
    col = ledger
    writes = GroupCommit(col, "me")
    outcome = await together(
        writes,
        {
            "mine-1": {"$set": {"state": "filed", "sent_uid": 1}},
            "mine-2": {"$set": {"state": "filed", "sent_uid": 2}},
            "taken": {"$set": {"state": "filed", "sent_uid": 3}},  # not our lease
        },
    )
    assert outcome == [True, True, False]
    docs = {d["_id"]: d async for d in col.find()}
    assert docs["mine-1"]["sent_uid"] == 1 and docs["mine-2"]["sent_uid"] == 2
    assert "state" not in docs["taken"]


async def test_a_write_error_fails_only_its_own_update(
    ledger: AsyncCollection[Doc],
) -> None:
    col = ledger
    writes = GroupCommit(col, "me")
    # Distinct updates (the same one for several records goes as one update_many).
    bump = {rid: {"$inc": {"attempts": 1}, "$set": {"k": rid}} for rid in ("mine-1", "mine-2")}
    outcome = await together(writes, {**bump, "mine-3": {"$inc": {"attempts": 1}}})
    assert outcome[:2] == [True, True]
    assert isinstance(outcome[2], BulkWriteError)
    docs = {d["_id"]: d async for d in col.find()}
    assert docs["mine-1"]["attempts"] == 1 and docs["mine-2"]["attempts"] == 1
    assert docs["mine-3"]["attempts"] == "not a number"


async def test_a_refused_write_reaches_every_caller(
    ledger: AsyncCollection[Doc],
) -> None:
    col = ledger
    await col.database.client.admin.command(
        {
            "configureFailPoint": "failCommand",
            "mode": {"times": 1},
            "data": {"failCommands": ["update"], "errorCode": 13, "errmsg": "Unauthorized"},
        }
    )
    writes = GroupCommit(col, "me")
    outcome = await together(writes, {"mine-1": {"$set": {"n": 1}}, "mine-2": {"$set": {"n": 2}}})
    assert all(isinstance(o, OperationFailure) and o.code == 13 for o in outcome)
    assert await col.count_documents({"n": {"$exists": True}}) == 0


async def test_different_updates_written_together_do_what_each_does_alone(
    ledger: AsyncCollection[Doc],
) -> None:
    col = ledger
    start = {"lease_owner": "me", "state": "sending", "unpublished": ["sent"], "reason": "x"}
    updates: dict[str, Doc] = {
        "filed": {
            "$set": {"state": "filed", "sent_uid": 7, "reason": None, "smtp_reply": "$250 ok"},
            "$currentDate": {"updated_at": True},
            "$addToSet": {"unpublished": {"$each": ["sent", "filed"]}},
        },
        "settled": {"$set": {"lease_until": None}, "$pull": {"unpublished": {"$in": ["sent"]}}},
        "sending": {"$set": {"state": "sending", "attempts": 0}},
    }
    await col.insert_many(
        [{"_id": f"{how}-{rid}", **start} for rid in updates for how in ("together", "alone")]
    )
    writes = GroupCommit(col, "me")
    outcome = await together(writes, {f"together-{rid}": u for rid, u in updates.items()})
    assert outcome == [True, True, True]
    for rid, update in updates.items():
        await col.update_one({"_id": f"alone-{rid}"}, update)
    docs = {d.pop("_id"): d async for d in col.find({}, {"updated_at": 0})}
    for rid in updates:
        assert docs[f"together-{rid}"] == docs[f"alone-{rid}"]
    assert docs["together-filed"]["unpublished"] == ["sent", "filed"]
    assert docs["together-settled"]["unpublished"] == []
    assert "sent_uid" not in docs["together-settled"]  # fields others set are left alone
