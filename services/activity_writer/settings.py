"""Activity writer settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings


class WriterSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", frozen=True, extra="ignore")

    writer_group: str = Field(default="mailsync-activity-writer")
    writer_batch_size: int = Field(default=500, ge=1, le=10_000)
    writer_retention_interval_s: float = Field(
        default=3600.0, gt=0, description="How often account retention is applied."
    )
    writer_retry_cap_s: float = Field(
        default=30.0, gt=0, description="Longest pause on a DB outage."
    )
