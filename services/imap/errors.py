"""What can go wrong talking IMAP, as the verdicts the fetcher and the sender act on.

    MailsyncError                   (services.common.errors)
    ├── AuthenticationFailed        retriable = False: the server refused the credentials;
    │                               the fetcher marks the account auth_failed and waits
    │                               for the account record to change
    ├── FolderError                 retriable = False: one folder cannot be selected or
    │                               read (\\Noselect, vanished, APPEND refused); recorded
    │                               on that folder, the rest of the account goes on
    ├── InsecureConnection          retriable = False: plaintext IMAP (or SMTP, when an
    │                               account is verified) to a non-loopback host; fix the
    │                               account
    └── TransientError              retriable = True
        └── ImapUnavailable         retriable = True: connection refused, reset, timed
                                    out, BYE, a command failed; retried with backoff

Retry loops read ``retriable``; they never switch on the class.
"""

from __future__ import annotations

from typing import ClassVar

from services.common.errors import MailsyncError, TransientError


class AuthenticationFailed(MailsyncError):
    """Wrong password or app password: the user or an admin must re-enter it."""

    retriable: ClassVar[bool] = False


class FolderError(MailsyncError):
    """A folder cannot be selected or read; the operator should check it exists."""

    retriable: ClassVar[bool] = False

    def __init__(self, folder: str, reason: str):
        super().__init__(f"{folder}: {reason}")
        self.folder = folder
        self.reason = reason


class InsecureConnection(MailsyncError):
    """Plaintext IMAP is allowed to loopback only: choose TLS or STARTTLS for this host."""

    retriable: ClassVar[bool] = False


class ImapUnavailable(TransientError):
    """The IMAP server did not answer, dropped the connection or said BYE; retried."""

    retriable: ClassVar[bool] = True
