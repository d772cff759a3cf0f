"""Writing back a refresh token that the token endpoint rotated.

RFC 6749 section 6: the authorization server MAY issue a new refresh token and revoke
the old one. The token provider uses the new one at once, in memory; this persists it
where the account lives, so that a restart, another replica or another service logs in
with it instead of a token the server no longer honours:

1. the API's copy in MongoDB ``accounts``, by compare-and-swap on the old ciphertext, so
   a record changed meanwhile (the owner consented again) is never overwritten with a
   stale grant;
2. the compacted accounts topic, which every fetcher and sender reads.

An account that exists only on the topic (published without the API) is republished
from the topic's own view of it.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from schemas.account import OAuth2Secret
from schemas.account_document import AccountDocument
from services.accounts.records import COLLECTION, publish_account
from services.common.accounts_table import AccountDirectory
from services.common.mongo import Document
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.accounts.rotation")


class RotatedSecretWriter:
    """The token provider's ``on_rotation`` hook for a service that holds accounts."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        producer: AIOKafkaProducer,
        settings: CommonSettings,
        directory: AccountDirectory,
    ):
        self._col = db[COLLECTION]
        self._producer = producer
        self._settings = settings
        self._directory = directory

    async def __call__(self, account_id: str, old: OAuth2Secret, new: OAuth2Secret) -> bool:
        """Persist ``new`` in place of ``old``; False when it was not (tried again at
        the next login) or must not be (the record no longer holds ``old``)."""
        try:
            doc = await self._col.find_one_and_update(
                {
                    "_id": account_id,
                    "record.secret.refresh_token_ciphertext": old.refresh_token_ciphertext,
                },
                {"$set": {"record.secret": new.model_dump(mode="json")}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                record = AccountDocument.model_validate(doc).record
            elif await self._col.count_documents({"_id": account_id}, limit=1):
                log.info("%s: account changed since the refresh; rotation not written", account_id)
                return False
            else:
                known = self._directory.get(account_id)
                if known is None or known.secret != old:
                    return False
                record = known.model_copy(update={"secret": new})
            await publish_account(self._producer, self._settings, record)
        except (PyMongoError, KafkaError) as exc:
            log.warning("%s: rotated refresh token not yet persisted: %s", account_id, exc)
            return False
        log.info("%s: rotated refresh token persisted", account_id)
        return True
