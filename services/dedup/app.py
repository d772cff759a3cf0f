"""The dedup service: a faust-streaming application with two agents (:mod:`.agents`).

``tag``:   raw-messages -> (parse headers once, tag) -> dedup-by-fingerprint, keyed by fingerprint
``dedup``: dedup-by-fingerprint -> (sightings table) -> tagged-messages, keyed by activity id

The table (activity id -> its sightings) is co-partitioned with the by-fingerprint
topic (the explicit form of faust's ``group_by``): every activity of a fingerprint is
on its partition, so each worker owns the activities of its partitions; it is backed
by its changelog topic, so a restarted worker recovers it. Its verdict (``canonical``,
``duplicate_of``) is what the tagged-messages topic tells other systems; the stored
documents do not depend on it: the activity writer decides from what MongoDB holds.

This module wires them: the faust app (:mod:`.faust_config`), the tagger
(:mod:`.tagger`), and the service's start -> run -> cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust
from pymongo import AsyncMongoClient

from schemas.topics import ACCOUNTS, BY_FINGERPRINT, RAW_MESSAGES, topics_of
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.kafka import consumer, ensure_internal_topics, ensure_topics
from services.common.mongo import database, mongo_client
from services.dedup.agents import define_agents
from services.dedup.faust_config import changelog_topic, declare_streams, faust_app
from services.dedup.local_table import drop_stale_partitions
from services.dedup.settings import DedupSettings
from services.dedup.tagger import Tagger


def build_faust_app(settings: DedupSettings, tagger: Tagger) -> faust.App:
    """The faust app with its topics, its table and both agents."""
    app = faust_app(settings)
    define_agents(app, declare_streams(app, settings), tagger)
    return app


class DedupApp:
    name = "dedup"

    def __init__(self, settings: DedupSettings):
        self.settings = settings
        self.faust: faust.App | None = None
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self._directory: AccountDirectory | None = None

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        await ensure_topics(s, topics_of(self.name))
        self._mongo = mongo_client(s, app_name="mailsync-dedup")
        blobs = BlobStore(database(self._mongo, s))
        self._directory = AccountDirectory(
            consumer(s, group_id=None, client_id="mailsync-dedup-accounts"), s.topic(ACCOUNTS)
        )
        await self._directory.start()
        await self._directory.wait_ready(timeout=60)
        self.faust = build_faust_app(s, Tagger(self._directory, blobs))
        # faust would create its changelog itself, concurrently with its consumer's join:
        # a group assigned before the topic exists leaves it out, and the table's first
        # write then fails (PartitionsMismatch: 0 partitions) until metadata refreshes.
        await ensure_internal_topics(s, [changelog_topic(self.faust)])
        await drop_stale_partitions(self.faust.tables["sightings"], s)
        await self.faust.start()

    def consumer_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """faust's consumer group is its app id; both agents commit in it."""
        s = self.settings
        group = f"{s.topic_prefix}{s.dedup_app_id}"
        return [(group, (s.topic(RAW_MESSAGES), s.topic(BY_FINGERPRINT)))]

    async def run(self, stop: asyncio.Event) -> None:
        assert self.faust is not None and self._directory is not None
        while not stop.is_set():
            self._directory.check()
            if self.faust.should_stop or self.faust.crashed:
                raise RuntimeError(f"faust app stopped: {self.faust.crash_reason!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def cleanup(self, failed: bool) -> None:
        if self.faust is not None:
            await self.faust.stop()
        if self._directory is not None:
            await self._directory.stop()
        if self._mongo is not None:
            await self._mongo.close()
