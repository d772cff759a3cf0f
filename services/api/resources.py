"""What the API's request handlers may use, opened once when the service starts.

Handlers get a :class:`Resources` and nothing else: the MongoDB database, the Kafka
producer (accounts and send-requests topics), the secret box, the token table, the
TLS context verification trusts, and the status page's view of Kafka (which connects
only when a page asks). The CLI opens the same resources without tokens.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from schemas.topics import topics_of
from services.activity_writer.queries import ActivityQueries
from services.activity_writer.repository import COLLECTION
from services.api.callers import TokenTable
from services.api.pipeline_watch import PipelineWatch
from services.api.settings import ApiSettings
from services.api.store import AccountStore
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.common.mongo import Document, database, mongo_client
from services.common.secrets import SecretBox


@dataclass(frozen=True)
class Resources:
    settings: ApiSettings
    tokens: TokenTable
    box: SecretBox
    tls: ssl.SSLContext
    db: AsyncDatabase[Document]
    producer: AIOKafkaProducer
    store: AccountStore
    blobs: BlobStore
    activities: ActivityQueries
    pipeline: PipelineWatch

    @property
    def activities_collection(self) -> AsyncCollection[Document]:
        return self.db[COLLECTION]


def tls_context(settings: ApiSettings) -> ssl.SSLContext:
    tls = ssl.create_default_context()
    if settings.fetcher_ca_file is not None:
        tls.load_verify_locations(cafile=str(settings.fetcher_ca_file))
    return tls


@contextlib.asynccontextmanager
async def open_resources(
    settings: ApiSettings, tokens: TokenTable, *, client_id: str = "mailsync-api"
) -> AsyncIterator[Resources]:
    box = SecretBox(settings.secret_key)  # fails early when the key is missing
    # The CLI opens these too: its topics (accounts, erasures) are a subset of the API's.
    await ensure_topics(settings, topics_of("api"))
    mongo = mongo_client(settings, app_name=client_id)
    prod = producer(settings, client_id=client_id)
    pipeline = PipelineWatch(settings)
    try:
        await prod.start()
        db = database(mongo, settings)
        blobs = BlobStore(db)
        await blobs.ensure_indexes()
        yield Resources(
            settings=settings,
            tokens=tokens,
            box=box,
            tls=tls_context(settings),
            db=db,
            producer=prod,
            store=AccountStore(db, prod, settings),
            blobs=blobs,
            activities=ActivityQueries(db),
            pipeline=pipeline,
        )
    finally:
        await pipeline.close()
        await prod.stop()
        await mongo.close()
