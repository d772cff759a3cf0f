"""Shared runtime of every service; no business logic lives here.

- :mod:`.settings`  the ``MAILSYNC_`` settings base
- :mod:`.lifecycle` ``start -> run -> cleanup(failed)`` and graceful shutdown
- :mod:`.kafka`     producer, consumer and topic factories (from :mod:`schemas.topics`)
- :mod:`.mongo`     the AsyncMongoClient factory
- :mod:`.blobs`     the GridFS blob store for large messages
- :mod:`.secrets`   encryption of account secrets at rest
- :mod:`.oauth2`    OAuth2 access tokens (refresh-token grant) and SASL XOAUTH2/OAUTHBEARER
- :mod:`.smtp_auth` SMTP AUTH with an account's password or OAuth2 token
- :mod:`.errors`    the root of every mailsync exception
- :mod:`.loopback`  is a host this machine (where plaintext is allowed)
"""

from services.common.errors import MailsyncError
from services.common.lifecycle import Service, run_services
from services.common.settings import CommonSettings

__all__ = ["CommonSettings", "MailsyncError", "Service", "run_services"]
