"""The health and metrics HTTP server of a process: ``/metrics``, ``/livez``, ``/readyz``.

One per process, on ``MAILSYNC_METRICS_PORT`` (``mailsync run`` serves every service
of the process on one). It is aiohttp's server on the process's own event loop, not
prometheus-client's built-in server (a thread, which answers even when the loop is
stuck, and has no room for health endpoints): so a blocked loop fails the liveness
probe by not answering in time, which is what the probe is for.

- ``GET /metrics``: every metric of :mod:`.metrics` (Prometheus text, or OpenMetrics
  when the scraper asks for it).
- ``GET /livez``: 200 while the event loop runs its timers (it reports how late they
  fire); 503 once they stopped.
- ``GET /readyz``: 200 when every service started and Kafka and MongoDB answer
  (:mod:`.readiness`); 503 with the reasons otherwise, and from the moment shutdown
  begins.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from services.common import metrics
from services.common.dependencies import DependencyProbe
from services.common.readiness import readiness

log = logging.getLogger("mailsync.health")

TICK_S = 1.0
# Timers this late mean the loop is stuck: the liveness probe fails (and the pod restarts).
STALE_S = 15.0


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        services: Sequence[str],
        probe: DependencyProbe | None,
    ):
        self.host = host
        self.port = port
        self._services = {name: False for name in services}
        self._probe = probe
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_tick = 0.0

    async def start(self, *, any_port_if_busy: bool = False) -> None:
        """Listen; ``any_port_if_busy``: take a free port when ours is in use (local runs)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await self._listen(self.port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or not any_port_if_busy:
                await self._runner.cleanup()
                raise
            log.warning("port %d is in use; serving health and metrics on a free port", self.port)
            await self._listen(0)
        self._last_tick = asyncio.get_running_loop().time()
        self._ticker = asyncio.create_task(self._tick(), name="health-ticker")
        log.info("health and metrics on http://%s:%d/ (metrics livez readyz)", self.host, self.port)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        # Our own socket: with port 0 the kernel picks one, and we must know which.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, port), family=family)
        await web.SockSite(self._runner, sock).start()
        self.port = sock.getsockname()[1]

    def mark_started(self, name: str | None = None) -> None:
        """One service (or, without a name, every service) has started."""
        for service in [name] if name else list(self._services):
            self._services[service] = True

    def mark_stopping(self) -> None:
        self._stopping = True
        metrics.READY.set(0)

    async def stop(self) -> None:
        self.mark_stopping()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()
        if self._probe is not None:
            await self._probe.close()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            self._last_tick = loop.time()
            metrics.EVENT_LOOP_LAG.set(max(0.0, self._last_tick - before - TICK_S))

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(REGISTRY), headers={"Content-Type": content_type})

    async def _livez(self, request: web.Request) -> web.Response:
        late = asyncio.get_running_loop().time() - self._last_tick
        alive = self._ticker is not None and not self._ticker.done() and late < STALE_S
        body = {"status": "alive" if alive else "stuck", "last_tick_s_ago": round(late, 3)}
        return web.json_response(body, status=200 if alive else 503)

    async def _readyz(self, request: web.Request) -> web.Response:
        deps = await self._probe.check() if self._probe is not None else {}
        verdict = readiness(self._services, self._stopping, deps)
        metrics.READY.set(1 if verdict.ready else 0)
        return web.json_response(verdict.body, status=200 if verdict.ready else 503)
