"""Operating an account: pause, resume, resync, remove (optionally purging its
activities), and re-encrypting every secret with the newest key.

Every change is a new record on the accounts topic, which the fetchers apply live: a
changed record restarts the account's task, a paused one stops it, a tombstone
removes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from schemas.account import AccountRecord, AccountSecret, OAuth2Secret
from schemas.mailbox_state import AccountStatus
from schemas.topics import ACTIVITY_EVENTS
from services.accounts.tombstones import TombstoneStore
from services.activity_writer.erasure import Eraser
from services.api.account_management import Accounts
from services.api.callers import Caller
from services.api.errors import Forbidden
from services.api.models import AccountView, RemoveResult, RotateResult
from services.api.permissions import may_manage
from services.api.resources import Resources
from services.common.secrets import SecretBox

log = logging.getLogger("mailsync.api.operations")


class Operations:
    def __init__(self, res: Resources):
        self._res = res
        self._accounts = Accounts(res)

    async def _managed(self, caller: Caller, account_id: str) -> AccountRecord:
        record = await self._accounts.find(caller, account_id)
        if not may_manage(caller, record):
            raise Forbidden("only an admin or the account's owner may do this")
        return record

    async def _save(self, record: AccountRecord, **changes: object) -> AccountView:
        updated = record.model_copy(update={**changes, "updated_at": _now()})
        await self._res.store.save(updated)
        states = await self._accounts.states([record.account_id])
        return AccountView.of(updated, states.get(record.account_id))

    async def pause(self, caller: Caller, account_id: str) -> AccountView:
        return await self._save(await self._managed(caller, account_id), paused=True)

    async def resume(self, caller: Caller, account_id: str) -> AccountView:
        """Resume; also the way to retry an account stopped by ``auth_failed`` or an error."""
        return await self._save(await self._managed(caller, account_id), paused=False)

    async def resync(self, caller: Caller, account_id: str) -> AccountView:
        """Import the account again from the start (within its import window), messages
        erased on request included.

        The account is paused first, and its cursors dropped only once the fetcher has
        stopped it, so no running sync writes a cursor back. Activities stay single:
        re-imported messages land on the same activity ids and sightings. The account's
        tombstones go too: mail erased (or expired) while still on the server comes back,
        as asked; the initial import still skips what retention would delete at once.
        """
        record = await self._managed(caller, account_id)
        if not record.paused and not record.pending_credentials:
            asked = _now()
            await self._save(record, paused=True)
            await self._wait_stopped(account_id, asked)
        await self._res.db["folder_cursors"].delete_many({"account_id": account_id})
        await self._res.db["processed_queue"].delete_many({"account_id": account_id})
        await self._res.db["account_states"].delete_one({"_id": account_id})
        erased = await TombstoneStore(self._res.db).forget_account(account_id)
        log.warning(
            "%s: cursors dropped for a resync; %d tombstones dropped: mail erased while still "
            "on the server is imported again",
            account_id,
            erased,
        )
        return await self._save(record)

    async def _wait_stopped(self, account_id: str, since: dt.datetime) -> None:
        """Until the fetcher reports the account paused (bounded: it may not be running)."""
        states = self._res.db["account_states"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._res.settings.api_resync_wait_s
        while loop.time() < deadline:
            doc = await states.find_one({"_id": account_id}, {"status": 1, "since": 1})
            if doc is None:
                return  # never started: nothing to wait for
            if doc["status"] == AccountStatus.PAUSED and doc["since"] >= since:
                return
            await asyncio.sleep(0.2)
        log.warning("%s: no fetcher confirmed the pause; resyncing anyway", account_id)

    async def remove(self, caller: Caller, account_id: str, *, purge: bool) -> RemoveResult:
        """Remove the account; with ``purge`` also its activities (those other accounts
        hold too only lose this account's sightings)."""
        await self._managed(caller, account_id)
        await self._res.store.delete(account_id)
        db = self._res.db
        await db["folder_cursors"].delete_many({"account_id": account_id})
        await db["processed_queue"].delete_many({"account_id": account_id})
        await db["account_states"].delete_one({"_id": account_id})
        # Tombstones go with the account: nothing of it is imported any more.
        await TombstoneStore(db).forget_account(account_id)
        if not purge:
            return RemoveResult(account_id=account_id)
        eraser = Eraser(
            db,
            self._res.blobs,
            self._res.producer,
            self._res.settings.topic(ACTIVITY_EVENTS),
        )
        done = await eraser.remove_account(
            account_id, None, f"account {account_id} removed", tombstone=None
        )
        return RemoveResult(
            account_id=account_id,
            activities_deleted=done.deleted,
            activities_kept_for_other_accounts=done.trimmed,
        )

    async def rotate_key(self, caller: Caller) -> RotateResult:
        """Re-encrypt every secret with the newest key of ``MAILSYNC_SECRET_KEY`` and
        republish; afterwards the older keys can be dropped from the setting."""
        if not caller.admin:
            raise Forbidden("only admins rotate the secret key")
        count = 0
        for record in await self._res.store.all():
            if record.secret is None:
                continue
            await self._save(record, secret=reencrypted(record.secret, self._res.box))
            count += 1
        log.info("secret key rotated: %d accounts re-encrypted", count)
        return RotateResult(accounts_rotated=count)


def reencrypted(secret: AccountSecret, box: SecretBox) -> AccountSecret:
    """``secret`` with every ciphertext it holds re-encrypted with the newest key."""
    if isinstance(secret, OAuth2Secret):
        client = secret.client_secret_ciphertext
        return secret.model_copy(
            update={
                "refresh_token_ciphertext": box.rotate(secret.refresh_token_ciphertext),
                "client_secret_ciphertext": box.rotate(client) if client else None,
            }
        )
    return secret.model_copy(update={"ciphertext": box.rotate(secret.ciphertext)})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
