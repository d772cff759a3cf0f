"""The accounts API: the FastAPI application and the ``mailsync api`` service.

The service follows the common lifecycle: ``start`` opens the :class:`Resources`
handlers may use (MongoDB, the producer, the secret box, the tokens) and binds the
socket; ``run`` serves until the stop event; ``cleanup`` lets requests in flight
finish, then closes the resources. uvicorn is driven through its startup / main loop /
shutdown steps rather than ``serve()``, which would install its own signal handlers
over ours (``mailsync run`` shares one loop and one stop event among services).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from schemas.topics import ACCOUNTS
from services.api import handlers
from services.api.problem_docs import documented
from services.api.resources import Resources, open_resources
from services.api.routers import ROUTERS, docs
from services.api.settings import DEFAULT_PORT, ApiSettings
from services.common.accounts_table import AccountDirectory
from services.common.kafka import consumer

log = logging.getLogger("mailsync.api")

DESCRIPTION = """Accounts, mailboxes, activities and sending for the CRM.

Every call needs `Authorization: Bearer TOKEN` (MAILSYNC_API_TOKENS). Secrets go in
(`password`) and never come out. A non-admin asking for an account they cannot see
gets 403 whether it exists or not."""


class MailsyncApi(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """The generated document with every error as an RFC 9457 problem."""
        if self.openapi_schema is None:
            self.openapi_schema = documented(super().openapi())
        return self.openapi_schema


def create_app(resources: Resources | None = None) -> FastAPI:
    """The application; ``resources`` may be None only to render the OpenAPI document."""
    app = MailsyncApi(
        title="mailsync accounts API",
        version="1",
        description=DESCRIPTION,
        # Replaced by pages loading the packaged Swagger UI and Redoc (routers.docs).
        docs_url=None,
        redoc_url=None,
    )
    app.state.resources = resources
    for router in ROUTERS:
        app.include_router(router)
    app.mount(docs.ASSETS_PATH, docs.assets(), name="docs-assets")
    handlers.install(app)
    return app


async def _restore_accounts(settings: ApiSettings, resources: Resources) -> None:
    """Publish again the stored accounts the accounts topic lacks (a broker that lost
    its data): MongoDB is the source of truth (:mod:`services.accounts.restore`)."""
    directory = AccountDirectory(
        consumer(settings, group_id=None, client_id="mailsync-api-accounts"),
        settings.topic(ACCOUNTS),
    )
    await directory.start()
    try:
        await directory.wait_ready(timeout=60)
        restored = await resources.store.restore_topic({a.account_id: a for a in directory.all()})
    finally:
        await directory.stop()
    if restored:
        log.warning(
            "the accounts topic lacked %d stored accounts (or held older versions); "
            "published again: %s",
            len(restored),
            ", ".join(restored),
        )


class ApiApp:
    name = "api"

    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.port: int | None = None
        self._stack = contextlib.AsyncExitStack()
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.api_host}:{self.port}"

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        tokens = s.token_table()
        resources = await self._stack.enter_async_context(open_resources(s, tokens))
        await _restore_accounts(s, resources)
        family = socket.AF_INET6 if ":" in s.api_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = s.api_port if s.api_port is not None else DEFAULT_PORT
        sock.bind((s.api_host, port))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(resources),
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=int(s.shutdown_timeout_s),
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        log.info("accounts API on %s (%d callers)", self.url, len(tokens))

    async def run(self, stop: asyncio.Event) -> None:
        assert self._server is not None
        serving = asyncio.create_task(self._server.main_loop(), name="api-main-loop")
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([serving, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._server.should_exit = True
            stopped.cancel()
            await serving

    async def cleanup(self, failed: bool) -> None:
        try:
            if self._server is not None and self._server.started:
                await self._server.shutdown(sockets=[s for s in [self._socket] if s])
            elif self._socket is not None:
                self._socket.close()
        finally:
            await self._stack.aclose()


def openapi_document() -> dict[str, Any]:
    return create_app().openapi()
