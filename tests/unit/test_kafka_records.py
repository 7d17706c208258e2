"""The native reader of Kafka record batches (the bytes a fetch response carries).

The batches are written by kafka-python's own record builder, an encoder independent of the
reader under test; batches it cannot make (control batches, log-append time, damage) are
its batches with bytes changed and the CRC made again."""

from __future__ import annotations

import struct

import crc32c
import pytest
from kafka.record.memory_records import MemoryRecordsBuilder

from agent import _native
from agent.sink.fetch import CorruptRecords, decompress

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
ATTRIBUTES_AT = 21
CRC_AT = 17
MAX_TIMESTAMP_AT = 35


def batch(
    first_offset: int,
    values: list[bytes | None],
    codec: int = NONE,
    keys: list[bytes | None] | None = None,
    first_timestamp_ms: int = 1_000,
) -> bytes:
    builder = MemoryRecordsBuilder(magic=2, compression_type=codec, batch_size=1 << 20)
    for index, value in enumerate(values):
        key = keys[index] if keys else None
        builder.append(first_timestamp_ms + index, key, value, headers=[("h", b"header value")])
    builder.close()
    data = bytearray(builder.buffer())
    struct.pack_into(">q", data, 0, first_offset)  # the base offset the broker assigned
    return bytes(data)


def with_attributes(data: bytes, set_bits: int) -> bytes:
    """The batch with attribute bits set and its CRC made again."""
    changed = bytearray(data)
    (attributes,) = struct.unpack_from(">h", changed, ATTRIBUTES_AT)
    struct.pack_into(">h", changed, ATTRIBUTES_AT, attributes | set_bits)
    return with_new_crc(changed)


def with_new_crc(data: bytearray) -> bytes:
    struct.pack_into(">I", data, CRC_AT, crc32c.crc32c(bytes(data[ATTRIBUTES_AT:])))
    return bytes(data)


def read(data: bytes, fetch_offset: int = 0) -> tuple:
    return _native.read_record_batches(data, fetch_offset, decompress)


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_each_codec_gives_back_offsets_timestamps_keys_and_values(codec):
    values = [b"cpu,host=a v=%di 1" % i for i in range(50)] + [None]
    keys = [b"host-%d" % i if i % 3 else None for i in range(51)]
    offsets, timestamps, read_keys, read_values, next_offset = read(
        batch(100, values, codec, keys), fetch_offset=100
    )
    assert offsets == list(range(100, 151))
    assert timestamps == [1_000 + i for i in range(51)]
    assert read_keys == keys
    assert read_values == values
    assert next_offset == 151


def test_records_before_the_fetch_offset_are_left_out():
    offsets, _, _, values, next_offset = read(batch(10, [b"a", b"b", b"c", b"d"]), 12)
    assert (offsets, values, next_offset) == ([12, 13], [b"c", b"d"], 14)


def test_several_batches_are_read_and_a_last_one_cut_short_waits_for_the_next_fetch():
    whole = batch(0, [b"a", b"b"]) + batch(2, [b"c"], LZ4)
    cut = batch(3, [b"d", b"e"])
    offsets, _, _, values, next_offset = read(whole + cut[:-5])
    assert (offsets, values, next_offset) == ([0, 1, 2], [b"a", b"b", b"c"], 3)


def test_a_fetch_holding_only_part_of_a_batch_gives_nothing_and_no_next_offset():
    data = batch(7, [b"x" * 500])
    for length in (0, 11, 12, 61, len(data) - 1):
        assert read(data[:length]) == ([], [], [], [], None)


def test_a_control_batch_gives_no_record_but_moves_the_next_offset_past_it():
    control = with_attributes(batch(5, [b"\x00\x00\x00\x01"]), 0x20)
    offsets, _, _, values, next_offset = read(batch(3, [b"a", b"b"]) + control)
    assert (offsets, values, next_offset) == ([3, 4], [b"a", b"b"], 6)


def test_log_append_time_gives_every_record_the_brokers_time():
    data = bytearray(with_attributes(batch(0, [b"a", b"b"]), 0x08))
    struct.pack_into(">q", data, MAX_TIMESTAMP_AT, 1_700_000_000_000)
    _, timestamps, _, _, _ = read(with_new_crc(data))
    assert timestamps == [1_700_000_000_000] * 2


def test_a_crc_mismatch_is_refused_naming_the_batch_offset():
    data = bytearray(batch(42, [b"cpu v=1i 1"]))
    data[-3] ^= 0xFF
    with pytest.raises(ValueError, match="record batch at offset 42: CRC mismatch"):
        read(bytes(data))


def test_message_format_v1_is_refused_naming_the_format():
    builder = MemoryRecordsBuilder(magic=1, compression_type=NONE, batch_size=1 << 20)
    builder.append(1_000, None, b"cpu v=1i 1")
    builder.close()
    with pytest.raises(ValueError, match="message format v1; only v2"):
        read(bytes(builder.buffer()))


def test_a_record_that_runs_past_its_batch_is_refused():
    data = bytearray(batch(9, [b"abc"]))
    records_at = 61
    data[records_at] = 0x7E  # the record's length: 63, longer than what is left
    with pytest.raises(ValueError, match="record batch at offset 9: record 0 is malformed"):
        read(with_new_crc(data))


def test_an_unknown_codec_is_a_corrupt_records_error():
    with pytest.raises(CorruptRecords, match="unknown compression codec 5"):
        read(with_attributes(batch(0, [b"a"]), 0x05))
