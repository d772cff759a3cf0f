"""Account states as they stand: the stored ones, stamped by their replicas' heartbeats.

The fetcher writes an account's state when it changes and beats once per replica
(:class:`~services.fetcher.state.StateStore`); every reader (the API's views, the status
page, ``mailsync reconcile``) reads both here, so each says the same thing.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from schemas.mailbox_state import AccountState, WorkerHeartbeat
from services.api.liveness import with_heartbeat
from services.common.mongo import Document, find_in


async def live_states(
    db: AsyncDatabase[Document], account_ids: list[str]
) -> dict[str, AccountState]:
    """The states of ``account_ids`` (those stored), each with its replica's heartbeat."""
    if not account_ids:
        return {}
    states = [
        AccountState.model_validate(d)
        async for d in find_in(db["account_states"], "_id", account_ids)
    ]
    workers = sorted({s.worker for s in states if s.worker is not None})
    beats = {
        d["_id"]: WorkerHeartbeat.model_validate(d)
        async for d in find_in(db["fetcher_workers"], "_id", workers)
    }
    return {s.id: with_heartbeat(s, beats.get(s.worker) if s.worker else None) for s in states}
