"""Tagging one raw record: its account, alias, direction and identity (what the ``tag``
agent does with it; the decisions are pure, I/O is kept to the directory and the blob fetch)."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.envelope import meta_header
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import MessageTags
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.dedup.errors import MissingMeta, UnknownAccount
from services.dedup.tagging import account_tag, base_address, direction, match_alias
from services.mail import identify, parse_headers


class Tagger:
    """What the ``tag`` agent does with one record (I/O kept to the blob fetch)."""

    def __init__(self, directory: AccountDirectory, blobs: BlobStore):
        self._directory = directory
        self._blobs = blobs
        self._synced: frozenset[str] = frozenset()
        self._synced_version = -1

    def synced_addresses(self) -> frozenset[str]:
        """Base addresses of every synced account, recomputed only when accounts change."""
        if self._synced_version != self._directory.version:
            self._synced = frozenset(
                base_address(a) for acc in self._directory.all() for a in acc.addresses
            )
            self._synced_version = self._directory.version
        return self._synced

    async def tag(self, headers: list[tuple[str, bytes]], value: bytes) -> MessageTags:
        try:
            meta = RawMessageMeta.model_validate_json(meta_header(headers))
        except (KeyError, ValidationError) as exc:
            raise MissingMeta(f"raw record without a valid mailsync-meta header: {exc}") from None
        account = await self._directory.lookup(meta.location.account_id)
        if account is None:
            raise UnknownAccount(f"account {meta.location.account_id!r} is not configured")
        raw = value if meta.blob is None else await self._blobs.get(meta.blob)
        parsed = parse_headers(raw)
        identity = identify(parsed, raw)
        return MessageTags(
            raw=meta,
            account=account_tag(account),
            alias=match_alias(account, parsed, meta.folder_role),
            direction=direction(account, parsed, meta.folder_role, self.synced_addresses()),
            fingerprint=identity.fingerprint,
            activity_id=identity.activity_id,
        )
