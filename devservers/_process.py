"""A child server process: start, wait until it answers, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# util-linux, essential on Debian; without it, children are still stopped by stop().
_SETPRIV = shutil.which("setpriv")


class ServerStartError(RuntimeError):
    """A dev server did not come up; the message names the server and its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None) -> None:
    """Poll ``check`` until it returns True, or raise :class:`ServerStartError`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise ServerStartError(f"{what} did not answer within {timeout:.0f}s (log: {log}){tail}")


def port_answers(port: int, banner: bytes | None = None) -> Callable[[], bool]:
    """A readiness check: the port accepts a connection (and sends ``banner`` first)."""

    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if banner is None:
                    return True
                sock.settimeout(2)
                return sock.recv(256).startswith(banner)
        except OSError:
            return False

    return check


class ChildProcess:
    """One server process with its output in a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        argv = self.argv
        if _SETPRIV is not None:
            # Linux's parent-death signal (prctl PR_SET_PDEATHSIG, kept across exec): a
            # test run or `mailsync run` killed outright (a CI time limit, `timeout`,
            # SIGKILL) runs no teardown, and its servers would otherwise live on, some
            # of them busy. It fires when the starting thread ends: start from the main
            # thread.
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                # Own process group: Ctrl+C in a terminal reaches us, and we stop the
                # children in order, instead of every process getting SIGINT at once.
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        """The process's id while it runs (setpriv execs the server: the same process)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def send_signal(self, sig: int) -> None:
        assert self._proc is not None, f"{self.name} is not running"
        self._proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the process group and reap it: a crash, for fault tests."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
