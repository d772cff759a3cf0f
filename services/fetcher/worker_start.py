"""How an account's worker starts (what :class:`.supervisor.Supervisor` tells the worker)."""

from __future__ import annotations

from dataclasses import dataclass

from services.fetcher.cursor_preload import Known


@dataclass(frozen=True)
class Start:
    """How a worker starts: its account's first run here (a *handoff*, paced as such by
    :mod:`.login_pacer`) or a retry after a failure; the cursors already read for it
    (``cursor_preload``, the first run only)."""

    handoff: bool
    known_cursors: Known | None = None
