"""What the native core (native/, Rust) exports: the Metric class (agent.metric), and the
per-metric work of the influx parser and serializer, the agent's finishing of gathered
metrics, outputs.kafka's grouping by key and the sink stores' rows."""

from collections.abc import Callable, Iterable, Sequence

from agent.metric import FieldValue
from agent.sink.batch import Delivery

class Metric:
    """A measurement: `name`, string `tags`, typed `fields` and a timestamp in nanoseconds
    (agent.metric.Metric)."""

    name: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int
    def __init__(
        self,
        name: str,
        tags: dict[str, str],
        fields: dict[str, FieldValue],
        time_ns: int | None = None,
    ) -> None: ...
    def add_missing_tags(self, tags: list[tuple[str, str]]) -> None:
        """Adds each (key, value) whose key the metric does not have."""
    def get_tag(self, key: str) -> str | None: ...
    def has_fields(self) -> bool: ...
    def copy(self) -> Metric: ...
    def identity(self) -> tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], int]:
        """What makes two metrics the same observation: name, tag set, field names, time."""

def parse_influx(
    data: bytes | str, default_time_ns: int | None, scale: int
) -> tuple[list[Metric], list[tuple[int, int, str, str]]]:
    """Line protocol → (metrics, errors); each error is (line, column, message, line text).
    Lines without a timestamp get `default_time_ns` (None: their time_ns is None);
    timestamps are multiplied by `scale`."""

def format_influx_lines(
    metrics: Iterable[Metric], sort_fields: bool, uint_support: bool
) -> list[bytes]:
    """Each metric's line with its newline, or b"" when none of its fields can be written."""

def format_influx_joined(metrics: Iterable[Metric], sort_fields: bool, uint_support: bool) -> bytes:
    """The lines of all metrics in one bytes object."""

def format_float(value: float) -> str:
    """The shortest decimal text that reads back as `value`, without an exponent."""

def format_influx_records(
    metrics: Sequence[Metric],
    sort_fields: bool,
    uint_support: bool,
    routing_tag: str | None,
    limit: int,
) -> tuple[list[tuple[str | None, bytes, list[int]]], list[tuple[int, int]]]:
    """use_batch_format's records of a write: lines grouped by tag `routing_tag`'s value,
    cut at `limit` bytes, as (tag value, value, positions); and (position, size) of each
    line over the limit."""

def finish_metrics(
    metrics: Iterable[Metric], tags: list[tuple[str, str]], precision_ns: int
) -> list[Metric]:
    """The metrics with fields, each given the `tags` it lacks and its time_ns rounded to
    `precision_ns` (when over 1)."""

class PointTable:
    """What one batch puts into one measurement's tables (agent.sink.layout)."""

    name: str
    value_types: dict[str, dict[str, None]]
    first_record: dict[tuple[str, str], tuple[str, int, int]]
    tag_sets: dict[int, dict[str, str]]
    tag_keys: set[str]
    def __len__(self) -> int: ...
    def copy_data(self, fields: list[str], column_types: list[str]) -> bytes:
        """COPY … (time, tag_id, *fields) FROM STDIN (FORMAT BINARY) data, whole."""
    def sqlite_parameters(
        self, fields: list[str], column_types: list[str]
    ) -> list[str | int | float | None]:
        """INSERT … (time, tag_id, *fields) VALUES (…), (…) parameters, point after point."""

def point_tables(
    deliveries: Sequence[Delivery | PointRun], check_name: Callable[[str, str, int, int], None]
) -> list[PointTable]:
    """The batch's points, tag sets and field types, one PointTable per measurement;
    check_name(name, topic, partition, offset) for each new measurement."""

class PointRun:
    """Consecutive records of one partition read straight into store points."""

    topic: str
    partition: int
    offset: int
    next_offset: int
    records: int
    metric_count: int

def read_point_runs(
    topic: str,
    partition: int,
    offsets: list[int],
    values: list[bytes | None],
    timestamps_ms: list[int],
    now_ns: int,
    scale: int,
) -> list[PointRun | int]:
    """The records read into runs, with the index of each record that needs words between
    them, in the records' order."""

def telegraf_tag_id(tags: dict[str, str]) -> int:
    """Telegraf's tag_id of a tag set."""

def parse_influx_records(
    values: list[bytes | None], timestamps_ms: list[int], now_ns: int, scale: int
) -> list[Metric] | None:
    """One metric from each value, a line without a timestamp dated with its record's (now
    where that is negative), or None when any value is not exactly one valid line."""

def read_record_batches(
    data: bytes, fetch_offset: int, decompress: Callable[[int, bytes], bytes]
) -> tuple[list[int], list[int], list[bytes | None], list[bytes | None], int | None]:
    """Offsets, timestamps (ms), keys and values of the records of Kafka record batches
    (message format v2) from `fetch_offset` on, and the offset after the last whole batch."""

def write_record_batch(
    keys: list[bytes | None],
    values: list[bytes],
    timestamps_ms: list[int],
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    codec: int,
    compress: Callable[[int, bytes], bytes],
) -> bytes:
    """One record batch (message format v2) of the records, with the idempotent producer's
    id, epoch and first sequence (-1 each without idempotence); compressed by
    `compress(codec, body)` when codec is 1-4 and that makes it smaller."""
