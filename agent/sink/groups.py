"""A consumer group's offsets: `agent sink lag` and `agent sink reset`.

Both print what `kafka-consumer-groups --describe` and `--reset-offsets` print, in the same
columns, so what users learned from the Kafka tools reads the same here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

NONE = "-"
LAG_COLUMNS = (
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
)
INACTIVE_STATES = ("Empty", "Dead")


class GroupError(Exception):
    """A group command that cannot be carried out, phrased as one line for the user."""


@dataclass
class PartitionLag:
    """One row of `--describe`: the group's position in a partition and who reads it."""

    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int
    consumer_id: str = NONE
    host: str = NONE
    client_id: str = NONE

    @property
    def lag(self) -> int | None:
        if self.current_offset is None:
            return None
        return max(0, self.log_end_offset - self.current_offset)


@dataclass
class GroupLag:
    group: str
    state: str
    members: int
    partitions: list[PartitionLag]


def admin_client(brokers: list[str], security: dict[str, Any]) -> KafkaAdminClient:
    """An admin client; `security` holds the TLS/SASL settings (KafkaSecurity.client_config)."""
    try:
        return KafkaAdminClient(
            bootstrap_servers=brokers,
            client_id="agent-sink-groups",
            bootstrap_timeout_ms=10_000,
            **security,
        )
    except KafkaTimeoutError:
        raise GroupError(f"no Kafka broker answers at {','.join(brokers)}") from None


def _describe(admin: KafkaAdminClient, group: str) -> dict[str, Any]:
    described = admin.describe_groups([group])[group]
    error = described.get("error")
    if error and "GroupIdNotFound" not in error:
        raise GroupError(f"consumer group '{group}': {error}")
    return described


def _assigned(described: dict[str, Any]) -> dict[TopicPartition, dict[str, Any]]:
    """Each assigned partition with the member that holds it."""
    owners = {}
    for member in described.get("members") or []:
        assignment = member.get("member_assignment") or {}
        for entry in assignment.get("assigned_partitions") or []:
            for partition in entry["partitions"]:
                owners[TopicPartition(entry["topic"], partition)] = member
    return owners


def _end_offsets(admin: KafkaAdminClient, partitions: list[TopicPartition]) -> dict:
    if not partitions:
        return {}
    found = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
    return {tp: answer.offset for tp, answer in found.items()}


def group_lag(brokers: list[str], group: str, security: dict[str, Any]) -> GroupLag:
    """Committed offset, log-end offset and lag of every partition the group reads."""
    admin = admin_client(brokers, security)
    try:
        described = _describe(admin, group)
        committed = admin.list_group_offsets({group: None}).get(group, {})
        owners = _assigned(described)
        if not committed and not owners:
            raise GroupError(f"consumer group '{group}' does not exist")
        partitions = sorted(set(committed) | set(owners))
        ends = _end_offsets(admin, partitions)
    except KafkaError as error:
        raise GroupError(f"consumer group '{group}': {error}") from None
    finally:
        admin.close()
    rows = []
    for tp in partitions:
        meta = committed.get(tp)
        current = meta.offset if meta is not None and meta.offset >= 0 else None
        row = PartitionLag(tp.topic, tp.partition, current, ends.get(tp, 0))
        member = owners.get(tp)
        if member is not None:
            row.consumer_id = member["member_id"]
            row.host = member.get("client_host") or NONE
            row.client_id = member.get("client_id") or NONE
        rows.append(row)
    members = len(described.get("members") or [])
    return GroupLag(group, described.get("group_state") or "", members, rows)


def _text(value: int | None) -> str:
    return NONE if value is None else str(value)


def format_lag(report: GroupLag) -> str:
    """The text of `kafka-consumer-groups --describe`, widths as Kafka computes them."""
    rows = report.partitions
    group_width = max(15, len(report.group))
    topic_width = max([15, *(len(r.topic) for r in rows)])
    consumer_width = max([15, *(len(r.consumer_id) for r in rows)])
    host_width = max([15, *(len(r.host) for r in rows)])

    def line(*cells: str) -> str:
        group, topic, partition, current, end, lag, consumer, host, client = cells
        return (
            f"{group:<{group_width}} {topic:<{topic_width}} {partition:<10} {current:<15} "
            f"{end:<15} {lag:<15} {consumer:<{consumer_width}} {host:<{host_width}} {client}"
        )

    lines = []
    if report.members == 0:
        lines += ["", f"Consumer group '{report.group}' has no active members."]
    lines += ["", line(*LAG_COLUMNS)]
    for r in rows:
        current, lag = _text(r.current_offset), _text(r.lag)
        end = str(r.log_end_offset)
        cells = (report.group, r.topic, str(r.partition), current, end, lag)
        lines.append(line(*cells, r.consumer_id, r.host, r.client_id))
    return "\n".join(lines) + "\n"


ResetTarget = tuple[Literal["earliest", "latest", "offset"], int]


def parse_topic_spec(spec: str) -> tuple[str, list[int] | None]:
    """`metrics` (every partition) or `metrics:0,2`, as kafka-consumer-groups --topic takes."""
    topic, colon, numbers = spec.partition(":")
    if not topic:
        raise GroupError(f"--topic {spec}: expected TOPIC or TOPIC:PARTITION[,PARTITION…]")
    if not colon:
        return topic, None
    try:
        return topic, [int(n) for n in numbers.split(",")]
    except ValueError:
        raise GroupError(f"--topic {spec}: partitions must be numbers, as in {topic}:0,1") from None


def reset_offsets(
    brokers: list[str],
    group: str,
    target: ResetTarget,
    topic_specs: list[str],
    security: dict[str, Any],
    execute: bool = True,
) -> list[tuple[TopicPartition, int]]:
    """Move the group's committed offsets to `target` (clamped to what the log holds, as
    Kafka does); refused while the group has active members. The new offsets, sorted."""
    admin = admin_client(brokers, security)
    try:
        described = _describe(admin, group)
        members = described.get("members") or []
        state = described.get("group_state") or ""
        if members or state not in INACTIVE_STATES:
            raise GroupError(
                f"cannot reset the offsets of group '{group}' while it is active "
                f"(state {state}, {len(members)} member(s)); stop its consumers first"
            )
        partitions = _reset_partitions(admin, group, topic_specs)
        earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        kind, number = target
        new = {}
        for tp in partitions:
            low, high = earliest[tp].offset, latest[tp].offset
            wanted = {"earliest": low, "latest": high}.get(kind, number)
            new[tp] = min(max(wanted, low), high)
        if execute:
            results = admin.alter_group_offsets(
                group, {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in new.items()}
            )
            failed = {tp: err for tp, err in results.items() if err.__name__ != "NoError"}
            if failed:
                tp, err = next(iter(failed.items()))
                raise GroupError(
                    f"group '{group}': could not reset {tp.topic}:{tp.partition}: {err.__name__}"
                )
    except KafkaError as error:
        raise GroupError(f"group '{group}': {error}") from None
    finally:
        admin.close()
    return sorted(new.items())


def _reset_partitions(
    admin: KafkaAdminClient, group: str, topic_specs: list[str]
) -> list[TopicPartition]:
    if not topic_specs:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        if not committed:
            raise GroupError(
                f"group '{group}' has no committed offsets; name the topic with --topic"
            )
        return sorted(committed)
    partitions = []
    for spec in topic_specs:
        topic, numbers = parse_topic_spec(spec)
        described = admin.describe_topics([topic])
        known = sorted(p["partition_index"] for t in described for p in t.get("partitions") or [])
        if not known:
            raise GroupError(f"topic '{topic}' does not exist")
        for number in numbers if numbers is not None else known:
            if number not in known:
                raise GroupError(f"topic '{topic}' has no partition {number}")
            partitions.append(TopicPartition(topic, number))
    return sorted(set(partitions))


def format_reset(group: str, offsets: list[tuple[TopicPartition, int]]) -> str:
    """The text of `kafka-consumer-groups --reset-offsets`."""
    lines = ["", f"{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}"]
    for tp, offset in offsets:
        lines.append(f"{group:<30} {tp.topic:<30} {tp.partition!s:<10} {offset!s:<15}")
    return "\n".join(lines) + "\n"
