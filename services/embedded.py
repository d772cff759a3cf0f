"""The embedded default: when no Kafka or MongoDB is configured, start our own.

``mailsync run`` starts Apache Kafka (one KRaft node) and SecantusDB, both keeping
their data under ``MAILSYNC_DATA_DIR`` (``.mailsync/kafka``, ``.mailsync/secantus``),
so a restart, after Ctrl+C or a kill alike, resumes where it stopped: the accounts
topic, dedup's changelog and every consumer group's offsets are still there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr

from devservers import KafkaBroker, SecantusServer
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.embedded")


def _local_secret_key(data_dir: Path) -> SecretStr:
    """A key kept next to the embedded data (0600), so secrets survive restarts."""
    path = data_dir / "secret.key"
    if not path.exists():
        path.write_text(SecretBox.new_key())
        path.chmod(0o600)
    return SecretStr(path.read_text().strip())


@contextlib.contextmanager
def embedded(settings: CommonSettings) -> Iterator[dict[str, object]]:
    """Start what is not configured; yield the settings overrides that point at it."""
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, object] = {"data_dir": data}
    with contextlib.ExitStack() as stack:
        if settings.kafka_bootstrap is None:
            broker = stack.enter_context(KafkaBroker(data))
            overrides["kafka_bootstrap"] = broker.bootstrap
            log.info("embedded Kafka broker on %s, data in %s", broker.bootstrap, broker.data)
        if settings.mongo_uri is None:
            mongo = stack.enter_context(SecantusServer(data / "secantus"))
            overrides["mongo_uri"] = SecretStr(mongo.uri)
            log.info("embedded SecantusDB on %s, data in %s", mongo.uri, mongo.storage)
        if settings.secret_key is None:
            overrides["secret_key"] = _local_secret_key(data)
        yield overrides
