//! Kafka's record batches (message format v2): read from the bytes a fetch response carries,
//! and written for a produce request.
//!
//! The sink fetches a partition's records as the broker stores them and reads them here:
//! kafka-python's reader spends about as long per record in Python as the whole sink may
//! spend per metric. What the sink needs of a record is its offset, timestamp, key and
//! value; headers are skipped. outputs.kafka's producer writes its batches here for the same
//! reason (kafka-python's writer encodes each record in Python). Compressed bodies go
//! through a Python callable that knows the codecs (the same packages kafka-python uses),
//! one call per batch.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

/// Bytes before a batch's records: base offset (8), length (4), partition leader epoch (4),
/// magic (1), CRC (4), attributes (2), last offset delta (4), base and max timestamps (8
/// each), producer id (8), producer epoch (2), base sequence (4), record count (4).
const BATCH_HEADER_BYTES: usize = 61;
/// The batch length counts the bytes after itself: from the leader epoch on.
const LENGTH_FIELD_END: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;
/// The leader epoch a producer leaves for the broker to fill in.
const NO_PARTITION_LEADER_EPOCH: i32 = -1;

const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME: i16 = 0x08;
const CONTROL_BATCH: i16 = 0x20;

/// A problem with the bytes of a batch, and the offset the batch starts at.
struct Corrupt {
    base_offset: i64,
    reason: String,
}

impl Corrupt {
    fn new(base_offset: i64, reason: impl Into<String>) -> Self {
        Corrupt {
            base_offset,
            reason: reason.into(),
        }
    }

    fn into_py(self) -> PyErr {
        PyValueError::new_err(format!(
            "record batch at offset {}: {}",
            self.base_offset, self.reason
        ))
    }
}

fn be_i16(data: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([data[at], data[at + 1]])
}

fn be_i32(data: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(data[at..at + 4].try_into().expect("four bytes"))
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("four bytes"))
}

fn be_i64(data: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(data[at..at + 8].try_into().expect("eight bytes"))
}

/// Reads the records of one batch body: zigzag varints and the byte runs they measure.
struct RecordCursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> RecordCursor<'a> {
    fn varlong(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.at)?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.varlong()?).ok()
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.data.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// A length-prefixed run of bytes; None inside for a length of -1 (null).
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let length = self.varint()?;
        if length < 0 {
            return (length == -1).then_some(None);
        }
        let end = self.at.checked_add(length as usize)?;
        let run = self.data.get(self.at..end)?;
        self.at = end;
        Some(Some(run))
    }
}

/// One record as the sink reads it.
struct Record<'a> {
    offset: i64,
    timestamp_ms: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// The records of one batch body (already decompressed).
fn batch_records<'a>(
    body: &'a [u8],
    count: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<Vec<Record<'a>>, Corrupt> {
    let malformed = |index: i32| Corrupt::new(base_offset, format!("record {index} is malformed"));
    let mut cursor = RecordCursor { data: body, at: 0 };
    let mut records = Vec::with_capacity(count.max(0) as usize);
    for index in 0..count {
        let length = cursor.varint().ok_or_else(|| malformed(index))?;
        let start = cursor.at;
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| start.checked_add(length))
            .filter(|&end| end <= body.len())
            .ok_or_else(|| malformed(index))?;
        let mut record = RecordCursor {
            data: &body[..end],
            at: start,
        };
        let parsed = (|| {
            record.byte()?; // attributes: none defined for records
            let timestamp_delta = record.varlong()?;
            let offset_delta = record.varint()?;
            let key = record.bytes()?;
            let value = record.bytes()?;
            let headers = record.varint()?;
            for _ in 0..headers {
                record.bytes()?; // the header's key (a string)
                record.bytes()?; // its value
            }
            Some(Record {
                offset: base_offset.checked_add(i64::from(offset_delta))?,
                timestamp_ms: log_append_time
                    .unwrap_or_else(|| base_timestamp.wrapping_add(timestamp_delta)),
                key,
                value,
            })
        })();
        match parsed {
            Some(parsed) if record.at == end => records.push(parsed),
            _ => return Err(malformed(index)),
        }
        cursor.at = end;
    }
    if cursor.at != body.len() {
        return Err(Corrupt::new(
            base_offset,
            format!("{} bytes after its {count} records", body.len() - cursor.at),
        ));
    }
    Ok(records)
}

fn py_bytes_or_none(py: Python<'_>, run: Option<&[u8]>) -> Py<PyAny> {
    match run {
        Some(run) => PyBytes::new(py, run).into_any().unbind(),
        None => py.None(),
    }
}

/// The records of `data` (a partition's records from a fetch response) at `fetch_offset` or
/// after, as (offsets, timestamps in ms, keys, values, next offset): four lists of one
/// entry per record, and the offset after the last whole batch (None when `data` holds no
/// whole batch; a fetch may end with part of one). Control batches (transaction markers)
/// give no records but move the next offset past them. `decompress(codec, data)` returns
/// the body of a compressed batch (codec 1 gzip, 2 snappy, 3 lz4, 4 zstd). A batch whose
/// CRC does not match, or that is not message format v2, is a ValueError naming its offset.
#[pyfunction]
pub fn read_record_batches<'py>(
    py: Python<'py>,
    data: &[u8],
    fetch_offset: i64,
    decompress: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let offsets = PyList::empty(py);
    let timestamps = PyList::empty(py);
    let keys = PyList::empty(py);
    let values = PyList::empty(py);
    let mut next_offset: Option<i64> = None;
    let mut at = 0;
    while data.len() - at >= LENGTH_FIELD_END {
        let base_offset = be_i64(data, at);
        let length = be_i32(data, at + 8);
        let Some(end) = usize::try_from(length)
            .ok()
            .map(|length| at + LENGTH_FIELD_END + length)
            .filter(|&end| end <= data.len())
        else {
            break; // the fetch ends inside this batch
        };
        let batch = &data[at..end];
        at = end;
        if batch.len() <= MAGIC_AT {
            return Err(Corrupt::new(base_offset, "shorter than its header").into_py());
        }
        let magic = batch[MAGIC_AT];
        if magic != 2 {
            return Err(Corrupt::new(
                base_offset,
                format!("message format v{magic}; only v2 (Kafka 0.11 and later) is read"),
            )
            .into_py());
        }
        if batch.len() < BATCH_HEADER_BYTES {
            return Err(Corrupt::new(base_offset, "shorter than its header").into_py());
        }
        if crc32c::crc32c(&batch[ATTRIBUTES_AT..]) != be_u32(batch, CRC_AT) {
            return Err(Corrupt::new(base_offset, "CRC mismatch (corrupt data)").into_py());
        }
        let attributes = be_i16(batch, ATTRIBUTES_AT);
        let last_offset = base_offset + i64::from(be_i32(batch, LAST_OFFSET_DELTA_AT));
        next_offset = Some(last_offset + 1);
        if attributes & CONTROL_BATCH != 0 || last_offset < fetch_offset {
            continue;
        }
        let log_append_time =
            (attributes & LOG_APPEND_TIME != 0).then(|| be_i64(batch, MAX_TIMESTAMP_AT));
        let base_timestamp = be_i64(batch, BASE_TIMESTAMP_AT);
        let count = be_i32(batch, RECORD_COUNT_AT);
        let codec = attributes & COMPRESSION_MASK;
        let decompressed;
        let body: &[u8] = if codec == 0 {
            &batch[BATCH_HEADER_BYTES..]
        } else {
            let compressed = PyBytes::new(py, &batch[BATCH_HEADER_BYTES..]);
            decompressed = decompress.call1((codec, compressed))?;
            decompressed.cast::<PyBytes>()?.as_bytes()
        };
        let records = batch_records(body, count, base_offset, base_timestamp, log_append_time)
            .map_err(Corrupt::into_py)?;
        for record in records {
            if record.offset < fetch_offset {
                continue;
            }
            offsets.append(record.offset)?;
            timestamps.append(record.timestamp_ms)?;
            keys.append(py_bytes_or_none(py, record.key))?;
            values.append(py_bytes_or_none(py, record.value))?;
        }
    }
    PyTuple::new(
        py,
        [
            offsets.into_any(),
            timestamps.into_any(),
            keys.into_any(),
            values.into_any(),
            next_offset.into_pyobject(py)?.into_any(),
        ],
    )
}

/// Appends `value` zigzag-encoded as a varint (records' lengths, deltas).
fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A run of bytes after its length; length -1 for None.
fn put_bytes(out: &mut Vec<u8>, run: Option<&[u8]>) {
    match run {
        Some(run) => {
            put_varlong(out, run.len() as i64);
            out.extend_from_slice(run);
        }
        None => put_varlong(out, -1),
    }
}

/// The body of a batch: each record with its length, attributes (none), timestamp delta,
/// offset delta, key, value and no headers.
fn records_body(
    keys: &[Option<&[u8]>],
    values: &[&[u8]],
    timestamps_ms: &[i64],
    base_timestamp: i64,
) -> Vec<u8> {
    let size: usize = values.iter().map(|value| value.len() + 24).sum::<usize>()
        + keys.iter().flatten().map(|key| key.len()).sum::<usize>();
    let mut body = Vec::with_capacity(size);
    let mut record = Vec::with_capacity(64);
    for (offset_delta, ((key, value), timestamp)) in
        keys.iter().zip(values).zip(timestamps_ms).enumerate()
    {
        record.clear();
        record.push(0);
        put_varlong(&mut record, timestamp.wrapping_sub(base_timestamp));
        put_varlong(&mut record, offset_delta as i64);
        put_bytes(&mut record, *key);
        put_bytes(&mut record, Some(value));
        put_varlong(&mut record, 0);
        put_varlong(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    body
}

/// One record batch (message format v2, base offset 0: the broker assigns offsets) holding
/// a record for each of `keys`, `values` and `timestamps_ms` (parallel lists; a key may be
/// None). `producer_id`, `producer_epoch` and `base_sequence` are the idempotent producer's
/// (-1 each without idempotence). With `codec` 1-4 the records are compressed by
/// `compress(codec, body)`; a body that does not shrink is sent uncompressed, as
/// kafka-python's producer does.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn write_record_batch<'py>(
    py: Python<'py>,
    keys: &Bound<'py, PyList>,
    values: &Bound<'py, PyList>,
    timestamps_ms: Vec<i64>,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    codec: i16,
    compress: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    if values.is_empty() || keys.len() != values.len() || timestamps_ms.len() != values.len() {
        return Err(PyValueError::new_err(
            "a record batch needs one key, value and timestamp per record, and a record",
        ));
    }
    let count = i32::try_from(values.len())
        .map_err(|_| PyValueError::new_err("too many records for one batch"))?;
    let base_timestamp = timestamps_ms[0];
    let max_timestamp = timestamps_ms
        .iter()
        .copied()
        .max()
        .unwrap_or(base_timestamp);
    let keys: Vec<Option<Bound<'py, PyBytes>>> = keys
        .iter()
        .map(|key| match key.is_none() {
            true => Ok(None),
            false => key.cast_into::<PyBytes>().map(Some),
        })
        .collect::<Result<_, _>>()?;
    let values: Vec<Bound<'py, PyBytes>> = values
        .iter()
        .map(|value| value.cast_into::<PyBytes>())
        .collect::<Result<_, _>>()?;
    let key_runs: Vec<Option<&[u8]>> = keys
        .iter()
        .map(|key| key.as_ref().map(|k| k.as_bytes()))
        .collect();
    let value_runs: Vec<&[u8]> = values.iter().map(|value| value.as_bytes()).collect();
    // Written holding the GIL: a megabyte takes about 0.1 ms, less than the wait to take the
    // GIL back from a busy main thread.
    let body = records_body(&key_runs, &value_runs, &timestamps_ms, base_timestamp);
    let mut attributes = 0i16;
    let compressed;
    let mut records: &[u8] = &body;
    if codec != 0 {
        compressed = compress.call1((codec, PyBytes::new(py, &body)))?;
        let shrunk = compressed.cast::<PyBytes>()?.as_bytes();
        if shrunk.len() < body.len() {
            attributes = codec & COMPRESSION_MASK;
            records = shrunk;
        }
    }
    let mut batch = vec![0u8; BATCH_HEADER_BYTES];
    batch.extend_from_slice(records);
    let length = i32::try_from(batch.len() - LENGTH_FIELD_END)
        .map_err(|_| PyValueError::new_err("a record batch over 2 GB"))?;
    let mut put = |at: usize, bytes: &[u8]| batch[at..at + bytes.len()].copy_from_slice(bytes);
    put(8, &length.to_be_bytes());
    put(12, &NO_PARTITION_LEADER_EPOCH.to_be_bytes());
    put(MAGIC_AT, &[2]);
    put(ATTRIBUTES_AT, &attributes.to_be_bytes());
    put(LAST_OFFSET_DELTA_AT, &(count - 1).to_be_bytes());
    put(BASE_TIMESTAMP_AT, &base_timestamp.to_be_bytes());
    put(MAX_TIMESTAMP_AT, &max_timestamp.to_be_bytes());
    put(PRODUCER_ID_AT, &producer_id.to_be_bytes());
    put(PRODUCER_EPOCH_AT, &producer_epoch.to_be_bytes());
    put(BASE_SEQUENCE_AT, &base_sequence.to_be_bytes());
    put(RECORD_COUNT_AT, &count.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(PyBytes::new(py, &batch))
}
