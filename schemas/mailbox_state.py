"""What the fetcher keeps in MongoDB: folder cursors and account states."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas._base import Model
from schemas.common import FolderRole


class FolderCursor(Model):
    """Collection ``folder_cursors``: how far a folder has been published (acks=all).

    ``_id`` is ``"{account_id}/{folder}"``. Advanced only after Kafka acknowledged
    every message up to ``last_uid``.
    """

    schema_version: Literal[1] = 1
    id: str = Field(alias="_id")
    account_id: str
    folder: str
    folder_role: FolderRole
    uidvalidity: int
    last_uid: int = Field(ge=0)
    highestmodseq: int | None = None
    exists: int = Field(default=0, ge=0, description="Messages in the folder at the last pass.")
    uids: str = Field(
        default="",
        description="UIDs published and still in the folder, as an RFC 3501 sequence-set "
        "(1:480,482:900): compact, and what expunges are found against.",
    )
    missing_uids: tuple[int, ...] = Field(
        default=(), description="UIDs the server listed but did not return; retried every pass."
    )
    updated_at: dt.datetime


class AccountStatus(StrEnum):
    PENDING_CREDENTIALS = "pending_credentials"
    PAUSED = "paused"
    CONNECTING = "connecting"
    SYNCING = "syncing"
    IDLE = "idle"
    AUTH_FAILED = "auth_failed"
    ERROR = "error"
    STOPPED = "stopped"
    # Never stored: what the API shows when no live fetcher has refreshed the state.
    NOT_RUNNING = "not_running"


class FolderProgress(Model):
    folder: str
    done: int = Field(ge=0)
    total: int = Field(ge=0)
    error: str | None = None
    error_since: dt.datetime | None = Field(
        default=None,
        description="When the folder's error was first seen; kept while the same error "
        "repeats pass after pass.",
    )


class UidValidityChange(Model):
    """A folder's UIDVALIDITY changed (RFC 3501 2.3.1.1), and what the fetcher concluded."""

    folder: str
    old_uidvalidity: int
    new_uidvalidity: int
    verdict: Literal["same", "replaced"] = Field(
        description="same: the messages were only renumbered (remapped by Message-ID, "
        "nothing refetched); replaced: another folder now, resynced."
    )
    remapped: int = Field(default=0, ge=0, description="Sightings moved to the new UIDs.")
    at: dt.datetime


class ReconcileReport(Model):
    """The last reconcile pass: server UIDs against the activities in MongoDB."""

    at: dt.datetime
    folders: int = Field(ge=0)
    refetched: int = Field(ge=0, description="UIDs published again: gaps in MongoDB.")
    flag_changes: int = Field(
        ge=0, description="Flag events found by comparison (servers without CONDSTORE)."
    )


class AccountState(Model):
    """Collection ``account_states``, ``_id`` = account id: what the API and metrics show."""

    schema_version: Literal[1] = 1
    id: str = Field(alias="_id")
    status: AccountStatus
    reason: str | None = None
    since: dt.datetime = Field(description="When the account entered this status.")
    last_sync: dt.datetime | None = None
    folders: tuple[FolderProgress, ...] = ()
    worker: str | None = Field(default=None, description="The fetcher replica syncing it.")
    heartbeat_at: dt.datetime | None = Field(
        default=None,
        description="When that replica last said it holds the account: at the status's "
        "change, and later in its own heartbeat (collection fetcher_workers), which readers "
        "take when newer. None: released, no replica runs it.",
    )
    stale_after_s: float | None = Field(
        default=None,
        description="A heartbeat older than this means no fetcher runs the account: the API "
        "shows not_running, whatever status is stored.",
    )
    uidvalidity_changes: tuple[UidValidityChange, ...] = Field(
        default=(), description="The latest UIDVALIDITY changes (at most 20), oldest first."
    )
    last_reconcile: ReconcileReport | None = None


class WorkerHeartbeat(Model):
    """Collection ``fetcher_workers``, ``_id`` = the fetcher replica (``worker`` in
    ``account_states``): one write per replica every poll interval says that every
    account state it holds is alive, however many accounts it runs (issue #16). A
    reader takes it as the state's ``heartbeat_at`` when newer (and as ``last_sync`` of
    an idle account: a live replica is watching it)."""

    schema_version: Literal[1] = 1
    id: str = Field(alias="_id")
    heartbeat_at: dt.datetime
    stale_after_s: float = Field(description="A heartbeat older than this: the replica is gone.")
