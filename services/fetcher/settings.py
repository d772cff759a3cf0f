"""Fetcher settings (``MAILSYNC_FETCHER_*`` on top of the common ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings
from services.imap.tls_buffer import DEFAULT_READ_BUFFER


class FetcherSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", frozen=True, extra="ignore")

    fetcher_group: str = Field(
        default="mailsync-fetcher", description="Consumer group of replicas."
    )
    fetcher_session_timeout_s: float = Field(
        default=30.0,
        ge=1,
        le=300,
        description="The accounts group's session: a replica restarted within it (same "
        "MAILSYNC_INSTANCE_ID) gets its accounts back and nothing else moves; a dead "
        "one's accounts move this long after its death.",
    )
    fetcher_batch_size: int = Field(default=200, ge=1, le=5000, description="UIDs per FETCH.")
    fetcher_checkpoint_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="While a folder imports, its cursor and progress are written at most "
        "this often (after a batch Kafka acknowledged; always at the end of the pass): "
        "a restart fetches again at most what this long imported. 0: after every batch.",
    )
    fetcher_held_mib: int = Field(
        default=128,
        ge=1,
        description="MiB of fetched mail the replica holds at once over all its imports "
        "(read from IMAP, not yet acknowledged by Kafka); past it, its connections wait. "
        "Each import holds at most about 64 MiB on its own.",
    )
    fetcher_second_connection_from: int = Field(
        default=0,
        ge=0,
        description="A folder with more messages than this to fetch (a first import) "
        "fetches on a second connection too, while the account holds fewer than its "
        "max_connections; closed when the folder is done. A second login the server "
        "refuses leaves the import on one. 0 (the default: on loopback, on 2 cores, it "
        "did not measure faster, bench/RESULTS.md, Pipeline): never.",
    )
    fetcher_poll_interval_s: float = Field(
        default=30.0, gt=0, description="How often folders other than INBOX are checked."
    )
    fetcher_idle_renew_s: float = Field(
        default=25 * 60.0,
        gt=0,
        le=29 * 60,
        description="IDLE is re-issued before 29 min (RFC 2177).",
    )
    fetcher_max_connections: int = Field(
        default=2,
        ge=1,
        le=20,
        description="IMAP connections per account at most (an account's max_connections "
        "overrides it); on a server without NOTIFY and LIST-STATUS, with 2 or more, "
        "INBOX IDLEs on its own connection.",
    )
    fetcher_reconcile_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often each account's folders are reconciled with MongoDB.",
    )
    fetcher_reconcile_grace_s: float = Field(
        default=300.0,
        ge=0,
        description="UIDs published more recently are not gaps yet (the writer's lag).",
    )
    fetcher_imap_timeout_s: float = Field(default=30.0, gt=0)
    fetcher_logins_per_s: float = Field(
        default=200.0,
        gt=0,
        description="Logins to one IMAP server host per second, past the burst: after the "
        "server restarts, the replica's accounts reconnect spread over N / this seconds.",
    )
    fetcher_login_burst: int = Field(
        default=50, ge=1, description="Logins to one IMAP server host at once before pacing."
    )
    fetcher_handoff_logins_per_s: float = Field(
        default=500.0,
        gt=0,
        description="Logins to one IMAP server host per second, past the burst, of accounts "
        "this replica starts (it took them over in a rebalance, or it started): their "
        "sessions move from another replica, the server is not restarting. Reconnects "
        "after a failure keep fetcher_logins_per_s.",
    )
    fetcher_notify: bool = Field(
        default=True,
        description=(
            "Watch every synced folder on one IDLE connection with NOTIFY (RFC 5465) "
            "where the server offers it; a second connection only for a first import."
        ),
    )
    fetcher_notify_recheck_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "With NOTIFY, every folder is checked this often anyway: for what servers do "
            "not push (a UIDVALIDITY changed in place, flags without CONDSTORE)."
        ),
    )
    fetcher_tls_read_buffer_kib: int = Field(
        default=DEFAULT_READ_BUFFER // 1024,
        ge=16,
        le=256,
        description=(
            "KiB of asyncio's TLS read buffer per IMAP connection, held for the "
            "connection's life (asyncio's own is 256): most connections wait in IDLE. "
            "A UID FETCH of 100 bodies or more reads with 256 while it runs."
        ),
    )
    fetcher_heap_trim_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Every so many seconds the fetcher gives the memory it freed back to the "
            "system (glibc malloc_trim): idle connections free their buffers all through "
            "the heap, which glibc keeps otherwise (60 made 10,000 idle accounts fit in "
            "951 MiB, bench/RESULTS.md, Scale). 0 (the default until its pauses are "
            "measured: malloc_trim holds the allocator's lock while it runs): never."
        ),
    )
    fetcher_backoff_base_s: float = Field(default=1.0, gt=0)
    fetcher_backoff_cap_s: float = Field(default=300.0, gt=0)
    fetcher_ca_file: Path | None = Field(
        default=None, description="Extra CA certificate to trust (a private mail server)."
    )
