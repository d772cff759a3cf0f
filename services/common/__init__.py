"""Shared runtime of every service; no business logic lives here.

- :mod:`.settings`       the ``MAILSYNC_`` settings base | :mod:`.kafka_settings` Kafka's
- :mod:`.secret_files`   ``MAILSYNC_<NAME>_FILE`` | :mod:`.secrets` account secrets at rest
- :mod:`.lifecycle`      ``start -> run -> cleanup(failed)`` and graceful shutdown
- :mod:`.process`        one process: its services, the health server, the lag monitor
- :mod:`.kafka`          producer, consumer and topic factories (from :mod:`schemas.topics`)
- :mod:`.kafka_oauth`    OAUTHBEARER for Kafka (client-credentials grant)
- :mod:`.accounts_table` every account, read from the accounts topic (dedup, the writer)
- :mod:`.mongo`          the AsyncMongoClient factory | :mod:`.blobs` the GridFS blob store
- :mod:`.mime_layout`    a large message split into its skeleton and its big parts (pure)
- :mod:`.oauth2`         OAuth2 access tokens (refresh-token grant) and SASL XOAUTH2/OAUTHBEARER
- :mod:`.smtp_auth`      SMTP AUTH with an account's password or OAuth2 token
- operations: :mod:`.logs`, :mod:`.metrics`, :mod:`.labels`, :mod:`.health`,
  :mod:`.readiness`, :mod:`.dependencies`, :mod:`.lag`, :mod:`.lag_monitor`
- :mod:`.errors`         the root of every mailsync exception
- :mod:`.loopback`       is a host this machine (where plaintext is allowed)
"""

from services.common.errors import MailsyncError
from services.common.lifecycle import Service, run_services
from services.common.settings import CommonSettings

__all__ = ["CommonSettings", "MailsyncError", "Service", "run_services"]
