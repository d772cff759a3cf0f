"""Where a running ``mailsync run`` is, so the admin CLI finds it without exports.

``mailsync run`` writes ``run.json`` (its Kafka bootstrap and MongoDB URI, and its
process id) into the data directory (``MAILSYNC_DATA_DIR``, ``.mailsync`` by default)
while it runs, next to the ``secret.key`` it made. A ``mailsync`` command started in
the same directory reads them for what its own environment does not set; the
environment always wins, and a file whose process has gone is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

from services.common.settings import CommonSettings

S = TypeVar("S", bound=CommonSettings)

RUN_FILE = "run.json"
KEY_FILE = "secret.key"


def announce(data_dir: Path, kafka_bootstrap: str | None, mongo_uri: str | None) -> None:
    """This process is the run of ``data_dir`` (readable by its owner only)."""
    path = data_dir / RUN_FILE
    body = {"pid": os.getpid(), "kafka_bootstrap": kafka_bootstrap, "mongo_uri": mongo_uri}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(body, out)


def withdraw(data_dir: Path) -> None:
    (data_dir / RUN_FILE).unlink(missing_ok=True)


def overrides(settings: CommonSettings) -> dict[str, Any]:
    """What a running ``mailsync run`` of ``settings.data_dir`` supplies that is unset."""
    found: dict[str, Any] = {}
    data = settings.data_dir
    key = data / KEY_FILE
    if settings.secret_key is None and key.is_file():
        found["secret_key"] = SecretStr(key.read_text().strip())
    try:
        run = json.loads((data / RUN_FILE).read_text())
        os.kill(int(run["pid"]), 0)  # still running?
    except (OSError, ValueError, KeyError, TypeError):
        return found
    if settings.kafka_bootstrap is None and run.get("kafka_bootstrap"):
        found["kafka_bootstrap"] = run["kafka_bootstrap"]
    if settings.mongo_uri is None and run.get("mongo_uri"):
        found["mongo_uri"] = SecretStr(run["mongo_uri"])
    return found


def cli_settings(cls: type[S]) -> S:
    """``cls()`` from the environment, completed by a local run's (:func:`overrides`)."""
    settings = cls()
    extra = overrides(settings)
    return cls(**extra) if extra else settings
