"""The one retry rule: is a failure worth retrying, and how long to wait before.

mailsync's errors say it themselves (``retriable``, :mod:`services.common.errors`); the
exceptions of the libraries at the I/O edges (IMAP, MongoDB, Kafka, TLS, sockets) are
mapped to them here, in this one place, by :func:`mailsync_error`:

- a TLS certificate that does not verify: :class:`CertificateRejected`, permanent (it
  will not verify on the next try either)
- the network (``OSError``: refused, reset, TLS record errors; ``TimeoutError``;
  ``EOFError``: closed mid-read), an IMAP connection aioimaplib gave up on, MongoDB away
  (``ConnectionFailure``: network, timeouts, server selection, a primary stepping down;
  or an error the server labels retryable), a Kafka broker away (aiokafka's retriable
  errors, its connection errors and timeouts): :class:`TransientError`
- anything else: None, not known here. A refusal (a query MongoDB rejects, a Kafka
  authorisation failure) is a bug or an operator's to fix: what to do about it is each
  caller's own choice (the fetcher retries an account's sync anyway; the writer raises).

Every retry loop asks :func:`is_retriable` and waits :func:`backoff`.
"""

from __future__ import annotations

import random
import ssl

import aioimaplib
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import ConnectionFailure, PyMongoError

from services.common.errors import CertificateRejected, MailsyncError, TransientError

# Labels MongoDB servers put on errors a retry may get past (drivers' retryable writes
# and transactions specifications).
_RETRYABLE_LABELS = ("RetryableWriteError", "TransientTransactionError")
# The exponent is bounded: 2.0 ** 1024 overflows a float.
_MAX_DOUBLINGS = 60


def mailsync_error(exc: BaseException) -> MailsyncError | None:
    """``exc`` as a mailsync error: itself when it is one, a foreign exception mapped
    (its message names its class; it is the mapped error's ``__cause__``), None when it
    is not known here."""
    if isinstance(exc, MailsyncError):
        return exc
    mapped: MailsyncError
    if isinstance(exc, ssl.SSLCertVerificationError):  # ssl.CertificateError is this class
        # Raised from Python code (a host name mismatch), it has no verify_message.
        why = getattr(exc, "verify_message", None) or str(exc)
        mapped = CertificateRejected(f"TLS certificate rejected: {why}")
    elif _transient(exc):
        mapped = TransientError(f"{type(exc).__name__}: {exc}".rstrip(": "))
    else:
        return None
    mapped.__cause__ = exc
    return mapped


def is_retriable(exc: BaseException) -> bool:
    """Whether trying again may succeed: a dependency was away, not a refusal."""
    error = mailsync_error(exc)
    return error is not None and error.retriable


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError | EOFError | aioimaplib.AioImapException):
        return True
    if isinstance(exc, PyMongoError):
        return isinstance(exc, ConnectionFailure) or any(
            exc.has_error_label(label) for label in _RETRYABLE_LABELS
        )
    if isinstance(exc, KafkaError):
        # aiokafka marks the protocol's retriable errors (not leader, request timed out,
        # coordinator moving...); a connection lost or a send timed out is a broker away.
        return bool(exc.retriable) or isinstance(exc, KafkaConnectionError | KafkaTimeoutError)
    return False


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff with equal jitter: ``base`` doubled for each ``attempt`` after
    the first, at most ``cap``, then shortened by up to half as ``jitter`` (in [0, 1))
    says, so that clients failing together do not retry together."""
    delay: float = min(cap, base * 2.0 ** min(max(0, attempt - 1), _MAX_DOUBLINGS))
    return delay * (1 - 0.5 * jitter)


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): :func:`backoff_delay` with
    a random jitter, in [d/2, d] for the exponential delay d."""
    return backoff_delay(attempt, base=base, cap=cap, jitter=random.random())
