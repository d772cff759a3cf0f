"""The MongoDB client factory (PyMongo's async API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from services.common.errors import ConfigurationError
from services.common.settings import CommonSettings

Document = dict[str, Any]
# The server's error code for an insert whose _id (or unique key) exists already.
DUPLICATE_KEY = 11000
# SecantusDB's cost of an ``$in`` grows faster than its length (measured on 2,000
# documents: 100 values 0.03 s, 200 0.10-0.26 s, 500 0.53-0.67 s), so long lists go in
# slices.
IN_SLICE = 100


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


async def find_in(
    collection: AsyncCollection[Document],
    field: str,
    values: Iterable[Any],
    projection: Mapping[str, Any] | None = None,
    size: int = IN_SLICE,
) -> AsyncIterator[Document]:
    """The documents whose ``field`` is among ``values``, one ``$in`` per slice of ``size``."""
    ordered = sorted(set(values))
    for i in range(0, len(ordered), size):
        query = {field: {"$in": ordered[i : i + size]}}
        async for doc in collection.find(query, projection):
            yield doc


# Defaults for what the URI does not say: a keyword argument would override the URI's
# own option (serverSelectionTimeoutMS=2000 in MAILSYNC_MONGO_URI must win).
_DEFAULTS: dict[str, Any] = {"serverSelectionTimeoutMS": 10_000}


def mongo_client(settings: CommonSettings, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client for ``MAILSYNC_MONGO_URI``, whose options win over the defaults here.

    Raises :class:`~services.common.errors.ConfigurationError` for a URI pymongo cannot
    parse (naming the setting; the URI itself is not printed, it may hold a password).
    """
    uri = settings.require_mongo()
    given = {k.lower() for k in uri_options(uri)}
    defaults = {
        k: v for k, v in {**_DEFAULTS, "appname": app_name}.items() if k.lower() not in given
    }
    try:
        # tz_aware is not a default: the code compares aware datetimes.
        return AsyncMongoClient(uri, tz_aware=True, **defaults)
    except PyMongoError as exc:
        raise ConfigurationError(f"MAILSYNC_MONGO_URI is not a usable MongoDB URI: {exc}") from None


def uri_options(uri: str) -> dict[str, str]:
    """The options a MongoDB URI sets (its query). Read here, not by pymongo's parser,
    which resolves a mongodb+srv host in DNS."""
    query = uri.partition("?")[2]
    return dict(parse_qsl(query.replace(";", "&"), keep_blank_values=True))


def unreachable(exc: PyMongoError) -> str:
    """One line for a database that did not answer (without the topology dump)."""
    text = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
    return f"MongoDB did not answer (check MAILSYNC_MONGO_URI): {text}"


def database(
    client: AsyncMongoClient[Document], settings: CommonSettings
) -> AsyncDatabase[Document]:
    return client[settings.mongo_database]
