"""How an account's worker starts (what :class:`.supervisor.Supervisor` tells the worker)."""

from __future__ import annotations

from dataclasses import dataclass

from services.fetcher.account_cursors import AccountCursors
from services.fetcher.cursor_preload import Known


@dataclass(frozen=True)
class Start:
    """How a worker starts: its account's first run here (a *handoff*, paced as such by
    :mod:`.login_pacer`) or a retry after a failure.

    ``known_cursors``: the cursors already read for the first run (``cursor_preload``).
    ``cursors``: a retry's, the account's cursors as the run before left them. That run
    was their only writer (:mod:`.account_cursors`) and every write of it had ended when
    it did, so they are what MongoDB holds, or behind it where a write failed without
    an answer (then a few messages are published again, never skipped). A reconnect
    storm (a server restart: every account retries at once) reads no cursor: it read
    two per account (bench/scale.py, run 12's profile: 18% of the fetcher's samples).
    """

    handoff: bool
    known_cursors: Known | None = None
    cursors: AccountCursors | None = None
