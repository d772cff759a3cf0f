"""The settings base of every service: ``MAILSYNC_*`` environment variables, frozen."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from schemas.topics import TopicSpec
from services.common.kafka_settings import KafkaSettings
from services.common.secret_files import SecretFilesSource

log = logging.getLogger("mailsync.settings")


class CommonSettings(KafkaSettings):
    """Settings every service reads. Unset Kafka/Mongo means "embedded" for ``mailsync run``."""

    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments, then the environment, then MAILSYNC_<NAME>_FILE for secrets.
        return (init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings)

    mongo_uri: SecretStr | None = Field(
        default=None, description="MongoDB connection URI (may carry a password)."
    )
    mongo_database: str = "mailsync"
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) encrypting account secrets; comma-separated, newest first, "
        "to rotate.",
    )
    topic_prefix: str = Field(default="", description="Prepended to every topic name.")
    inline_limit_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Larger messages go to the blob store."
    )
    data_dir: Path = Field(default=Path(".mailsync"), description="Local state (embedded mode).")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="json: one object per line (time, level, logger, message, account_id, "
        "request_id); text: for humans (the default of `mailsync run`).",
    )
    metrics_host: str = Field(
        default="0.0.0.0", description="Address of /metrics, /livez and /readyz."
    )
    metrics_port: int = Field(
        default=9100, ge=0, le=65535, description="Port of /metrics, /livez, /readyz; 0: any."
    )
    metrics_per_account: bool = Field(
        default=False,
        description="A series per account (label `account`) in the counters and "
        "mailsync_account_status: for small installations. Off, the counters are summed "
        "over accounts: 10,000 accounts would be hundreds of thousands of series.",
    )
    lag_interval_s: float = Field(
        default=15.0, gt=0, description="How often consumer lag is read from the broker."
    )
    shutdown_timeout_s: float = Field(
        default=20.0, description="Shorter than the pod's terminationGracePeriodSeconds."
    )
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="This replica's stable name (its pod name): its static membership "
        "(KIP-345) of the fetcher's and sender's consumer groups, so a restart moves "
        "nothing. Unique per replica; unset: dynamic membership.",
    )

    oauth2_refresh_margin_s: float = Field(
        default=60.0,
        ge=0,
        description="An OAuth2 access token is refreshed this long before it expires.",
    )
    oauth2_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of a request to an OAuth2 token endpoint."
    )

    def topic(self, spec: TopicSpec) -> str:
        return f"{self.topic_prefix}{spec.name}"

    def require_kafka(self) -> str:
        from services.common.errors import ConfigurationError

        if not self.kafka_bootstrap:
            raise ConfigurationError("MAILSYNC_KAFKA_BOOTSTRAP is not set")
        return self.kafka_bootstrap

    def require_mongo(self) -> str:
        from services.common.errors import ConfigurationError

        if self.mongo_uri is None:
            raise ConfigurationError("MAILSYNC_MONGO_URI is not set")
        return self.mongo_uri.get_secret_value()

    def log_startup(self, service: str) -> None:
        """Log the effective settings once; SecretStr fields print as '**********'."""
        shown = {k: (str(v) if isinstance(v, SecretStr) else v) for k, v in self}
        log.info("%s settings: %s", service, shown)


def invalid_settings(exc: ValidationError) -> str:
    """One line for the operator: each problem with the variable it comes from.

    Never the value: pydantic's own text repeats the input, and the input of a model
    check is every setting, passwords included.
    """
    problems: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        where = error["loc"]
        problems.append(f"MAILSYNC_{str(where[0]).upper()}: {message}" if where else message)
    return "; ".join(problems)
