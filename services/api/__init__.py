"""The accounts API (``mailsync api``) and the account operations it shares with the CLI.

- :mod:`.app`         FastAPI factory and the service (common lifecycle)
- :mod:`.settings`    ``MAILSYNC_API_*`` | :mod:`.errors` each with its HTTP status and code
- :mod:`.resources`   what handlers may use, opened at start
- :mod:`.auth`        the caller of a request (bearer token) | :mod:`.callers` tokens (pure)
- :mod:`.account_management`  verify (step 1), save (step 2), passwords, reads
- :mod:`.account_states`  the states as they stand, with their replicas' heartbeats
- :mod:`.operations`  pause, resume, resync, remove, key rotation
- :mod:`.sending`     send requests | :mod:`.status` the status page's data
- :mod:`.store`       account records in MongoDB and on the accounts topic
- :mod:`.verify`      IMAP/SMTP login and preview (I/O)
- OAuth2 sign-in: :mod:`.oauth2_signin` (I/O), :mod:`.oauth2_flow` and
  :mod:`.oauth2_pages` (pure), :mod:`.oauth2_models`, :mod:`.oauth2_cli`
- :mod:`.models`      request and response bodies | :mod:`.openapi` the published document
- pure: :mod:`.presets` :mod:`.verify_errors` :mod:`.permissions` :mod:`.liveness`
- :mod:`.routers`     one router per resource | :mod:`.cli` ``mailsync accounts ...``
"""

from services.api.app import ApiApp, create_app
from services.api.settings import ApiSettings

__all__ = ["ApiApp", "ApiSettings", "create_app"]
