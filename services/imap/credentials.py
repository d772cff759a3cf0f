"""What an account logs in with: its decrypted password, or a fresh OAuth2 access token.

Asked on every connect, so a reconnect after the access token expired refreshes it
(the token provider caches it in memory until shortly before it expires).
"""

from __future__ import annotations

from schemas.account import AccountRecord, OAuth2Secret
from services.common.oauth2 import AccessToken, TokenProvider
from services.common.secrets import SecretBox


class Credentials:
    def __init__(self, box: SecretBox, tokens: TokenProvider):
        self._box = box
        self._tokens = tokens

    async def login(self, record: AccountRecord) -> str | AccessToken:
        """The password or access token of ``record`` (which has a secret).

        Raises :class:`~services.common.oauth2.OAuth2Revoked` when the refresh token was
        revoked, and the provider's other errors.
        """
        secret = record.secret
        if secret is None:
            raise ValueError(f"{record.account_id} has no secret (pending credentials)")
        if isinstance(secret, OAuth2Secret):
            token = await self._tokens.access_token(record.account_id, secret)
            return token
        return self._box.decrypt(secret.ciphertext)

    def refused(self, record: AccountRecord) -> bool:
        """The mail server refused the credential. For an access token, forget it and
        return True: a token revoked early (or a clock skew) deserves one fresh try
        before the account is declared ``auth_failed``."""
        if not isinstance(record.secret, OAuth2Secret):
            return False
        self._tokens.invalidate(record.account_id)
        return True
