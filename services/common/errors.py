"""The root of every mailsync exception.

    MailsyncError                 retriable = False
    ├── ConfigurationError        a setting is missing or wrong: fix it and restart
    ├── CertificateRejected       a server's TLS certificate does not verify
    ├── TransientError            retriable = True: a server is away; retry with backoff
    └── (each service's errors.py adds its own below these)

Retry loops read ``retriable``; they never switch on the class. Other libraries'
exceptions are mapped to these in one place, :mod:`services.common.retry`.
"""

from __future__ import annotations

from typing import ClassVar


class MailsyncError(Exception):
    retriable: ClassVar[bool] = False


class ConfigurationError(MailsyncError):
    """A setting is missing or invalid. The message names the variable to set."""


class CertificateRejected(MailsyncError):
    """A server's TLS certificate does not verify (expired, self-signed, another host's):
    the server's certificate or the trusted CAs must change; retrying will not help."""


class TransientError(MailsyncError):
    """A dependency (broker, database, mail server) did not answer; it will be retried."""

    retriable: ClassVar[bool] = True
