"""The native writer of Kafka record batches (outputs.kafka's producer).

Each batch it writes is read back by kafka-python's own record reader, a decoder
independent of the writer under test, and by the sink's reader."""

from __future__ import annotations

import os
import struct

import pytest
from kafka.record.default_records import DefaultRecordBatch

from agent import _native
from agent.sink.fetch import decompress
from plugins.outputs.kafka_producer import compress

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
ATTRIBUTES_AT = 21


def write(
    values: list[bytes],
    keys: list[bytes | None] | None = None,
    timestamps_ms: list[int] | None = None,
    codec: int = NONE,
    producer: tuple[int, int, int] = (-1, -1, -1),
) -> bytes:
    keys = keys if keys is not None else [None] * len(values)
    timestamps_ms = timestamps_ms or [1_700_000_000_000 + i for i in range(len(values))]
    return _native.write_record_batch(keys, values, timestamps_ms, *producer, codec, compress)


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_kafka_pythons_reader_gets_back_every_key_value_and_timestamp(codec):
    values = [b"cpu,host=h%d usage=%d.5 %d\n" % (i % 7, i, i) for i in range(300)]
    keys = [b"host-%d" % (i % 7) if i % 3 else None for i in range(300)]
    stamps = [1_700_000_000_000 + (i * 37) % 1000 for i in range(300)]  # not in order
    batch = DefaultRecordBatch(write(values, keys, stamps, codec))
    assert batch.validate_crc()
    assert batch.compression_type == codec
    records = list(batch)
    assert [r.value for r in records] == values
    assert [r.key for r in records] == keys
    assert [r.timestamp for r in records] == stamps
    assert [r.offset for r in records] == list(range(300))  # deltas from base offset 0
    assert batch.max_timestamp == max(stamps)


def test_the_idempotent_producers_id_epoch_and_sequence_are_in_the_header():
    batch = DefaultRecordBatch(write([b"a\n", b"b\n"], producer=(4_000_000_001, 3, 77)))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (4_000_000_001, 3, 77)
    assert batch.last_offset_delta == 1


def test_without_idempotence_the_producer_fields_are_minus_one():
    batch = DefaultRecordBatch(write([b"a\n"]))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)


def test_a_body_that_compression_would_not_shrink_is_sent_uncompressed():
    noise = [os.urandom(200) for _ in range(5)]
    data = write(noise, codec=LZ4)
    (attributes,) = struct.unpack_from(">h", data, ATTRIBUTES_AT)
    assert attributes & 0x07 == NONE
    assert [r.value for r in DefaultRecordBatch(data)] == noise


@pytest.mark.parametrize("codec", [NONE, LZ4, ZSTD])
def test_the_sinks_reader_reads_what_the_producer_wrote(codec):
    values = [b"mem used=%di %d\n" % (i, i) for i in range(100)]
    offsets, stamps, keys, read_values, next_offset = _native.read_record_batches(
        write(values, [b"k"] * 100, [5_000] * 100, codec), 0, decompress
    )
    assert (read_values, keys, stamps) == (values, [b"k"] * 100, [5_000] * 100)
    assert (offsets, next_offset) == (list(range(100)), 100)


@pytest.mark.parametrize(
    ("keys", "values", "stamps"),
    [([], [], []), ([None], [b"a", b"b"], [1, 2]), ([None, None], [b"a", b"b"], [1])],
)
def test_lists_of_other_lengths_or_none_at_all_are_refused(keys, values, stamps):
    with pytest.raises(ValueError, match="one key, value and timestamp per record"):
        _native.write_record_batch(keys, values, stamps, -1, -1, -1, NONE, compress)
