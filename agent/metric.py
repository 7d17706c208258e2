"""The one data type that flows through the agent: a named set of fields at a moment."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class UInt(int):
    """An unsigned integer field value (line protocol `123u`, Telegraf's uint64).

    Python has one integer type; this marker keeps the distinction Telegraf makes between
    gopsutil's uint64 counters and signed integers, so serializers can write either form.
    """

    __slots__ = ()


FieldValue = float | int | UInt | bool | str

# Timestamps are signed 64-bit nanoseconds, as Telegraf and line protocol count them: the
# sink's store holds no other, and readers of the lines it prints refuse them.
MIN_TIME_NS = -(2**63)
MAX_TIME_NS = 2**63 - 1
OUTSIDE_TIME_RANGE = "is outside what 64-bit nanoseconds count (1677-09-21 to 2262-04-11 UTC)"


@dataclass(slots=True)
class Metric:
    """A measurement: `name`, string `tags`, typed `fields` and a timestamp in nanoseconds.

    Field values are float, int (signed 64-bit), UInt (unsigned 64-bit), bool or str.
    """

    name: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int = field(default_factory=time.time_ns)

    def copy(self) -> Metric:
        return Metric(self.name, dict(self.tags), dict(self.fields), self.time_ns)

    def identity(self) -> tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], int]:
        """What makes two metrics the same observation: name, tag set, field names, time."""
        tags = tuple(sorted(self.tags.items()))
        return (self.name, tags, tuple(sorted(self.fields)), self.time_ns)
