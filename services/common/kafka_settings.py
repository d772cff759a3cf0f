"""How mailsync reaches Kafka: the ``MAILSYNC_KAFKA_*`` settings every service shares.

The embedded default and dev use PLAINTEXT on loopback. Production clusters (Strimzi)
use TLS and SASL: ``security_protocol`` with SASL PLAIN, SCRAM-SHA-256/512 or
OAUTHBEARER (client-credentials token endpoint), a CA file, and a client certificate
and key for mutual TLS. Every secret is a ``SecretStr``, from the environment or, with
``MAILSYNC_<NAME>_FILE``, from a mounted file (:mod:`.secret_files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from schemas.topics import DURABILITY

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
Compression = Literal["none", "gzip", "lz4", "zstd"]


class KafkaSettings(BaseSettings):
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers, host:port[,host:port]."
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER."
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle the broker's certificate is checked against."
    )
    kafka_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS."
    )
    kafka_key_file: Path | None = Field(default=None, description="Its private key (PEM).")
    kafka_key_password: SecretStr | None = None
    kafka_oauth_token_url: str | None = Field(
        default=None, description="OAUTHBEARER: the token endpoint (client-credentials grant)."
    )
    kafka_oauth_client_id: str | None = None
    kafka_oauth_client_secret: SecretStr | None = None
    kafka_oauth_scope: str = ""
    kafka_compression: Compression = Field(
        default="none",
        description="Compression of the record batches mailsync produces (every producer, "
        "dedup's included): none, gzip, lz4 or zstd (lz4 and zstd through cramjam, "
        "aiokafka's extra). Consumers read any of them.",
    )
    kafka_create_topics: bool = Field(
        default=True,
        description="Create missing registry topics at start (embedded, dev). Off where "
        "Strimzi KafkaTopics own them: a missing topic is then a readiness failure.",
    )
    # The defaults are the embedded cluster's; the prod overlay sets the registry's.
    kafka_replication_factor: int = Field(
        default=DURABILITY["embedded"].replicas,
        ge=1,
        description="Replicas of the topics mailsync creates itself (faust's changelog too).",
    )
    kafka_min_insync_replicas: int = Field(
        default=DURABILITY["embedded"].min_insync_replicas,
        ge=1,
        description="min.insync.replicas of the topics mailsync creates.",
    )

    @property
    def kafka_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_sasl(self) -> bool:
        return self.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Half a configuration is an error at start, naming what to set."""
        missing: list[str] = []
        if self.kafka_sasl:
            if self.kafka_sasl_mechanism is None:
                missing.append("MAILSYNC_KAFKA_SASL_MECHANISM")
            elif self.kafka_sasl_mechanism == "OAUTHBEARER":
                if not self.kafka_oauth_token_url:
                    missing.append("MAILSYNC_KAFKA_OAUTH_TOKEN_URL")
                if not self.kafka_oauth_client_id:
                    missing.append("MAILSYNC_KAFKA_OAUTH_CLIENT_ID")
                if self.kafka_oauth_client_secret is None:
                    missing.append("MAILSYNC_KAFKA_OAUTH_CLIENT_SECRET")
            else:
                if not self.kafka_sasl_username:
                    missing.append("MAILSYNC_KAFKA_SASL_USERNAME")
                if self.kafka_sasl_password is None:
                    missing.append("MAILSYNC_KAFKA_SASL_PASSWORD")
        if (self.kafka_cert_file is None) != (self.kafka_key_file is None):
            missing.append("both MAILSYNC_KAFKA_CERT_FILE and MAILSYNC_KAFKA_KEY_FILE")
        if self.kafka_cert_file is not None and not self.kafka_tls:
            missing.append("MAILSYNC_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL for the certificate")
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            missing.append("MAILSYNC_KAFKA_MIN_INSYNC_REPLICAS <= the replication factor")
        if missing:
            protocol = self.kafka_security_protocol
            raise ValueError(f"Kafka ({protocol}) needs " + ", ".join(missing))
        return self
