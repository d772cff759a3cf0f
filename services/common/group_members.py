"""Who is in a consumer group, as Kafka says (DescribeGroups): its state and members.

aiokafka 0.14's ``describe_consumer_groups`` cannot be used: it asks for DescribeGroups
v3 and reads the answer as v2 (``DescribeGroupsRequest_v3.RESPONSE_TYPE`` is the v2
response), so on every broker that speaks v3 (Kafka 2.3 on) decoding fails with
"Buffer underrun decoding string". This request offers v0 to v2, and v3 read as v3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
    DescribeGroupsRequest_v3,
    DescribeGroupsResponse_v3,
)
from aiokafka.protocol.api import Request, RequestStruct


class _DescribeGroupsRequestV3(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 15
    API_VERSION = 3
    RESPONSE_TYPE = DescribeGroupsResponse_v3
    SCHEMA = DescribeGroupsRequest_v3.SCHEMA


class _DescribeGroups(
    Request[  # type: ignore[misc]
        DescribeGroupsRequest_v0
        | DescribeGroupsRequest_v1
        | DescribeGroupsRequest_v2
        | _DescribeGroupsRequestV3
    ]
):
    API_KEY = 15

    def __init__(self, groups: Sequence[str]):
        self._groups = list(groups)

    def build(self, request_struct_class: Any) -> Any:
        if request_struct_class.API_VERSION < 3:
            return request_struct_class(self._groups)
        return request_struct_class(self._groups, False)


@dataclass(frozen=True)
class GroupMembers:
    state: str  # Kafka's: Stable, Empty, Dead (a group it does not know), PreparingRebalance...
    members: int
    error: str | None = None  # why Kafka did not describe it; then state and members say nothing


async def describe_groups(
    admin: AIOKafkaAdminClient, groups: Sequence[str]
) -> dict[str, GroupMembers]:
    """Each group as Kafka described it, or the error it answered (not authorized, its
    coordinator not available yet on a new cluster)."""
    out: dict[str, GroupMembers] = {}
    for group in groups:
        try:
            coordinator = await admin.find_coordinator(group)
        except KafkaError as exc:
            out[group] = GroupMembers("", 0, error=type(exc).__name__)
            continue
        # aiokafka 0.14 has no public call to send a request of our own.
        response = await admin._client.send(coordinator, _DescribeGroups([group]))
        for described in response.groups:
            error_code, name, state, _protocol_type, _protocol, members = described[:6]
            error = for_code(error_code).__name__ if error_code else None
            out[name] = GroupMembers(state, len(members), error)
    return out
