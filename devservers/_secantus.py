"""SecantusDB: the MongoDB wire protocol over WiredTiger, one node."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import TracebackType

from devservers._process import ChildProcess, ServerStartError, free_port, port_answers, wait_until


def _daemon() -> str:
    beside = Path(sys.executable).with_name("secantusd-py")
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if found is None:
        raise ServerStartError("secantusd-py not found: install the SecantusDB package")
    return found


class SecantusServer:
    """A SecantusDB daemon keeping its data in ``storage`` (kept across restarts)."""

    def __init__(
        self,
        storage: Path,
        port: int | None = None,
        *,
        durable: bool = True,
        test_commands: bool = False,
    ):
        self.storage = storage
        self.port = port or free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        argv = [_daemon(), "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--storage-path", str(storage), "--log-level", "WARNING"]
        if durable:
            argv.append("--sync-on-commit")
        if test_commands:  # failCommand failpoints: a test makes the server refuse things
            argv.append("--enable-test-commands")
        self._proc = ChildProcess("secantusd", argv, storage.parent / f"{storage.name}.log")

    def start(self, timeout: float = 60) -> SecantusServer:
        self.storage.mkdir(parents=True, exist_ok=True)
        self._proc.start()
        wait_until(port_answers(self.port), timeout=timeout, what="SecantusDB", log=self._proc.log)
        return self

    def stop(self) -> None:
        self._proc.stop()

    def __enter__(self) -> SecantusServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
