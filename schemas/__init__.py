"""Models of every mailsync topic and MongoDB document: the published surface.

Topics (see :mod:`schemas.topics`) and their payloads:

- ``mailsync.accounts``           :class:`AccountRecord` (JSON value, compacted)
- ``mailsync.raw-messages``       RFC 5322 value + :class:`RawMessageMeta` header
- ``mailsync.dedup-by-fingerprint`` RFC 5322 value + :class:`MessageTags` header (internal)
- ``mailsync.tagged-messages``    RFC 5322 value + :class:`TaggedMessageMeta` header
- ``mailsync.activity-events``    :class:`ActivityEvent` (JSON value)
- ``mailsync.activity-confirmations`` :class:`ActivityConfirmation` (JSON value)
- ``mailsync.dead-letters``       original value + :class:`DeadLetterMeta` header
- ``mailsync.send-requests``      :class:`SendRequest` (JSON value)
- ``mailsync.send-results``       :class:`SendResult` (JSON value)

Documents: :class:`ActivityDocument`, :class:`FolderCursor`, :class:`AccountState`,
:class:`WorkerHeartbeat` (a fetcher replica's heartbeat for all its account states),
:class:`SendRecord`, :class:`AccountDocument` (the accounts API's copy of each record).
"""

from schemas.account import (
    AccountRecord,
    EncryptedSecret,
    Endpoint,
    ImportAll,
    ImportLastN,
    ImportSince,
    KeywordProcessed,
    LeaveProcessed,
    MoveProcessed,
    OAuth2Mechanism,
    OAuth2Secret,
    PersonalOwnership,
    Security,
    SharedOwnership,
)
from schemas.account_document import AccountDocument
from schemas.activity import ActivityDocument, SightingDoc
from schemas.common import Address, BlobRef, Direction, FolderRole, MessageLocation
from schemas.dead_letter import DeadLetterMeta
from schemas.mailbox_state import (
    AccountState,
    AccountStatus,
    FolderCursor,
    FolderProgress,
    WorkerHeartbeat,
)
from schemas.raw_message import RawMessageMeta
from schemas.send_request import (
    OutboundAttachment,
    SendRecord,
    SendRequest,
    SendResult,
    SendState,
)
from schemas.tagged_message import AccountTag, MessageTags, Sighting, TaggedMessageMeta
from schemas.topics import TOPICS, TopicSpec

__all__ = [
    "TOPICS",
    "AccountDocument",
    "AccountRecord",
    "AccountState",
    "AccountStatus",
    "AccountTag",
    "ActivityDocument",
    "Address",
    "BlobRef",
    "DeadLetterMeta",
    "Direction",
    "EncryptedSecret",
    "Endpoint",
    "FolderCursor",
    "FolderProgress",
    "FolderRole",
    "ImportAll",
    "ImportLastN",
    "ImportSince",
    "KeywordProcessed",
    "LeaveProcessed",
    "MessageLocation",
    "MessageTags",
    "MoveProcessed",
    "OAuth2Mechanism",
    "OAuth2Secret",
    "OutboundAttachment",
    "PersonalOwnership",
    "RawMessageMeta",
    "Security",
    "SendRecord",
    "SendRequest",
    "SendResult",
    "SendState",
    "SharedOwnership",
    "Sighting",
    "SightingDoc",
    "TaggedMessageMeta",
    "TopicSpec",
    "WorkerHeartbeat",
]
