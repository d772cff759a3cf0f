"""Who is calling: API tokens mapped to a user, their groups and a role (pure).

Tokens are configured as JSON, ``{"TOKEN": {"user_id": "jana", "groups": ["sales"],
"role": "user"}}``, in ``MAILSYNC_API_TOKENS`` or the file ``MAILSYNC_API_TOKENS_FILE``.
Only SHA-256 digests of the tokens are kept in memory, and a token is found by its
digest, so a lookup takes the same time whatever prefix of a real token it shares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum

from pydantic import Field, ValidationError

from schemas._base import Model
from services.activity_writer.visibility import Viewer
from services.common.errors import ConfigurationError

MIN_TOKEN_LENGTH = 16


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class Caller(Model):
    user_id: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    role: Role = Role.USER

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.user_id, frozenset(self.groups), admin=self.admin)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenTable:
    def __init__(self, callers: Mapping[str, Caller]):
        for token in callers:
            if len(token) < MIN_TOKEN_LENGTH:
                raise ConfigurationError(
                    f"API tokens must be at least {MIN_TOKEN_LENGTH} characters long"
                )
        self._by_digest = {_digest(t): c for t, c in callers.items()}

    @classmethod
    def from_json(cls, text: str, source: str) -> TokenTable:
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("expected an object of token -> caller")
            return cls({t: Caller.model_validate(c) for t, c in raw.items()})
        except (ValueError, ValidationError) as exc:
            # The message names the source, never a token.
            raise ConfigurationError(f"{source} is not a valid token table: {exc}") from None

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str) -> Caller | None:
        return self._by_digest.get(_digest(token))
