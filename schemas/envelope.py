"""How a message and its metadata travel in one Kafka record.

The record value is the RFC 5322 message, byte for byte (or empty when the message is
in the blob store); the metadata is JSON in the ``mailsync-meta`` header. Consumers in
any language read the header as JSON (schemas in ``schemas/json/``) and the value as
``message/rfc822``, with no base64 and no second parse of a JSON body.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

META_HEADER = "mailsync-meta"
CONTENT_TYPE_HEADER = "content-type"
RFC822 = b"message/rfc822"
BLOB_REF = b"application/vnd.mailsync.blob-ref"

Headers = list[tuple[str, bytes]]


def encode_headers(meta: BaseModel, *, in_blob: bool) -> Headers:
    """Kafka headers for a record carrying ``meta``."""
    return [
        (META_HEADER, meta.model_dump_json(by_alias=True).encode()),
        (CONTENT_TYPE_HEADER, BLOB_REF if in_blob else RFC822),
    ]


def meta_header(headers: Sequence[tuple[str, bytes]] | None) -> bytes:
    """The raw JSON of the ``mailsync-meta`` header; KeyError when it is missing."""
    for name, value in headers or ():
        if name == META_HEADER:
            return value
    raise KeyError(f"record has no {META_HEADER} header")
