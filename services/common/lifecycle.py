"""One lifecycle for every service: ``start -> run -> cleanup(failed)``.

SIGTERM and SIGINT only set the stop event; each service's ``run`` returns when it is
set, and ``cleanup`` flushes what it must within the shutdown timeout (shorter than
the pod's ``terminationGracePeriodSeconds``). ``mailsync run`` runs several services
on one loop; the first that fails stops the others and the process exits non-zero,
so Kubernetes (or the operator) restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

log = logging.getLogger("mailsync.lifecycle")


class Service(Protocol):
    name: str

    async def start(self) -> None:
        """Open clients and create topics; nothing is consumed yet."""

    async def run(self, stop: asyncio.Event) -> None:
        """Do the work until ``stop`` is set."""

    async def cleanup(self, failed: bool) -> None:
        """Flush and close everything ``start`` opened; ``failed`` says why we stop."""


async def first_failure(*loops: Coroutine[Any, Any, None]) -> None:
    """Run the loops together until all end; the first to fail stops the others and its
    error is raised as is (callers classify it), not wrapped in an ExceptionGroup."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run_services(
    services: Sequence[Service],
    stop: asyncio.Event,
    shutdown_timeout_s: float,
    *,
    on_started: Callable[[], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
) -> None:
    """Start every service, run them until ``stop`` or a failure, clean up in reverse.

    The services are independent (they meet only on topics), so they start
    concurrently: most of a start is waiting for the broker's group coordinator.
    ``on_started`` is called once every service started, ``on_stopping`` when shutdown
    begins (the health server's readiness follows them).
    Raises the first service failure after everything is cleaned up.
    """
    # Every service is cleaned up, even one whose start failed half-way: cleanup closes
    # what was opened.
    started: list[Service] = list(services)
    failure: BaseException | None = None
    try:
        log.info("starting %s", ", ".join(s.name for s in services))
        results = await asyncio.gather(*(s.start() for s in services), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if on_started is not None:
            on_started()
        tasks = {asyncio.create_task(s.run(stop), name=s.name): s for s in started}
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task, service in tasks.items():
            if task not in done:
                continue
            if task.cancelled():
                failure = failure or RuntimeError(f"{service.name} was cancelled")
            elif task.exception() is not None:
                failure = task.exception()
                log.error("%s failed: %r", service.name, failure, exc_info=failure)
        stop.set()
        if on_stopping is not None:
            on_stopping()
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=shutdown_timeout_s)
            for task in late:
                log.warning(
                    "%s did not stop in %.0fs; cancelling", task.get_name(), shutdown_timeout_s
                )
                task.cancel()
            results = await asyncio.gather(*pending, return_exceptions=True)
            for task, result in zip(pending, results, strict=True):
                if isinstance(result, Exception) and failure is None:
                    failure = result
                    log.error("%s failed while stopping: %r", task.get_name(), result)
        stopper.cancel()
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if on_stopping is not None:
            on_stopping()
        for service in reversed(started):
            began = asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(service.cleanup(failure is not None), shutdown_timeout_s)
            except Exception:  # one failing cleanup must not skip the others
                log.exception("cleanup of %s failed", service.name)
            took = asyncio.get_running_loop().time() - began
            log.info("stopped %s in %.1fs", service.name, took)
    if failure is not None:
        raise failure
