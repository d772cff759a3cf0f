"""Are Kafka and MongoDB reachable? Cheap checks for the readiness endpoint.

Kafka: a metadata request (what every client sends first) through one long-lived
admin client; a refused login or certificate is named as such, and where creating topics
is off (Strimzi owns them), every topic of the process's services the cluster lacks is
named.
MongoDB: ``ping``. Results are kept for ``CACHE_S`` so a probe storm
never becomes a load on the servers. Only the failure's class is reported: error
texts may carry host names, never credentials, but nothing more is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from schemas.topics import TopicSpec
from services.common.kafka import KafkaAuthFailed, connected_admin, missing_topics
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.dependencies")

CHECK_TIMEOUT_S = 3.0
CACHE_S = 5.0


class DependencyProbe:
    def __init__(self, settings: CommonSettings, topics: Sequence[TopicSpec]):
        """``topics``: those the process's services use (``topics_of`` each service)."""
        self._settings = settings
        self._topics = list(topics)
        self._admin: AIOKafkaAdminClient | None = None
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self._last: dict[str, str | None] = {}
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    async def check(self) -> dict[str, str | None]:
        """Dependency name -> None when it answered, else the failure's class."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if now - self._checked_at >= CACHE_S:
                kafka, mongo = await asyncio.gather(self._kafka(), self._mongodb())
                self._last = {"kafka": kafka, "mongodb": mongo}
                self._checked_at = asyncio.get_running_loop().time()
            return dict(self._last)

    async def _kafka(self) -> str | None:
        try:
            if self._admin is None:
                self._admin = await connected_admin(
                    self._settings,
                    client_id="mailsync-health",
                    timeout_s=CHECK_TIMEOUT_S,
                    request_timeout_ms=int(CHECK_TIMEOUT_S * 1000),
                )
            if self._settings.kafka_create_topics:
                await asyncio.wait_for(self._admin.list_topics(), CHECK_TIMEOUT_S)
                return None
            missing = await asyncio.wait_for(
                missing_topics(self._admin, self._settings, self._topics), CHECK_TIMEOUT_S
            )
            return f"missing topics: {', '.join(missing)}" if missing else None
        except KafkaAuthFailed as exc:
            log.warning("readiness: %s", exc)
            return "authentication failed (see the log)"
        except Exception as exc:
            log.warning("readiness: Kafka did not answer: %s", type(exc).__name__)
            return f"unreachable ({type(exc).__name__})"

    async def _mongodb(self) -> str | None:
        try:
            if self._mongo is None:
                self._mongo = AsyncMongoClient(
                    self._settings.require_mongo(),
                    appname="mailsync-health",
                    serverSelectionTimeoutMS=int(CHECK_TIMEOUT_S * 1000),
                )
            await asyncio.wait_for(self._mongo.admin.command("ping"), CHECK_TIMEOUT_S + 1)
            return None
        except Exception as exc:
            log.warning("readiness: MongoDB did not answer: %s", type(exc).__name__)
            return f"unreachable ({type(exc).__name__})"

    async def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
        if self._mongo is not None:
            await self._mongo.close()
