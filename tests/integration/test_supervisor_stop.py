"""An account stopped while its connection fails at the same moment stays stopped.

``asyncio.wait_for`` (Python 3.11) raises what the awaited task raised, not the
cancellation, when both end at once: a stop (a rebalance, the session guard) that closed
a connection mid-handshake came back as a connection reset. The supervisor took it for
a failure and retried: the account ran on a replica that had given it up, and the stop
waited for it for ever (bench/scale.py: a storm at N = 10,000 hung)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from schemas.account import AccountRecord
from schemas.mailbox_state import AccountStatus
from services.common.oauth2 import AccessToken, TokenProvider
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.supervisor import Supervisor
from services.fetcher.worker import AccountWorker
from services.fetcher.worker_start import Start
from services.imap import Credentials
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class _ResetOnStop:
    """A worker whose connection fails as it is stopped: it raises a reset instead of
    the cancellation, as ``wait_for`` hands it on."""

    def __init__(self, runs: list[str], started: asyncio.Event):
        self._runs = runs
        self._started = started

    async def run(self) -> None:
        self._runs.append("run")
        self._started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionResetError(104, "Connection reset by peer") from None


async def test_an_account_stopped_as_its_connection_fails_is_not_retried(env: Env) -> None:
    user = env.mail_user("stopreset")
    record = env.account(user)
    runs: list[str] = []
    started = asyncio.Event()

    def make_worker(
        rec: AccountRecord, credential: str | AccessToken, start: Start
    ) -> AccountWorker:
        return cast(AccountWorker, _ResetOnStop(runs, started))

    settings = FetcherSettings(**env.overrides)
    async with env.mongo() as db, TokenProvider(env.box) as tokens:
        states = StateStore(db, "replica-stop")
        supervisor = Supervisor(settings, states, Credentials(env.box, tokens), make_worker)
        await supervisor.apply(record)
        await asyncio.wait_for(started.wait(), 30)
        # Before the fix: retried after the reset, and the stop never returned.
        await asyncio.wait_for(supervisor.stop([record.account_id]), 30)
        await states.settle()
        assert runs == ["run"]
        await states.flush()
        doc = await db.account_states.find_one({"_id": record.account_id})
        assert doc is None or doc.get("status") != AccountStatus.ERROR.value
