"""Sender settings (``MAILSYNC_SENDER_*`` on top of the common ones)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings


class SenderSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", frozen=True, extra="ignore")

    sender_group: str = Field(default="mailsync-sender", description="Consumer group.")
    sender_max_attempts: int = Field(
        default=8, ge=1, description="Tries of a transiently failing send before it fails."
    )
    sender_backoff_base_s: float = Field(default=5.0, gt=0)
    sender_backoff_cap_s: float = Field(default=900.0, gt=0)
    sender_timeout_s: float = Field(default=60.0, gt=0, description="Per SMTP/IMAP command.")
    sender_lease_s: float = Field(
        default=20.0,
        ge=1,
        description="A replica's lease of a request it works on, renewed every quarter "
        "of it while the work runs: a dead replica's requests are free this long after "
        "its death.",
    )
    sender_concurrency: int = Field(
        default=32,
        ge=1,
        description="Requests in flight (32: bench/RESULTS.md, Sender, 2026-12-06, round 4).",
    )
    sender_max_bytes_in_hand: int = Field(
        default=128 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of built messages a replica holds at once, about (their "
        "attachments base64-encoded); a larger message goes alone.",
    )
    sender_connections_per_account: int = Field(
        default=4,
        ge=1,
        description="SMTP sessions, and IMAP sessions for filing, open at once per account.",
    )
    sender_session_max_messages: int = Field(
        default=100, ge=1, description="Messages sent (or filed) over one session, at most."
    )
    sender_session_max_age_s: float = Field(
        default=300.0, gt=0, description="A session is not reused once this old."
    )
    sender_poll_interval_s: float = Field(
        default=2.0, gt=0, description="How often the ledger is checked for due retries."
    )
    sender_hostname: str = Field(
        default_factory=socket.getfqdn, description="Our name in EHLO (RFC 5321 4.1.1.1)."
    )
    sender_ca_file: Path | None = Field(
        default=None, description="An extra CA to trust (a private mail server)."
    )
