"""Which failures end an account's retries and which are retried (pure)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from enum import StrEnum

from services.common.errors import MailsyncError


class FailureVerdict(StrEnum):
    AUTH_FAILED = "auth_failed"  # stop until the credentials change
    CONFIG = "config"  # stop until the account record changes
    RETRY = "retry"  # back off and try again


@dataclass(frozen=True)
class Classified:
    verdict: FailureVerdict
    reason: str


def classify_failure(exc: BaseException) -> Classified:
    """Map an exception from an account's sync to what the supervisor should do."""
    from services.common.oauth2.errors import OAuth2Revoked
    from services.imap import AuthenticationFailed

    # A revoked refresh token is a refused credential like a wrong password.
    if isinstance(exc, AuthenticationFailed | OAuth2Revoked):
        return Classified(FailureVerdict.AUTH_FAILED, str(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        # A certificate that does not verify will not verify on the next try either.
        # ssl.CertificateError raised from Python code has no verify_message.
        why = getattr(exc, "verify_message", None) or str(exc)
        return Classified(FailureVerdict.CONFIG, f"TLS certificate rejected: {why}")
    if isinstance(exc, MailsyncError):
        return Classified(
            FailureVerdict.RETRY if exc.retriable else FailureVerdict.CONFIG, str(exc)
        )
    if isinstance(exc, OSError | asyncio.TimeoutError | EOFError):
        return Classified(FailureVerdict.RETRY, f"{type(exc).__name__}: {exc}".rstrip(": "))
    # An unknown failure: retry with backoff rather than give up on the mailbox.
    return Classified(FailureVerdict.RETRY, f"{type(exc).__name__}: {exc}")


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff, capped; ``jitter`` in [0, 1) spreads reconnect storms."""
    # The exponent is bounded first: 2.0 ** 1024 overflows a float.
    delay: float = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    return delay * (1 - 0.5 * jitter)
