"""One account's folder cursors as this process moves them, and their settle marks.

Every cursor write of the account's worker goes through :meth:`AccountCursors.advance`:
the new cursor comes from :func:`.cursor_rules.advance`, and a settle mark records when
which last UID was published, so that reconcile tells a message lost on the way from
one the activity writer has not written yet (:func:`.reconcile.settled_uid`). The
account's two connections (INBOX on one, the other folders and housekeeping on the
other) may touch the same folder: :meth:`AccountCursors.lock` serialises each folder's
read-modify-write.

The cursors are read from MongoDB once per worker and then kept: this worker is their
only writer while it runs the account (a resync stops it before dropping them), and an
idle account's poll then costs no query (issue #16). A worker started with its cursors
already read (:mod:`.cursor_preload`, a batch of accounts at once) reads none of those.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict

from schemas.mailbox_state import FolderCursor
from services.fetcher.cursor import CursorStore
from services.fetcher.cursor_rules import Change, advance
from services.fetcher.reconcile import Mark, add_mark, settled_uid
from services.imap import Folder, FolderStatus, uid_set


class AccountCursors:
    def __init__(
        self,
        store: CursorStore,
        account_id: str,
        *,
        grace_s: float,
        known: dict[str, FolderCursor | None] | None = None,
    ):
        self._store = store
        self._account_id = account_id
        self._grace_s = grace_s
        # Per folder: when which last UID was published, to tell a gap from writer lag.
        self._marks: dict[str, list[Mark]] = {}
        # Per folder: one read-modify-write of its cursor at a time (two connections).
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Per folder: the cursor as last read or written by this worker.
        self._known: dict[str, FolderCursor | None] = {}
        for folder, cursor in (known or {}).items():
            self._first_read(folder, cursor)

    def lock(self, folder: str) -> asyncio.Lock:
        return self._locks[folder]

    async def get(self, folder: str) -> FolderCursor | None:
        if folder in self._known:
            return self._known[folder]
        cursor = await self._store.get(self._account_id, folder)
        self._first_read(folder, cursor)
        return cursor

    def _first_read(self, folder: str, cursor: FolderCursor | None) -> None:
        self._known[folder] = cursor
        # The first read in this process: what an earlier run published is settled.
        self._marks.setdefault(folder, [(-math.inf, cursor.last_uid if cursor else 0)])

    async def advance(
        self, folder: Folder, prev: FolderCursor | None, status: FolderStatus, change: Change
    ) -> FolderCursor | None:
        """Write the cursor ``change`` moves ``prev`` to (see :func:`.cursor_rules.advance`);
        None when there was nothing to write. The caller holds the folder's lock."""
        position = advance(prev, status, change)
        if position is None:
            return None
        self._marks[folder.name] = add_mark(
            self._marks.get(folder.name, ()),
            asyncio.get_running_loop().time(),
            position.last_uid,
            self._grace_s,
        )
        saved = await self._store.save(
            self._account_id,
            folder.name,
            folder.role,
            uidvalidity=position.uidvalidity,
            last_uid=position.last_uid,
            highestmodseq=position.highestmodseq,
            exists=position.exists,
            uids=uid_set(sorted(position.uids)),
            missing_uids=position.missing,
        )
        self._known[folder.name] = saved
        return saved

    def settled_uid(self, folder: str, now: float) -> int:
        """The highest UID of ``folder`` published at least the grace period ago."""
        return settled_uid(self._marks.get(folder, ()), now, self._grace_s)
