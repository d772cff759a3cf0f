"""An account stopped while its connection fails at the same moment stays stopped.

``asyncio.wait_for`` (Python 3.11) raises what the awaited task raised, not the
cancellation, when both end at once: a stop (a rebalance, the session guard) that closed
a connection mid-handshake came back as a connection reset. The supervisor took it for
a failure and retried: the account ran on a replica that had given it up, and the stop
waited for it for ever (bench/scale.py: a storm at N = 10,000 hung).

And an account whose cancellation ``wait_for`` hid (it returned what it awaited, which
ended at the same moment: the task goes on, to its next wait) is cancelled again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

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

    cursors = None  # what a retry would go on with: nothing

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


@contextlib.asynccontextmanager
async def _supervising(
    env: Env, replica: str, worker: object
) -> AsyncIterator[tuple[Supervisor, StateStore, AsyncDatabase[Any]]]:
    """A supervisor whose every account runs ``worker``, and its state store."""

    def make_worker(
        rec: AccountRecord, credential: str | AccessToken, start: Start
    ) -> AccountWorker:
        return cast(AccountWorker, worker)

    settings = FetcherSettings(**env.overrides)
    async with env.mongo() as db, TokenProvider(env.box) as tokens:
        states = StateStore(db, replica)
        yield Supervisor(settings, states, Credentials(env.box, tokens), make_worker), states, db


async def test_an_account_stopped_as_its_connection_fails_is_not_retried(env: Env) -> None:
    record = env.account(env.mail_user("stopreset"))
    runs: list[str] = []
    started = asyncio.Event()
    async with _supervising(env, "replica-stop", _ResetOnStop(runs, started)) as (
        supervisor,
        states,
        db,
    ):
        await supervisor.apply(record)
        await asyncio.wait_for(started.wait(), 30)
        # Before the fix: retried after the reset, and the stop never returned.
        await asyncio.wait_for(supervisor.stop([record.account_id]), 30)
        await states.settle()
        assert runs == ["run"]
        await states.flush()
        doc = await db.account_states.find_one({"_id": record.account_id})
        assert doc is None or doc.get("status") != AccountStatus.ERROR.value


class _GoesOnOnce:
    """A worker whose first cancellation is lost, as ``wait_for`` loses one in Python
    3.11 (python/cpython#86296): it goes on to a long wait, as an account goes on to
    IDLE."""

    cursors = None

    def __init__(self, started: asyncio.Event, ended: list[str]):
        self._started = started
        self._ended = ended

    async def run(self) -> None:
        self._started.set()
        with contextlib.suppress(asyncio.CancelledError):  # what wait_for did with it
            await asyncio.sleep(3600)
        try:
            await asyncio.sleep(1500)  # IDLE's 25 minutes
        finally:
            self._ended.append("ended")


async def test_an_account_that_went_on_after_its_cancellation_is_cancelled_again(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    record = env.account(env.mail_user("stoplost"))
    started, ended = asyncio.Event(), list[str]()
    async with _supervising(env, "replica-lost", _GoesOnOnce(started, ended)) as (
        supervisor,
        _,
        _,
    ):
        await supervisor.apply(record)
        await asyncio.wait_for(started.wait(), 30)
        with caplog.at_level(logging.WARNING, "mailsync.fetcher.supervisor"):
            await asyncio.wait_for(supervisor.stop([record.account_id]), 30)
        assert ended == ["ended"]
        [report] = [r.getMessage() for r in caplog.records if "still run" in r.getMessage()]
        assert "1 account task(s) still run 2 s after they were cancelled" in report
        assert f"account:{record.account_id} waits at" in report
        assert "in run" in report  # where it waited: the worker's run
