"""Accounts API settings (``MAILSYNC_API_*`` on top of the common ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.api.callers import TokenTable
from services.api.oauth2_flow import Provider, ProviderId, providers
from services.common.errors import ConfigurationError
from services.common.settings import CommonSettings

DEFAULT_PORT = 8080


class ApiSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", frozen=True, extra="ignore")

    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    api_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the HTTP API; unset: 8080 for `mailsync api`, a free port for "
        "`mailsync run`.",
    )
    api_tokens: SecretStr | None = Field(
        default=None, description='JSON {"TOKEN": {"user_id", "groups", "role"}}.'
    )
    api_tokens_file: Path | None = Field(
        default=None, description="A file holding the same JSON as MAILSYNC_API_TOKENS."
    )
    api_verify_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="Per IMAP/SMTP command while verifying an account (servers delay an "
        "answer to failed logins: Dovecot up to 15 s).",
    )
    api_resync_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a resync waits for the fetcher to stop the account.",
    )
    api_max_upload_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1, description="Largest attachment accepted for upload."
    )
    # Shared with the fetcher: verifying must trust exactly what syncing will trust.
    fetcher_ca_file: Path | None = Field(
        default=None, description="Extra CA certificate to trust (a private mail server)."
    )

    # Shared with each service (same variables, same defaults; a test checks): the
    # status page reads the members and lag of the services' consumer groups.
    fetcher_group: str = Field(
        default="mailsync-fetcher", description="Consumer group of fetcher replicas."
    )
    dedup_app_id: str = Field(
        default="mailsync-dedup", description="faust application id: dedup's consumer group."
    )
    writer_group: str = Field(
        default="mailsync-activity-writer", description="The activity writer's consumer group."
    )
    sender_group: str = Field(
        default="mailsync-sender", description="Consumer group of sender replicas."
    )

    # -- OAuth2 sign-in (``/v1/accounts/oauth2/*``): one registered client per provider --
    oauth2_redirect_uri: str | None = Field(
        default=None,
        description="The callback URL registered with the providers; unset: this API's own "
        "/v1/accounts/oauth2/callback as the request reached it.",
    )
    oauth2_return_url: str | None = Field(
        default=None,
        description="The CRM page the callback redirects to (with oauth2=connected or "
        "failed); unset: the callback shows its own page.",
    )
    oauth2_state_ttl_s: float = Field(
        default=600.0, gt=0, description="How long a started sign-in may take to complete."
    )
    oauth2_microsoft_client_id: str | None = Field(
        default=None, description="Application (client) id of the Microsoft Entra app."
    )
    oauth2_microsoft_client_secret: SecretStr | None = None
    oauth2_microsoft_tenant: str = Field(
        default="organizations",
        description="Tenant id or domain; organizations: any work account; common: "
        "Outlook.com too.",
    )
    oauth2_google_client_id: str | None = None
    oauth2_google_client_secret: SecretStr | None = None
    oauth2_custom_authorize_url: str | None = None
    oauth2_custom_token_url: str | None = None
    oauth2_custom_userinfo_url: str | None = None
    oauth2_custom_client_id: str | None = None
    oauth2_custom_client_secret: SecretStr | None = None
    oauth2_custom_scope: str = "openid email"

    def oauth2_providers(self) -> dict[ProviderId, Provider]:
        return providers(
            microsoft_client_id=self.oauth2_microsoft_client_id,
            microsoft_client_secret=self.oauth2_microsoft_client_secret,
            microsoft_tenant=self.oauth2_microsoft_tenant,
            google_client_id=self.oauth2_google_client_id,
            google_client_secret=self.oauth2_google_client_secret,
            custom_authorize_url=self.oauth2_custom_authorize_url,
            custom_token_url=self.oauth2_custom_token_url,
            custom_userinfo_url=self.oauth2_custom_userinfo_url,
            custom_client_id=self.oauth2_custom_client_id,
            custom_client_secret=self.oauth2_custom_client_secret,
            custom_scope=self.oauth2_custom_scope,
        )

    def token_table(self) -> TokenTable:
        if self.api_tokens is not None and self.api_tokens_file is not None:
            raise ConfigurationError(
                "set MAILSYNC_API_TOKENS or MAILSYNC_API_TOKENS_FILE, not both"
            )
        if self.api_tokens is not None:
            return TokenTable.from_json(self.api_tokens.get_secret_value(), "MAILSYNC_API_TOKENS")
        if self.api_tokens_file is not None:
            try:
                text = self.api_tokens_file.read_text()
            except OSError as exc:
                raise ConfigurationError(f"MAILSYNC_API_TOKENS_FILE: {exc}") from None
            return TokenTable.from_json(text, "MAILSYNC_API_TOKENS_FILE")
        raise ConfigurationError(
            "no API tokens: set MAILSYNC_API_TOKENS or MAILSYNC_API_TOKENS_FILE"
        )
