"""One asyncio task per account, each with its own backoff: one failing account never
holds up another, and there is no global circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from schemas.account import AccountRecord
from schemas.mailbox_state import AccountStatus
from services.common import metrics
from services.common.awaiting import awaiting
from services.common.logs import account_id_var, forget_secrets, register_secret
from services.common.oauth2 import AccessToken
from services.common.retry import backoff
from services.fetcher.account_cursors import AccountCursors
from services.fetcher.classify import FailureVerdict, classify_failure
from services.fetcher.cursor_preload import Known
from services.fetcher.settings import FetcherSettings
from services.fetcher.state import StateStore
from services.fetcher.worker import AccountWorker
from services.fetcher.worker_start import Start
from services.imap import AuthenticationFailed, Credentials

log = logging.getLogger("mailsync.fetcher.supervisor")

# Python 3.11's asyncio.wait_for can hide a cancellation: when what it awaits ends at
# the same moment, it returns that and its task goes on as if never cancelled
# (python/cpython#86296, fixed in 3.12 by the rewrite in #98518), on to its next wait:
# IDLE, 25 minutes. aioimaplib awaits every command through wait_for. A stopped account
# task still running after RECANCEL_S is cancelled again, until it ends: its partition
# must not go to another replica while it may still sync (the session guard stops all
# accounts a third of the session before the broker hands them out). The first time,
# and every REPORT_EVERY-th, it is reported with where it waits.
RECANCEL_S = 2.0
REPORT_EVERY = 5


WorkerFactory = Callable[[AccountRecord, str | AccessToken, Start], AccountWorker]

# A run that lasted this long was healthy: the next failure starts the backoff afresh.
HEALTHY_RUN_S = 60.0


@dataclass
class _Running:
    record: AccountRecord
    task: asyncio.Task[None] | None


class Supervisor:
    def __init__(
        self,
        settings: FetcherSettings,
        states: StateStore,
        credentials: Credentials,
        make_worker: WorkerFactory,
    ):
        self._settings = settings
        self._states = states
        self._credentials = credentials
        self._make_worker = make_worker
        self._accounts: dict[str, _Running] = {}

    def starts_afresh(self, record: AccountRecord) -> bool:
        """Whether :meth:`apply` would start a task for ``record`` where none runs now:
        then nothing writes the account's cursors until it starts (``cursor_preload``)."""
        if record.pending_credentials or record.paused:
            return False
        current = self._accounts.get(record.account_id)
        if current is not None and current.record == record:
            return False  # left alone
        return current is None or current.task is None or current.task.done()

    async def apply(self, record: AccountRecord, cursors: Known | None = None) -> None:
        """Start, restart (the record changed) or leave alone the account's task;
        ``cursors``: its folder cursors, read just now for a batch (``cursor_preload``)."""
        current = self._accounts.get(record.account_id)
        if current is not None and current.record == record:
            return
        await self.stop([record.account_id], release=False)
        task = None
        if record.pending_credentials:
            await self._states.set(record.account_id, AccountStatus.PENDING_CREDENTIALS)
        elif record.paused:
            await self._states.set(record.account_id, AccountStatus.PAUSED)
        else:
            task = asyncio.create_task(
                self._supervise(record, cursors), name=f"account:{record.account_id}"
            )
        self._accounts[record.account_id] = _Running(record, task)

    async def stop(self, account_ids: Iterable[str], *, release: bool = True) -> None:
        """Stop these accounts and wait until their connections are closed; ``release``:
        they leave this replica (their state shows not running until another takes them)."""
        entries = [e for a in list(account_ids) if (e := self._accounts.pop(a, None)) is not None]
        tasks = [e.task for e in entries if e.task is not None]
        for task in tasks:
            task.cancel()
        await _ended(tasks)
        for entry in entries:  # gone from this replica: its status series go too
            metrics.forget_account(entry.record.account_id)
            forget_secrets(_secret_key(entry.record.account_id))  # its run ended
        self._states.forget([e.record.account_id for e in entries])
        if release and entries:
            await self._states.released([e.record.account_id for e in entries])

    async def stop_all(self) -> None:
        await self.stop(list(self._accounts))

    async def _supervise(self, record: AccountRecord, cursors: Known | None) -> None:
        # The task's own context: every line it (and the worker) logs names the account.
        account_id_var.set(record.account_id)
        acc_id = record.account_id
        loop = asyncio.get_running_loop()
        attempt = 0
        fresh_token_tried = False
        kept: AccountCursors | None = None  # the cursors as the last run left them
        while True:
            started = loop.time()
            try:
                credential = await self._credentials.login(record)
                register_secret(
                    credential.token if isinstance(credential, AccessToken) else credential,
                    key=_secret_key(acc_id),
                )
                start = Start(handoff=attempt == 0, known_cursors=cursors, cursors=kept)
                cursors = None  # this run may move them: a retry goes on with its own
                worker = self._make_worker(record, credential, start)
                kept = worker.cursors
                await worker.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    # Stopped meanwhile: asyncio.wait_for (Python 3.11) raises what the
                    # awaited task raised when both end at once (a connection reset as
                    # the stop closes it) instead of the cancellation. Retrying would run
                    # an account this replica gave up, and stop() would wait for it for
                    # ever (seen in bench/scale.py: the guard's stop during a storm hung).
                    raise asyncio.CancelledError from exc
                metrics.error("fetcher", exc)
                verdict = classify_failure(exc)
                healthy = loop.time() - started > HEALTHY_RUN_S
                attempt = 1 if healthy else attempt + 1
                fresh_token_tried = fresh_token_tried and not healthy
                if (
                    isinstance(exc, AuthenticationFailed)
                    and not fresh_token_tried
                    and self._credentials.refused(record)
                ):
                    fresh_token_tried = True
                    log.info("%s: access token refused, trying a fresh one", acc_id)
                    continue
                if verdict.verdict is FailureVerdict.AUTH_FAILED:
                    log.warning("%s: authentication failed, waiting for new credentials", acc_id)
                    await self._states.set(acc_id, AccountStatus.AUTH_FAILED, verdict.reason)
                    return
                if verdict.verdict is FailureVerdict.CONFIG:
                    log.warning(
                        "%s: stopped until its configuration changes: %s", acc_id, verdict.reason
                    )
                    await self._states.set(acc_id, AccountStatus.ERROR, verdict.reason)
                    return
                delay = backoff(
                    attempt,
                    base=self._settings.fetcher_backoff_base_s,
                    cap=self._settings.fetcher_backoff_cap_s,
                )
                log.warning("%s: %s; retry %d in %.1fs", acc_id, verdict.reason, attempt, delay)
                with contextlib.suppress(Exception):  # a database blip must not kill the task
                    await self._states.set(
                        acc_id, AccountStatus.ERROR, f"{verdict.reason} (retrying)"
                    )
                await asyncio.sleep(delay)


def _secret_key(account_id: str) -> str:
    """What the account's IMAP credential is registered under (services.common.logs)."""
    return f"imap:{account_id}"


async def _ended(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for cancelled account tasks to end, cancelling again those that run on (see
    RECANCEL_S)."""
    pending = {t for t in tasks if not t.done()}
    again = 0
    while pending:
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
        if not pending:
            break
        again += 1
        if again % REPORT_EVERY == 1:
            stuck = min(pending, key=lambda t: t.get_name())
            log.warning(
                "%d account task(s) still run %.0f s after they were cancelled: cancelled "
                "again; %s waits at:\n  %s",
                len(pending),
                again * RECANCEL_S,
                stuck.get_name(),
                "\n  ".join(awaiting(stuck)),
            )
        for task in pending:
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
