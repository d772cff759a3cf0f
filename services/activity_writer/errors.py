"""Activity writer errors.

    MailsyncError
    └── NotAnActivity   the record can never become an activity: dead-lettered, then skipped

A database that does not answer is not an error of the record: the writer pauses
consumption and retries (backpressure) until it answers or the service is stopped.
"""

from __future__ import annotations

from services.common.errors import MailsyncError


class NotAnActivity(MailsyncError):
    """See the reason in ``mailsync.dead-letters``; fix the producer or the message."""
