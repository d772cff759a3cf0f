"""Folder cursors in MongoDB: (account, folder, UIDVALIDITY, last UID), advanced after acks."""

from __future__ import annotations

import datetime as dt

from pymongo.asynchronous.database import AsyncDatabase

from schemas.common import FolderRole
from schemas.mailbox_state import FolderCursor
from services.common.mongo import Document


def cursor_id(account_id: str, folder: str) -> str:
    return f"{account_id}/{folder}"


class CursorStore:
    def __init__(self, db: AsyncDatabase[Document]):
        self._col = db["folder_cursors"]

    async def get(self, account_id: str, folder: str) -> FolderCursor | None:
        doc = await self._col.find_one({"_id": cursor_id(account_id, folder)})
        return FolderCursor.model_validate(doc) if doc else None

    async def get_many(self, ids: list[str]) -> dict[str, FolderCursor]:
        """The cursors of these ids (:func:`cursor_id`) that exist, by id: one query."""
        found = self._col.find({"_id": {"$in": ids}})
        return {doc["_id"]: FolderCursor.model_validate(doc) async for doc in found}

    async def save(
        self,
        account_id: str,
        folder: str,
        role: FolderRole,
        *,
        uidvalidity: int,
        last_uid: int,
        highestmodseq: int | None,
        exists: int = 0,
        uids: str = "",
        missing_uids: tuple[int, ...] = (),
    ) -> FolderCursor:
        cursor = FolderCursor(
            id=cursor_id(account_id, folder),
            account_id=account_id,
            folder=folder,
            folder_role=role,
            uidvalidity=uidvalidity,
            last_uid=last_uid,
            highestmodseq=highestmodseq,
            exists=exists,
            uids=uids,
            missing_uids=missing_uids,
            updated_at=dt.datetime.now(dt.UTC),
        )
        doc = cursor.model_dump(by_alias=True)
        await self._col.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        return cursor
