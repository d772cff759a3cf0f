"""The sightings table's files on this disk (RocksDB), checked against its changelog
before faust opens them.

faust keeps, in each partition's RocksDB, the offset of the last changelog record it
applied, and at recovery reads the changelog from the next one. If the changelog holds
fewer records than that (the broker's volume was lost, or the topic deleted and created
again), the files describe a changelog that no longer exists: faust stops with its
ConsistencyError and the worker cannot start. The changelog is the table's truth (a new
pod, with an empty disk, would rebuild exactly what it holds), so such a partition's
files are deleted and rebuilt from it, as a pod with an empty disk would; the warning
says which, and why. The activity writer decides from what MongoDB holds, so no stored
activity depends on the sightings lost with the changelog.

Not detected: a changelog created again and already grown past the offset on this disk
before this worker starts (Kafka's metadata, as aiokafka speaks it, carries no topic id
that would tell the two topics apart).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from services.common.kafka import consumer
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.dedup")


def stale_partitions(applied: Mapping[int, int], ends: Mapping[int, int]) -> list[int]:
    """The partitions whose files applied a record the changelog does not hold.

    ``applied``: partition -> offset of the last record applied (faust's persisted
    offset); ``ends``: partition -> the changelog's end offset (the next record's).
    """
    return sorted(p for p, offset in applied.items() if offset >= ends.get(p, 0))


def _applied(store: Any, partitions: range) -> dict[int, int]:
    """faust's persisted offset of each partition that has files, read with faust's own
    options and key (``Store.rocksdb_options``, ``offset_key``), the files closed again."""
    applied: dict[int, int] = {}
    for p in partitions:
        path: Path = store.partition_path(p)
        if not path.exists():
            continue
        db = store.rocksdb_options.open(path)
        try:
            offset = db.get(store.offset_key)
        finally:
            db.close()
        if offset is not None:
            applied[p] = int(offset)
    return applied


async def drop_stale_partitions(table: Any, settings: CommonSettings) -> list[int]:
    """Delete the files of ``table``'s partitions that are ahead of its changelog; the
    partitions deleted. A no-op for a table kept in memory."""
    store = table.data
    if not hasattr(store, "rocksdb_options"):
        return []
    topic = table.changelog_topic.get_topic_name()
    applied = _applied(store, range(table.partitions))
    if not applied:
        return []
    client = consumer(settings, group_id=None, client_id="mailsync-dedup-table-check")
    await client.start()
    try:
        tps = [TopicPartition(topic, p) for p in applied]
        ends = {tp.partition: end for tp, end in (await client.end_offsets(tps)).items()}
    finally:
        await client.stop()
    stale = stale_partitions(applied, ends)
    for p in stale:
        log.warning(
            "dedup table %s partition %d: this disk applied its changelog up to offset %d "
            "but %s holds %d records (the broker's data was lost or the topic created "
            "again); its files are deleted and the partition rebuilt from the changelog",
            table.name,
            p,
            applied[p],
            topic,
            ends.get(p, 0),
        )
        shutil.rmtree(store.partition_path(p))
    return stale
