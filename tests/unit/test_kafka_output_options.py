"""outputs.kafka's options, Telegraf's names: the producer settings they become
(producer_settings()) and how they route a metric (topic, key, timestamp).

Each output is built as the agent builds it, from a `[[outputs.kafka]]` table of a config
file; nothing connects to a broker.
"""

from __future__ import annotations

import textwrap

import pytest

from agent.config import load
from agent.metric import Metric
from plugins.outputs.kafka import Kafka
from plugins.outputs.kafka_producer import ProducerSettings
from plugins.parsers.influx import InfluxParser
from tests.unit.test_config import error_of, write


def kafka_table(options: str) -> str:
    return '[[outputs.kafka]]\n  topic = "metrics"\n' + textwrap.dedent(options)


def kafka_output(tmp_path, options: str = "") -> Kafka:
    """The outputs.kafka the agent makes of `[[outputs.kafka]]` with `options` (TOML lines)."""
    (entry,) = load([write(tmp_path, kafka_table(options))]).outputs
    return entry.plugin


def refusal(tmp_path, options: str) -> str:
    """The one-line error the agent gives for `options`."""
    return error_of(tmp_path, kafka_table(options))


def settings(tmp_path, options: str = "") -> ProducerSettings:
    return kafka_output(tmp_path, options).producer_settings()


def cpu(tags: dict[str, str] | None = None, time_ns: int = 1_700_000_000_123_456_789) -> Metric:
    return Metric("cpu", {"host": "h1", **(tags or {})}, {"usage_idle": 99.5}, time_ns)


# Acknowledgements and idempotence


def test_by_default_the_producer_waits_for_all_in_sync_replicas(tmp_path):
    assert settings(tmp_path).acks == -1


def test_by_default_the_producer_is_idempotent(tmp_path):
    assert settings(tmp_path).idempotent is True


@pytest.mark.parametrize("required_acks", [0, 1])
def test_required_acks_0_or_1_without_idempotence_is_that_many_acks(tmp_path, required_acks):
    producer = settings(tmp_path, f"required_acks = {required_acks}\nidempotent_writes = false\n")
    assert producer.acks == required_acks
    assert producer.idempotent is False


def test_idempotent_writes_with_required_acks_1_is_refused_saying_it_needs_minus_one(tmp_path):
    message = refusal(tmp_path, "required_acks = 1\nidempotent_writes = true\n")
    assert message.startswith(f"{tmp_path / 'agent.toml'}:1: outputs.kafka: ")
    assert message.endswith("idempotent_writes = true needs required_acks = -1")


# Compression


@pytest.mark.parametrize("codec", ["0", '"none"', '"None"'])
def test_compression_codec_0_or_none_sends_uncompressed(tmp_path, codec):
    assert settings(tmp_path, f"compression_codec = {codec}\n").codec == 0


@pytest.mark.parametrize(("number", "name"), [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")])
def test_compression_codec_names_are_telegrafs_numbers(tmp_path, number, name):
    assert settings(tmp_path, f"compression_codec = {number}\n").codec == number
    assert settings(tmp_path, f'compression_codec = "{name}"\n').codec == number
    assert settings(tmp_path, f'compression_codec = "{name.upper()}"\n').codec == number


@pytest.mark.parametrize(
    ("codec", "named"), [("5", "got 5"), ("-1", "got -1"), ('"brotli"', 'unknown codec "brotli"')]
)
def test_an_unknown_compression_codec_is_refused_naming_it(tmp_path, codec, named):
    message = refusal(tmp_path, f"compression_codec = {codec}\n")
    assert "outputs.kafka: compression_codec: " in message and named in message


# Passed through


def test_client_id_is_passed_through(tmp_path):
    assert settings(tmp_path, 'client_id = "host-7"\n').client_id == "host-7"


def test_client_id_is_telegraf_by_default(tmp_path):
    assert settings(tmp_path).client_id == "Telegraf"


def test_linger_ms_and_batch_size_are_passed_through(tmp_path):
    producer = settings(tmp_path, "linger_ms = 250\nbatch_size = 65536\n")
    assert (producer.linger_ms, producer.batch_size) == (250, 65536)


def test_brokers_are_the_bootstrap_list_with_kafkas_default_port(tmp_path):
    producer = settings(tmp_path, 'brokers = ["k1:9092", "k2", "[::1]:9093"]\n')
    assert producer.bootstrap == [("k1", 9092), ("k2", 9092), ("::1", 9093)]


@pytest.mark.parametrize("address", ["k1:0", "k1:port", ":9092", "[::1]x"])
def test_a_broker_address_that_is_not_host_and_port_is_refused_naming_it(tmp_path, address):
    message = refusal(tmp_path, f'brokers = ["{address}"]\n')
    assert f'outputs.kafka: brokers: "{address}" is not' in message


def test_max_retry_is_passed_through(tmp_path):
    """It bounds the producer's resends only without idempotence (tests/integration/
    test_kafka_producer.py)."""
    assert settings(tmp_path, "idempotent_writes = false\nmax_retry = 7\n").max_retry == 7


# Record timestamp


def test_producer_timestamp_metric_stamps_the_record_with_the_metrics_time_in_ms(tmp_path):
    output = kafka_output(tmp_path, 'producer_timestamp = "metric"\n')
    (record,) = output.record_builder().records([cpu(time_ns=1_700_000_000_123_999_999)], [0])
    assert record.timestamp_ms == 1_700_000_000_123  # truncated, not rounded


def test_producer_timestamp_now_leaves_the_stamp_to_the_producer(tmp_path):
    """No timestamp given: the write stamps its records with the time it hands them over."""
    output = kafka_output(tmp_path, 'producer_timestamp = "now"\n')
    (record,) = output.record_builder().records([cpu()], [0])
    assert record.timestamp_ms is None


# Topic


def test_topic_suffix_tags_appends_each_keys_value_after_the_separator(tmp_path):
    output = kafka_output(tmp_path, """
        [outputs.kafka.topic_suffix]
          method = "tags"
          keys = ["host", "dc"]
          separator = "__"
    """)  # fmt: skip
    assert output.record_builder().topic_for(cpu({"dc": "eu-1"})) == "metrics__h1__eu-1"


def test_topic_suffix_tags_skips_a_key_the_metric_does_not_have(tmp_path):
    output = kafka_output(tmp_path, """
        [outputs.kafka.topic_suffix]
          method = "tags"
          keys = ["dc", "host"]
          separator = "."
    """)  # fmt: skip
    assert output.record_builder().topic_for(cpu()) == "metrics.h1"


def test_topic_suffix_measurement_appends_the_separator_and_measurement(tmp_path):
    output = kafka_output(tmp_path, """
        [outputs.kafka.topic_suffix]
          method = "measurement"
          separator = "_"
    """)  # fmt: skip
    assert output.record_builder().topic_for(cpu()) == "metrics_cpu"


def test_topic_tag_value_is_the_topic(tmp_path):
    output = kafka_output(tmp_path, 'topic_tag = "stream"\n')
    assert output.record_builder().topic_for(cpu({"stream": "alerts"})) == "alerts"


def test_without_the_topic_tag_a_metric_goes_to_topic(tmp_path):
    output = kafka_output(tmp_path, 'topic_tag = "stream"\n')
    assert output.record_builder().topic_for(cpu()) == "metrics"


def test_exclude_topic_tag_removes_the_tag_from_the_record_not_from_the_routing(tmp_path):
    output = kafka_output(tmp_path, 'topic_tag = "stream"\nexclude_topic_tag = true\n')
    metric = cpu({"stream": "alerts"})
    topic, _, value = output.record_builder().routed(metric)
    assert topic == "alerts"
    assert value.startswith(b"cpu,host=h1 ")
    assert metric.tags["stream"] == "alerts"  # the metric itself (other outputs') unchanged


def test_without_exclude_topic_tag_the_record_keeps_the_tag(tmp_path):
    output = kafka_output(tmp_path, 'topic_tag = "stream"\n')
    _, _, value = output.record_builder().routed(cpu({"stream": "alerts"}))
    assert value.startswith(b"cpu,host=h1,stream=alerts ")


# Message key


def test_routing_tag_value_is_the_message_key(tmp_path):
    output = kafka_output(tmp_path, 'routing_tag = "host"\n')
    assert output.record_builder().key_for(cpu()) == b"h1"


def test_routing_key_is_the_key_of_a_metric_without_the_routing_tag(tmp_path):
    output = kafka_output(tmp_path, 'routing_tag = "rack"\nrouting_key = "fallback"\n')
    assert output.record_builder().key_for(cpu()) == b"fallback"


def test_routing_key_random_gives_each_metric_its_own_key(tmp_path):
    output = kafka_output(tmp_path, 'routing_key = "random"\n')
    keys = {output.record_builder().key_for(cpu()) for _ in range(10)}
    assert len(keys) == 10 and None not in keys


def test_without_routing_options_records_have_no_key(tmp_path):
    assert kafka_output(tmp_path).record_builder().key_for(cpu()) is None


def test_routing_key_random_with_batch_format_draws_a_key_for_each_record(tmp_path):
    output = kafka_output(tmp_path, """
        routing_key = "random"
        use_batch_format = true
        max_message_bytes = 100
    """)  # fmt: skip
    records = list(output.record_builder().records([cpu() for _ in range(6)], range(6)))
    assert [len(record.indexes) for record in records] == [2, 2, 2]  # lines of 48 bytes
    keys = [record.key for record in records]
    assert None not in keys and len(set(keys)) == len(keys)


def test_metrics_without_the_routing_tag_share_records_keyed_at_random(tmp_path):
    output = kafka_output(tmp_path, """
        routing_tag = "rack"
        routing_key = "random"
        use_batch_format = true
    """)  # fmt: skip
    batch = [cpu(), cpu({"rack": "r1"}), cpu(), cpu({"rack": "r1"}), cpu()]
    records = list(output.record_builder().records(batch, range(5)))
    untagged, tagged = records
    assert (tagged.key, tagged.indexes) == (b"r1", [1, 3])
    assert untagged.indexes == [0, 2, 4] and untagged.key not in (None, b"r1")


def test_batch_format_keyed_by_routing_tag_gives_each_host_its_records_split_at_the_limit(
    tmp_path,
):
    output = kafka_output(tmp_path, """
        routing_tag = "host"
        use_batch_format = true
        max_message_bytes = 60
    """)  # fmt: skip
    rejected: list[str] = []
    output.report_rejected = rejected.append
    builder = output.record_builder()
    text = (
        "".join(f"cpu,host=h{i % 2} usage_idle={i}.5 {i}\n" for i in range(5))
        + 'cpu,host=h1 note="'
        + "x" * 200
        + '" 9\n'
    )
    metrics, errors = InfluxParser().parse(text.encode())  # metrics as the parser makes them
    assert not errors
    chosen = [0, 1, 2, 3, 4, 5]
    records = list(builder.records(metrics, chosen))
    assert [(r.key, r.indexes) for r in records] == [
        (b"h0", [0, 2]),  # lines of 29 bytes: two fit in 60
        (b"h0", [4]),
        (b"h1", [1, 3]),
    ]
    assert records[0].value == b"cpu,host=h0 usage_idle=0.5 0\ncpu,host=h0 usage_idle=2.5 2\n"
    assert records[1].timestamp_ms == 0  # the first metric's, in milliseconds
    assert len(rejected) == 1 and "larger than max_message_bytes (60)" in rejected[0]


def test_batch_format_keyed_by_routing_tag_takes_only_the_chosen_metrics(tmp_path):
    output = kafka_output(tmp_path, 'routing_tag = "host"\nuse_batch_format = true\n')
    batch = [cpu({"host": f"h{i % 3}"}) for i in range(9)]
    records = list(output.record_builder().records(batch, [1, 2, 4, 8]))
    assert [(r.key, r.indexes) for r in records] == [(b"h1", [1, 4]), (b"h2", [2, 8])]


def test_batch_format_puts_metrics_without_the_routing_tag_in_a_record_of_routing_keys(tmp_path):
    output = kafka_output(
        tmp_path, 'routing_tag = "host"\nrouting_key = "fallback"\nuse_batch_format = true\n'
    )
    untagged = Metric("cpu", {}, {"usage_idle": 1.5}, 1_000_000)
    batch = [cpu({"host": "h2"}), untagged, cpu({"host": "h1"}), untagged, cpu({"host": "h2"})]
    records = list(output.record_builder().records(batch, range(5)))
    # Groups in order of first appearance; the untagged metrics keyed by routing_key.
    assert [(r.key, r.indexes) for r in records] == [
        (b"h2", [0, 4]),
        (b"fallback", [1, 3]),
        (b"h1", [2]),
    ]
    assert records[1].value == b"cpu usage_idle=1.5 1000000\ncpu usage_idle=1.5 1000000\n"
