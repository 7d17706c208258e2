"""`agent sink lag` and `reset` print what kafka-consumer-groups prints, column for column."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from agent.sink.groups import (
    GroupError,
    GroupLag,
    PartitionLag,
    format_lag,
    format_reset,
    parse_topic_spec,
)

# From the seed document (kafka-consumer-groups --describe of Kafka 2.5), rows in
# partition order.
SEED_DESCRIBE = """
Consumer group 'testgroup' has no active members.

GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID
testgroup       test            0          1               1               0               -               -               -
testgroup       test            1          2               2               0               -               -               -
testgroup       test            2          2               2               0               -               -               -
"""  # noqa: E501


def test_lag_of_an_inactive_group_reads_as_the_seed_shows_it():
    rows = [
        PartitionLag("test", 0, 1, 1),
        PartitionLag("test", 1, 2, 2),
        PartitionLag("test", 2, 2, 2),
    ]
    assert format_lag(GroupLag("testgroup", "Empty", 0, rows)) == SEED_DESCRIBE


def test_lag_columns_widen_for_long_names_and_members_as_kafka_4_does():
    member = "agent-sink-8963816c-0a96-491d-b238-3f1e22893d1c"
    row = PartitionLag("a-topic-with-a-long-name", 0, 4, 9, member, "/127.0.0.1", "agent-sink")
    text = format_lag(GroupLag("group-with-a-long-name", "Stable", 1, [row]))
    header, line = text.strip("\n").splitlines()
    assert "has no active members" not in text
    assert header.startswith("GROUP                  TOPIC                    PARTITION  ")
    assert line == (
        "group-with-a-long-name a-topic-with-a-long-name 0          4               9"
        f"               5               {member} /127.0.0.1      agent-sink"
    )


def test_a_partition_without_committed_offset_shows_dashes():
    text = format_lag(GroupLag("g", "Stable", 1, [PartitionLag("t", 0, None, 7, "m", "h", "c")]))
    assert text.splitlines()[-1].split() == ["g", "t", "0", "-", "7", "-", "m", "h", "c"]


def test_reset_output_has_kafkas_columns():
    text = format_reset("fmtgroup", [(TopicPartition("fmt-topic-a", 1), 3)])
    assert text.split("\n") == [
        "",
        "GROUP                          TOPIC                          PARTITION  NEW-OFFSET     ",
        "fmtgroup                       fmt-topic-a                    1          3              ",
        "",
    ]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("test", ("test", None)), ("test:1", ("test", [1])), ("t:0,2", ("t", [0, 2]))],
)
def test_topic_specs_take_kafkas_forms(spec, parsed):
    assert parse_topic_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["test:x", ":1", "test:1,"])
def test_bad_topic_specs_are_refused(spec):
    with pytest.raises(GroupError, match="--topic"):
        parse_topic_spec(spec)
