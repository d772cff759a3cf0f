"""One router per resource; each is a thin layer over the operations it calls."""

from services.api.routers import (
    accounts,
    activities,
    docs,
    mailboxes,
    oauth2,
    presets,
    send,
    status,
)

ROUTERS = (
    presets.router,
    oauth2.router,
    accounts.router,
    mailboxes.router,
    activities.router,
    send.router,
    status.router,
    docs.router,
)

__all__ = ["ROUTERS"]
