"""What can go wrong when sending, as verdicts the dispatcher acts on.

    MailsyncError                       (services.common.errors)
    ├── SendRefused                     retriable = False: nothing was sent, never will be
    │   └── Unauthorised                the user may not send this through this account
    ├── SmtpFailure                     ``retriable`` per reply: 4xx/network yes, 5xx no;
    │                                   ``maybe_delivered``: the link died during DATA
    └── FilingFailed                    retriable = True: sent, but not yet in Sent

The dispatcher reads ``retriable``; it never switches on the class.
"""

from __future__ import annotations

from services.common.errors import MailsyncError


class SendRefused(MailsyncError):
    """The request cannot be sent as asked (unknown account, no SMTP settings...)."""


class Unauthorised(SendRefused):
    """The requesting user may not send through this account or from this address."""


class SmtpFailure(MailsyncError):
    """The SMTP server (or the way to it) did not take the message."""

    def __init__(
        self,
        reason: str,
        *,
        retriable: bool,
        reply: str | None = None,
        maybe_delivered: bool = False,
        last_step: str | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply
        # DATA began and no reply came: resending could deliver twice (RFC 1047).
        self.maybe_delivered = maybe_delivered
        self.last_step = last_step  # the transcript's last step, when maybe_delivered
        # An instance attribute: the same class is transient or permanent per reply.
        self.retriable = retriable  # type: ignore[misc]


class FilingFailed(MailsyncError):
    """The message was sent, but could not be filed in the Sent folder yet."""

    retriable = True
