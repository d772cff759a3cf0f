"""The MongoDB client factory (PyMongo's async API)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError

from services.common.settings import CommonSettings

Document = dict[str, Any]
# The server's error code for an insert whose _id (or unique key) exists already.
DUPLICATE_KEY = 11000


async def insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> list[int]:
    """Insert ``documents`` in one unordered ``insert_many``; return the indexes (in
    order) of those refused because their ``_id`` is stored already. Any other failure,
    a write-concern one included, is raised: a retry must not take it for done."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        refused = any(e.get("code") != DUPLICATE_KEY for e in errors)
        if refused or not errors or exc.details.get("writeConcernErrors"):
            raise
        return sorted(e["index"] for e in errors)
    return []


def mongo_client(settings: CommonSettings, *, app_name: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.require_mongo(),
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=10_000,
    )


def database(
    client: AsyncMongoClient[Document], settings: CommonSettings
) -> AsyncDatabase[Document]:
    return client[settings.mongo_database]


def is_transient(exc: PyMongoError) -> bool:
    """A database that is away (retry with backoff), not a query it refuses (a bug).

    ``ConnectionFailure`` covers network errors, timeouts, server selection and a
    primary stepping down; servers label the rest that may succeed on retry.
    """
    return isinstance(exc, ConnectionFailure) or any(
        exc.has_error_label(label) for label in ("RetryableWriteError", "TransientTransactionError")
    )
