"""One mailsync process: its services, plus the health server and the lag monitor.

Every entry point (``mailsync fetcher``..., and ``mailsync run`` with all of them)
runs its services through :func:`run_process`: the health and metrics server listens
before the services start (liveness answers during a long start, readiness says
"starting"), the consumer lag of the services' groups is measured beside them, and
the server closes last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from schemas.topics import TOPICS, topics_of
from services.common import garbage, heap, metrics
from services.common.dependencies import DependencyProbe
from services.common.health import HealthServer
from services.common.lag_monitor import ConsumerGroup, LagMonitor
from services.common.lifecycle import Service, run_services
from services.common.settings import CommonSettings


def configure_runtime() -> None:
    """The cyclic collector's thresholds (.garbage) and malloc's (.heap), once per
    process before its services start: every entry point, and the benches that run a
    service in their own process."""
    garbage.configure()
    heap.configure()


@runtime_checkable
class Consumes(Protocol):
    def consumer_groups(self) -> list[ConsumerGroup]:
        """The consumer groups this service commits offsets in, with their topics."""


async def run_process(
    services: Sequence[Service],
    settings: CommonSettings,
    stop: asyncio.Event,
    *,
    local: bool = False,
    on_listening: Callable[[HealthServer], None] | None = None,
) -> None:
    """Run ``services`` until ``stop``; ``local``: a busy metrics port is not fatal."""
    configure_runtime()
    metrics.configure(per_account=settings.metrics_per_account)
    metrics.initialise(s.name for s in services)
    groups = [g for s in services if isinstance(s, Consumes) for g in s.consumer_groups()]
    monitors: list[Service] = [LagMonitor(settings, groups)] if groups else []
    used = {t.name for s in services for t in topics_of(s.name)}
    health = HealthServer(
        settings.metrics_host,
        settings.metrics_port,
        [s.name for s in services],
        DependencyProbe(settings, [t for t in TOPICS if t.name in used]),
    )
    await health.start(any_port_if_busy=local)

    def started() -> None:
        health.mark_started()
        garbage.freeze_started()

    try:
        if on_listening is not None:
            on_listening(health)
        await run_services(
            [*services, *monitors],
            stop,
            settings.shutdown_timeout_s,
            on_started=started,
            on_stopping=health.mark_stopping,
        )
    finally:
        await health.stop()
