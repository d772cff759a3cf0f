"""The ledger's group commit against a real server: several records' updates as one
transaction on SecantusDB, plain bulk writes on a server that refuses transactions,
and every caller told its own outcome either way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from devservers import SecantusServer
from services.sender.group_commit import GroupCommit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Doc = dict[str, Any]


class Commands(monitoring.CommandListener):
    """The commands the client sent, by name (what the server was asked to do)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Doc]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def transactions(self) -> int:
        return sum(1 for name, _ in self.sent if name == "commitTransaction")

    def began_transaction(self) -> bool:
        return any(cmd.get("startTransaction") for _, cmd in self.sent)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SecantusServer]:
    # Its own server: failCommand failpoints are server-wide.
    with SecantusServer(tmp_path / "mongo", test_commands=True) as mongo:
        yield mongo


@pytest.fixture
async def ledger(
    server: SecantusServer,
) -> AsyncIterator[tuple[AsyncCollection[Doc], Commands]]:
    commands = Commands()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(server.uri, event_listeners=[commands])
    col = client["mailsync"]["send_requests"]
    await col.insert_many(
        [
            {"_id": "mine-1", "lease_owner": "me", "attempts": 0},
            {"_id": "mine-2", "lease_owner": "me", "attempts": 0},
            {"_id": "mine-3", "lease_owner": "me", "attempts": "not a number"},
            {"_id": "taken", "lease_owner": "another-replica", "attempts": 0},
        ]
    )
    commands.sent.clear()
    yield col, commands
    await client.close()


async def together(writes: GroupCommit, updates: dict[str, Doc]) -> list[bool | BaseException]:
    """``updates`` asked for at once while a write is under way: one batch."""
    async with writes._turn:  # the write under way
        asked = [asyncio.create_task(writes.update(rid, u)) for rid, u in updates.items()]
        await asyncio.sleep(0)  # all of them queue behind it
    return await asyncio.gather(*asked, return_exceptions=True)


async def test_distinct_updates_commit_as_one_transaction_and_each_learns_its_outcome(
    ledger: tuple[AsyncCollection[Doc], Commands],
) -> None:
    col, commands = ledger
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
    assert commands.transactions() == 1
    docs = {d["_id"]: d async for d in col.find()}
    assert docs["mine-1"]["sent_uid"] == 1 and docs["mine-2"]["sent_uid"] == 2
    assert "state" not in docs["taken"]


async def test_a_write_error_undoes_the_transaction_and_only_its_update_fails(
    ledger: tuple[AsyncCollection[Doc], Commands],
) -> None:
    col, _ = ledger
    writes = GroupCommit(col, "me")
    # Distinct updates (the same one for several records goes as one update_many).
    bump = {rid: {"$inc": {"attempts": 1}, "$set": {"k": rid}} for rid in ("mine-1", "mine-2")}
    outcome = await together(writes, {**bump, "mine-3": {"$inc": {"attempts": 1}}})
    assert outcome[:2] == [True, True]
    assert isinstance(outcome[2], BulkWriteError)
    # Written once each: the transaction was undone, then each update went on its own.
    docs = {d["_id"]: d async for d in col.find()}
    assert docs["mine-1"]["attempts"] == 1 and docs["mine-2"]["attempts"] == 1
    assert docs["mine-3"]["attempts"] == "not a number"


async def test_a_server_without_transactions_gets_plain_writes_from_then_on(
    ledger: tuple[AsyncCollection[Doc], Commands],
) -> None:
    """MongoDB without a replica set refuses transactions (IllegalOperation): nothing
    is lost, and it is not asked again."""
    col, commands = ledger
    await col.database.client.admin.command(
        {
            "configureFailPoint": "failCommand",
            "mode": {"times": 1},
            "data": {
                "failCommands": ["update"],
                "errorCode": 20,
                "errmsg": "Transaction numbers are only allowed on a replica set member or mongos",
            },
        }
    )
    writes = GroupCommit(col, "me")
    first = await together(
        writes,
        {"mine-1": {"$set": {"n": 1}}, "mine-2": {"$set": {"n": 2}}, "taken": {"$set": {"n": 9}}},
    )
    assert first == [True, True, False]
    assert commands.began_transaction() and commands.transactions() == 0
    commands.sent.clear()
    again = await together(writes, {"mine-1": {"$set": {"n": 3}}, "mine-2": {"$set": {"n": 4}}})
    assert again == [True, True]
    assert not commands.began_transaction()
    docs = {d["_id"]: d async for d in col.find()}
    assert docs["mine-1"]["n"] == 3 and docs["mine-2"]["n"] == 4


async def test_any_other_refusal_reaches_every_caller(
    ledger: tuple[AsyncCollection[Doc], Commands],
) -> None:
    col, _ = ledger
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
