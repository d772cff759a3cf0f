"""The accounts API (``mailsync api``) and the account operations it shares with the CLI.

- :mod:`.app`         FastAPI factory and the service (common lifecycle)
- :mod:`.settings`    ``MAILSYNC_API_*``
- :mod:`.resources`   what handlers may use, opened at start
- :mod:`.auth`        the caller of a request (bearer token) | :mod:`.callers` tokens (pure)
- :mod:`.accounts`    verify (step 1), save (step 2), passwords, reads
- :mod:`.operations`  pause, resume, resync, remove, key rotation
- :mod:`.sending`     send requests | :mod:`.status` the status page's data
- :mod:`.store`       account records in MongoDB and on the accounts topic
- :mod:`.verify`      IMAP/SMTP login and preview (I/O)
- pure: :mod:`.presets` :mod:`.verify_errors` :mod:`.permissions`
- :mod:`.routers`     one router per resource | :mod:`.cli` ``mailsync accounts ...``
"""

from services.api.app import ApiApp, create_app
from services.api.settings import ApiSettings

__all__ = ["ApiApp", "ApiSettings", "create_app"]
