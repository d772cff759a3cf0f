"""Fetcher errors.

MailsyncError
├── AuthenticationFailed   the server refused the credentials: state auth_failed,
│                          no retry until the account record changes
├── FolderError            one folder cannot be synced (\\Noselect, vanished):
│                          recorded on that folder, the rest of the account goes on
├── InsecureConnection     plaintext IMAP to a non-loopback host: fix the account
└── TransientError         retriable = True
    └── ImapUnavailable    connection refused, reset, timed out, BYE: retried with backoff
"""

from __future__ import annotations

from services.common.errors import MailsyncError, TransientError


class AuthenticationFailed(MailsyncError):
    """Wrong password or app password: the user or an admin must re-enter it."""


class FolderError(MailsyncError):
    """A folder cannot be selected or read; the operator should check it exists."""

    def __init__(self, folder: str, reason: str):
        super().__init__(f"{folder}: {reason}")
        self.folder = folder
        self.reason = reason


class InsecureConnection(MailsyncError):
    """Plaintext IMAP is allowed to loopback only: choose TLS or STARTTLS for this host."""


class ImapUnavailable(TransientError):
    """The IMAP server did not answer, dropped the connection or said BYE; retried."""
