"""Dedup settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings


class DedupSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", frozen=True, extra="ignore")

    dedup_app_id: str = Field(
        default="mailsync-dedup",
        description="faust application id: the consumer group and the table changelog's name.",
    )
    dedup_session_timeout_s: float = Field(default=10.0, gt=0)
    dedup_fetch_max_wait_ms: int = Field(
        default=100,
        gt=0,
        description="How long the broker may hold a Fetch that finds no data (faust's "
        "own default is 1500 ms; see services/dedup/transport.py).",
    )
    dedup_wait_empty_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a stopping worker, or one whose partitions are revoked, waits "
        "for the events its agents hold to be acked; those still unacked are read again by "
        "the partition's next owner (services/dedup/transport.py). Keep it below the "
        "shutdown timeout.",
    )
    dedup_table_store: Literal["memory", "rocksdb"] = Field(
        default="rocksdb",
        description="Where the sightings table lives: RocksDB on disk under data_dir "
        "(rocksdict; memory stays bounded, a restart on the same disk reads only the "
        "changelog written since, and files ahead of a lost changelog are rebuilt from it) "
        "or memory (the whole changelog read at every start: minutes at a million "
        "fingerprints, and the memory grows with them).",
    )
    dedup_processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="faust's processing guarantee: exactly_once wraps each partition's "
        "output and offsets in a Kafka transaction (KIP-98). Measured and not adopted: with "
        "faust-streaming 0.15.3 it stalls dedup (bench/RESULTS.md, Dedup).",
    )
