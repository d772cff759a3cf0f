"""Account secrets encrypted at rest with ``MAILSYNC_SECRET_KEY`` (Fernet, with rotation).

The key setting holds one or more Fernet keys, comma-separated, newest first: new
secrets are encrypted with the first, and any of them decrypts (MultiFernet).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from services.common.errors import ConfigurationError, MailsyncError


class SecretDecryptError(MailsyncError):
    """A secret was encrypted with a key we no longer have: supply the old key or re-enter it."""


class SecretBox:
    def __init__(self, keys: SecretStr | None):
        if keys is None:
            raise ConfigurationError(
                "MAILSYNC_SECRET_KEY is not set (make one with `mailsync secret-key`)"
            )
        try:
            fernets = [Fernet(k.strip()) for k in keys.get_secret_value().split(",") if k.strip()]
        except ValueError as exc:
            raise ConfigurationError(f"MAILSYNC_SECRET_KEY is not a Fernet key: {exc}") from None
        if not fernets:
            raise ConfigurationError("MAILSYNC_SECRET_KEY is empty")
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, clear: str) -> str:
        return self._fernet.encrypt(clear.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretDecryptError(
                "account secret cannot be decrypted with any configured key"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretDecryptError(
                "account secret cannot be decrypted with any configured key"
            ) from None
