"""Dedup errors: each is a verdict on one record, which then goes to the dead-letter topic.

MailsyncError
└── Untaggable               the record can never be tagged: dead-lettered with the reason
    ├── MissingMeta          no or invalid ``mailsync-meta`` header
    └── UnknownAccount       the account was removed (or never existed)
"""

from __future__ import annotations

from services.common.errors import MailsyncError


class Untaggable(MailsyncError):
    """The record is dead-lettered; look at its reason in ``mailsync.dead-letters``."""


class MissingMeta(Untaggable):
    pass


class UnknownAccount(Untaggable):
    pass
