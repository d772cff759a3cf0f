"""The send ledger's claims against a real database, two replicas sharing it: the
records a claim reads are kept for the next claims, and those never take a record
another replica took or finished meanwhile, nor miss a request accepted since."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from devservers import SecantusServer
from schemas.common import Address
from schemas.send_request import SendRequest, SendState
from services.sender.ledger import SendLedger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LEASE = dt.timedelta(seconds=60)


def request(n: int) -> tuple[SendRequest, str]:
    req = SendRequest(
        request_id=f"req-{uuid.uuid4().hex[:12]}-{n}",
        account_id="info",
        sender=Address(address="info@example.com"),
        requested_by="petr",
        to=(Address(address="zuzana@example.com"),),
        subject=f"Faktura {n}",
        text_body="Dobrý den",
        requested_at=dt.datetime.now(dt.UTC),
    )
    return req, f"<{req.request_id}@example.com>"


@pytest.fixture
async def db(secantus: SecantusServer) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(secantus.uri, tz_aware=True)
    yield client[f"ledger-{uuid.uuid4().hex[:10]}"]
    await client.close()


async def test_kept_records_taken_or_finished_elsewhere_are_not_claimed_again(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    ours, theirs = SendLedger(db, "replica-1", LEASE), SendLedger(db, "replica-2", LEASE)
    await ours.ensure_indexes()
    await ours.accept([request(n) for n in range(3)])
    first = await ours.claim_due(1)  # reads all three, takes one, keeps two
    assert len(first) == 1
    taken = await theirs.claim_due(2)  # the other replica takes the two we keep
    assert {r.id for r in taken}.isdisjoint({first[0].id})
    done = await theirs.advance(taken[0], SendState.FAILED, reason="refused")
    await theirs.settle(done, done.unpublished)  # finished: free, but nothing to do
    assert await ours.claim_due(2) == []  # one finished, one held: neither is ours
    records = {r.id: r for r in [await ours.get(t.id) for t in taken] if r is not None}
    assert records[taken[0].id].state is SendState.FAILED
    assert records[taken[1].id].lease_owner == "replica-2"


async def test_a_request_accepted_after_a_read_is_claimed_at_the_next_claim(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    ledger = SendLedger(db, "replica-1", LEASE)
    await ledger.ensure_indexes()
    await ledger.accept([request(0)])
    assert len(await ledger.claim_due(4)) == 1
    assert await ledger.claim_due(4) == []  # nothing more is due
    ((late, _),) = await ledger.accept([request(1)])
    assert [r.id for r in await ledger.claim_due(4)] == [late.id]
