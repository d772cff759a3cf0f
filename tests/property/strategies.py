"""Shared hypothesis settings and strategies for the schema models."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

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
from schemas.activity import ActivityDocument, SightingDoc
from schemas.common import Address, BlobRef, Direction, FolderRole, MessageLocation
from schemas.dead_letter import DeadLetterMeta
from schemas.mailbox_state import AccountState, AccountStatus, FolderCursor, FolderProgress
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import AccountTag, MessageTags, Sighting, TaggedMessageMeta

# No example database: the suite leaves no files behind; no deadline: CI machines vary.
FAST = settings(max_examples=60, deadline=None, database=None)
# Model strategies are costlier to draw: fewer examples keep the suite well under 20 s.
SCHEMAS = settings(FAST, max_examples=50)

text = st.text(max_size=20)
names = st.text(min_size=1, max_size=20)
uids = st.integers(min_value=1, max_value=2**32 - 1)
sha256s = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_atoms = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
# Cheaper than st.emails(), and includes subaddresses and upper case.
emails = st.builds(
    "{}{}@{}.{}".format,
    _atoms,
    st.sampled_from(["", "+crm", "+Tag"]),
    _atoms,
    st.sampled_from(["cz", "com", "COM", "org"]),
)

# Aware datetimes in fixed offsets (JSON keeps the offset) and naive ones.
_zones = st.sampled_from(
    [
        None,
        dt.UTC,
        dt.timezone(dt.timedelta(hours=1)),
        dt.timezone(dt.timedelta(hours=-5, minutes=-30)),
        dt.timezone(dt.timedelta(hours=14)),
    ]
)
# hypothesis types bounds with zones that may be None in no overload; it accepts them.
datetimes = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(2200, 1, 1),
    timezones=_zones,  # type: ignore[arg-type]
)
dates = st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2200, 1, 1))

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)

endpoints = st.builds(
    Endpoint,
    host=names,
    port=st.integers(min_value=1, max_value=65535),
    security=st.sampled_from(Security),
    username=names,
)
ownerships = st.one_of(
    st.builds(PersonalOwnership, owner=names), st.builds(SharedOwnership, group=names)
)
processed = st.one_of(
    st.builds(LeaveProcessed),
    st.builds(MoveProcessed, folder=names),
    st.builds(KeywordProcessed, keyword=st.from_regex(r"\A\$?[A-Za-z0-9_.-]{1,20}\Z")),
)
import_windows = st.one_of(
    st.builds(ImportAll),
    st.builds(ImportSince, since=dates),
    st.builds(ImportLastN, count=st.integers(min_value=0, max_value=10**6)),
)
account_records = st.builds(
    AccountRecord,
    account_id=st.from_regex(r"\A[A-Za-z0-9_.@-]{1,128}\Z"),
    address=emails,
    aliases=st.lists(emails, max_size=3).map(tuple),
    display_name=text,
    ownership=ownerships,
    imap=endpoints,
    smtp=st.none() | endpoints,
    secret=st.none()
    | st.builds(EncryptedSecret, ciphertext=names)
    | st.builds(
        OAuth2Secret,
        token_url=st.sampled_from(["https://login.example/token", "http://127.0.0.1:8080/t"]),
        client_id=names,
        client_secret_ciphertext=st.none() | names,
        refresh_token_ciphertext=names,
        scope=text,
        mechanism=st.sampled_from(OAuth2Mechanism),
    ),
    folders=st.lists(names, min_size=1, max_size=3).map(tuple),
    sent_folder=st.none() | names,
    processed=processed,
    import_window=import_windows,
    paused=st.booleans(),
    updated_at=datetimes,
)

locations = st.builds(MessageLocation, account_id=names, folder=text, uidvalidity=uids, uid=uids)
blob_refs = st.builds(BlobRef, sha256=sha256s, size=st.integers(min_value=0, max_value=2**40))
raw_metas = st.builds(
    RawMessageMeta,
    location=locations,
    folder_role=st.sampled_from(FolderRole),
    internaldate=st.none() | datetimes,
    size=st.integers(min_value=0, max_value=2**40),
    sha256=sha256s,
    flags=st.lists(names, max_size=4).map(tuple),
    fetched_at=datetimes,
    blob=st.none() | blob_refs,
)
account_tags = st.builds(
    AccountTag,
    account_id=names,
    kind=st.sampled_from(["personal", "shared"]),
    owner=st.none() | names,
    group=st.none() | names,
)
sightings = st.builds(
    Sighting,
    account_id=names,
    folder=text,
    uidvalidity=uids,
    uid=uids,
    folder_role=st.sampled_from(FolderRole),
    alias=st.none() | emails,
)
_tag_fields: dict[str, st.SearchStrategy[Any]] = {
    "raw": raw_metas,
    "account": account_tags,
    "alias": st.none() | emails,
    "direction": st.sampled_from(Direction),
    "fingerprint": text,
    "activity_id": text,
}
message_tags = st.builds(MessageTags, **_tag_fields)
tagged_metas = st.builds(
    TaggedMessageMeta,
    **_tag_fields,
    canonical=st.booleans(),
    duplicate_of=st.none() | sightings,
    sightings=st.lists(sightings, max_size=3).map(tuple),
)
dead_letters = st.builds(
    DeadLetterMeta,
    stage=names,
    reason=text,
    source_topic=names,
    source_partition=st.integers(min_value=0, max_value=2**31 - 1),
    source_offset=st.integers(min_value=0, max_value=2**63 - 1),
    original_meta=st.none() | st.dictionaries(text, json_values, max_size=4),
    at=datetimes,
)
addresses = st.builds(Address, name=text, address=emails)
sighting_docs = st.builds(
    SightingDoc,
    account_id=names,
    folder=text,
    uidvalidity=uids,
    uid=uids,
    folder_role=st.sampled_from(FolderRole),
    alias=st.none() | emails,
    duplicate=st.booleans(),
)
activity_documents = st.builds(
    ActivityDocument,
    _id=names,
    fingerprint=text,
    message_id=st.none() | text,
    subject=st.text(max_size=200),
    from_=st.none() | addresses,
    to=st.lists(addresses, max_size=3).map(tuple),
    cc=st.lists(addresses, max_size=3).map(tuple),
    date=st.none() | datetimes,
    direction=st.sampled_from(Direction),
    snippet=st.text(max_size=300),
    account_ids=st.lists(names, max_size=3).map(tuple),
    sightings=st.lists(sighting_docs, max_size=3).map(tuple),
    created_at=datetimes,
    updated_at=datetimes,
)
folder_cursors = st.builds(
    FolderCursor,
    _id=names,
    account_id=names,
    folder=text,
    folder_role=st.sampled_from(FolderRole),
    uidvalidity=uids,
    last_uid=st.integers(min_value=0, max_value=2**32 - 1),
    highestmodseq=st.none() | st.integers(min_value=1, max_value=2**63 - 1),
    missing_uids=st.lists(uids, max_size=5).map(tuple),
    updated_at=datetimes,
)
folder_progress = st.builds(
    FolderProgress,
    folder=text,
    done=st.integers(min_value=0, max_value=10**6),
    total=st.integers(min_value=0, max_value=10**6),
    error=st.none() | text,
)
account_states = st.builds(
    AccountState,
    _id=names,
    status=st.sampled_from(AccountStatus),
    reason=st.none() | text,
    since=datetimes,
    last_sync=st.none() | datetimes,
    folders=st.lists(folder_progress, max_size=3).map(tuple),
    worker=st.none() | names,
)
