//! Between line protocol and the agent's metrics (agent.metric.Metric, native/src/metric.rs).
//!
//! Parsing reads the text without the GIL, a chunk of lines at a time, then makes the
//! metrics of that chunk. Names, tag sets and field keys that repeat within one call are
//! made once and shared: a fleet's lines repeat their series and keys, whatever their values.

use rustc_hash::FxHashMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use crate::influx_format::{
    push_field_key, push_float, push_int, push_measurement, push_string, push_tag_text, push_uint,
    tag_text_is_empty,
};
use crate::line_protocol::{Item, Line, LineError, Reader};
use crate::metric::{
    as_metric, field_views, tag_texts, uint_type, FieldKeys, FieldObjects, FieldView, Fields,
    Metric, ParsedValue, SeriesTags, TagObjects,
};

/// Lines parsed per release of the GIL: enough to make the release cheap, few enough that
/// the parsed lines waiting for their Python objects stay small.
const CHUNK_LINES: usize = 4096;
/// Data from this size on is read by a thread of its own, ahead of the Python objects made
/// of it, at most this many chunks ahead.
const READ_AHEAD_BYTES: usize = 1 << 20;
const READ_AHEAD_CHUNKS: usize = 4;
/// Distinct series or keys remembered within one call; past it the memory starts over.
const SHARED_STRINGS_LIMIT: usize = 65_536;
/// Characters of a refused line that its error shows.
const SHOWN_LINE_CHARS: usize = 120;

/// A Python str of bytes the reader accepted (so UTF-8).
fn py_text<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    Ok(PyString::new(py, utf8(bytes)?))
}

fn utf8(bytes: &[u8]) -> PyResult<&str> {
    std::str::from_utf8(bytes).map_err(|error| PyValueError::new_err(error.to_string()))
}

/// What the metrics of one parse call share: the names and tag sets of series, field keys,
/// and the key list of the line before (a line with the same keys shares it).
struct Shared {
    series: FxHashMap<Vec<u8>, (Py<PyAny>, SeriesTags)>,
    keys: FxHashMap<Vec<u8>, Py<PyString>>,
    last_field_keys: Option<FieldKeys>,
}

impl Shared {
    fn new() -> Self {
        Shared {
            series: FxHashMap::default(),
            keys: FxHashMap::default(),
            last_field_keys: None,
        }
    }

    fn key(&mut self, py: Python<'_>, key: &[u8]) -> PyResult<Py<PyString>> {
        if let Some(found) = self.keys.get(key) {
            return Ok(found.clone_ref(py));
        }
        if self.keys.len() >= SHARED_STRINGS_LIMIT {
            self.keys.clear();
        }
        let made = py_text(py, key)?.unbind();
        self.keys.insert(key.to_vec(), made.clone_ref(py));
        Ok(made)
    }

    /// The field keys of a line, shared with the line before when they are the same.
    fn field_keys(&mut self, py: Python<'_>, line: &Line<'_>) -> PyResult<FieldKeys> {
        if let Some(last) = &self.last_field_keys {
            let same = last.len() == line.fields.len()
                && last.iter().zip(&line.fields).all(|(known, (key, _))| {
                    known.bind(py).to_str().ok().map(str::as_bytes) == Some(key.as_ref())
                });
            if same {
                return Ok(last.clone());
            }
        }
        let keys: FieldKeys = line
            .fields
            .iter()
            .map(|(key, _)| self.key(py, key))
            .collect::<PyResult<Vec<_>>>()?
            .into();
        self.last_field_keys = Some(keys.clone());
        Ok(keys)
    }

    /// The name and tag set of the line's series.
    fn series(&mut self, py: Python<'_>, line: &Line<'_>) -> PyResult<(Py<PyAny>, SeriesTags)> {
        if let Some((name, tags)) = self.series.get(line.series_text) {
            return Ok((name.clone_ref(py), tags.clone()));
        }
        let name = py_text(py, &line.name)?.into_any().unbind();
        let tags: SeriesTags = line
            .tags
            .iter()
            .map(|(key, value)| Ok((self.key(py, key)?, self.key(py, value)?)))
            .collect::<PyResult<Vec<_>>>()?
            .into();
        if self.series.len() >= SHARED_STRINGS_LIMIT {
            self.series.clear();
        }
        self.series.insert(
            line.series_text.to_vec(),
            (name.clone_ref(py), tags.clone()),
        );
        Ok((name, tags))
    }
}

fn metric_object<'py>(
    py: Python<'py>,
    shared: &mut Shared,
    line: &Line<'_>,
    default_time_ns: Option<i64>,
) -> PyResult<Bound<'py, Metric>> {
    let (name, tags) = shared.series(py, line)?;
    let keys = shared.field_keys(py, line)?;
    let values = line
        .fields
        .iter()
        .map(|(_, value)| {
            ParsedValue::read(value).map_err(|error| PyValueError::new_err(error.to_string()))
        })
        .collect::<PyResult<std::sync::Arc<[ParsedValue]>>>()?;
    let time_ns = line
        .time_ns
        .or(default_time_ns)
        .into_pyobject(py)?
        .into_any()
        .unbind();
    Bound::new(py, Metric::parsed(name, tags, keys, values, time_ns))
}

/// (line, column, message, the line's text) of a refused line; the column counts characters.
fn error_tuple<'py>(
    py: Python<'py>,
    data: &[u8],
    error: &LineError,
) -> PyResult<Bound<'py, PyTuple>> {
    let line_end = data[error.line_start..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(data.len(), |index| error.line_start + index);
    let before =
        String::from_utf8_lossy(&data[error.line_start..error.offset.max(error.line_start)]);
    let column = before.chars().count() + 1;
    let line_text = String::from_utf8_lossy(&data[error.line_start..line_end]);
    let line_text = line_text.trim_end_matches('\r');
    let shown = if line_text.chars().count() <= SHOWN_LINE_CHARS {
        line_text.to_string()
    } else {
        let start: String = line_text.chars().take(SHOWN_LINE_CHARS).collect();
        start + "…"
    };
    PyTuple::new(
        py,
        [
            error.line.into_pyobject(py)?.into_any(),
            column.into_pyobject(py)?.into_any(),
            PyString::new(py, &error.message).into_any(),
            PyString::new(py, &shown).into_any(),
        ],
    )
}

/// Line protocol `data` (bytes: each line must be UTF-8; str) → (metrics, errors).
///
/// A line without a timestamp gets `default_time_ns` (None: its time_ns is None); timestamps
/// are multiplied by `scale` (1 for nanoseconds … 10^9 for seconds). Each error is (line,
/// column, message, line text).
#[pyfunction]
#[pyo3(signature = (data, default_time_ns, scale))]
pub fn parse_influx<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    default_time_ns: Option<i64>,
    scale: i64,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
    let (bytes, mut reader) = if let Ok(text) = data.cast::<PyString>() {
        let text = text.to_str()?;
        (text.as_bytes(), Reader::new_utf8(text, scale))
    } else if let Ok(raw) = data.cast::<PyBytes>() {
        (raw.as_bytes(), Reader::new(raw.as_bytes(), scale))
    } else {
        return Err(PyTypeError::new_err("parse_influx() takes bytes or str"));
    };
    let metrics = PyList::empty(py);
    let errors = PyList::empty(py);
    let mut shared = Shared::new();
    // Metrics hold no cycles; collecting while hundreds of thousands of them are made would
    // scan every live object again and again (the cost per line would grow with the data).
    let gc = py.import("gc")?;
    let collecting = gc.call_method0("isenabled")?.is_truthy()?;
    if collecting {
        gc.call_method0("disable")?;
    }
    let made = read_all(
        py,
        &mut reader,
        bytes,
        default_time_ns,
        &mut shared,
        &metrics,
        &errors,
    );
    if collecting {
        gc.call_method0("enable")?;
    }
    made?;
    Ok((metrics, errors))
}

fn read_all<'py>(
    py: Python<'py>,
    reader: &mut Reader<'_>,
    bytes: &[u8],
    default_time_ns: Option<i64>,
    shared: &mut Shared,
    metrics: &Bound<'py, PyList>,
    errors: &Bound<'py, PyList>,
) -> PyResult<()> {
    let mut keep = |chunk: &[Item<'_>]| -> PyResult<()> {
        for item in chunk {
            match item {
                Item::Metric(line) => {
                    metrics.append(metric_object(py, shared, line, default_time_ns)?)?
                }
                Item::Error(error) => errors.append(error_tuple(py, bytes, error)?)?,
            }
        }
        Ok(())
    };
    if bytes.len() < READ_AHEAD_BYTES {
        // Room for the lines of a chunk, guessed from the size of the data (a line takes
        // some tens of bytes at least), so a call of one line does not reserve a chunk's worth.
        let capacity = CHUNK_LINES.min(bytes.len() / 32 + 1);
        loop {
            let chunk: Vec<Item<'_>> = py.detach(|| {
                let mut chunk = Vec::with_capacity(capacity);
                chunk.extend(reader.by_ref().take(CHUNK_LINES));
                chunk
            });
            if chunk.is_empty() {
                return Ok(());
            }
            keep(&chunk)?;
        }
    }
    // Much data (a whole file): a thread of its own reads the next chunks while this one
    // makes the Python objects of the last, so the two halves of the work overlap.
    std::thread::scope(|scope| {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<Item<'_>>>(READ_AHEAD_CHUNKS);
        let reading = scope.spawn(move || loop {
            let mut chunk = Vec::with_capacity(CHUNK_LINES);
            chunk.extend(reader.by_ref().take(CHUNK_LINES));
            if chunk.is_empty() || chunks.send(chunk).is_err() {
                return;
            }
        });
        let mut result = Ok(());
        let mut received = received;
        loop {
            // The wait lets other Python threads run (the receiver goes along and back).
            let (back, next) = py.detach(move || {
                let next = received.recv();
                (received, next)
            });
            received = back;
            let Ok(chunk) = next else { break };
            result = keep(&chunk);
            if result.is_err() {
                break; // dropping the receiver ends the reading thread
            }
        }
        drop(received);
        if reading.join().is_err() {
            result = Err(PyValueError::new_err("the line reader failed"));
        }
        result
    })
}

/// How the fields of one metric are written: as the outputs' influx options say.
#[derive(Clone, Copy)]
struct FieldStyle {
    sort_fields: bool,
    uint_support: bool,
}

/// Appends one field value; false when it cannot be written (NaN, infinity, another type).
fn push_value(out: &mut Vec<u8>, value: &FieldView<'_, '_>, style: FieldStyle) -> PyResult<bool> {
    match value {
        FieldView::Float(number) => {
            if !number.is_finite() {
                return Ok(false);
            }
            push_float(out, *number);
        }
        FieldView::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        FieldView::UInt(number) => {
            if style.uint_support {
                push_uint(out, *number);
                out.push(b'u');
            } else {
                push_int(out, (*number).min(i64::MAX as u64) as i64);
                out.push(b'i');
            }
        }
        FieldView::Int(number) => {
            push_int(out, *number);
            out.push(b'i');
        }
        FieldView::Str(text) => push_string(out, text),
        FieldView::Other(value) => return push_other_value(out, value),
    }
    Ok(true)
}

/// A value of a type of its own (a subclass of int, float or str) or an int past 64 bits.
fn push_other_value(out: &mut Vec<u8>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(number) = value.cast::<PyInt>() {
        // Beyond 64 bits: written as Python writes the number.
        match number.extract::<i64>() {
            Ok(number) => push_int(out, number),
            Err(_) => out.extend_from_slice(number.str()?.to_str()?.as_bytes()),
        }
        out.push(b'i');
        return Ok(true);
    }
    if let Ok(text) = value.cast::<PyString>() {
        push_string(out, text.to_str()?);
        return Ok(true);
    }
    if let Ok(number) = value.cast::<PyFloat>() {
        let number = number.value();
        if !number.is_finite() {
            return Ok(false);
        }
        push_float(out, number);
        return Ok(true);
    }
    Ok(false)
}

/// Appends the line of one metric with its newline; appends nothing when no field can be
/// written. Returns whether a line was written.
fn push_line(
    out: &mut Vec<u8>,
    metric: &Bound<'_, PyAny>,
    uint: &Bound<'_, PyType>,
    style: FieldStyle,
) -> PyResult<bool> {
    let py = metric.py();
    // Read from a snapshot: no borrow of the metric is held while Python objects are made.
    let metric = as_metric(metric)?.borrow().snapshot(py);
    let start = out.len();
    let name = metric.name.bind(py).cast::<PyString>()?.to_str()?;
    if name.is_empty() {
        return Ok(false); // as Telegraf: a metric without a name is not written
    }
    push_measurement(out, name);

    let mut tag_objects = TagObjects::new();
    let mut tag_texts = tag_texts(py, &metric.tags, &mut tag_objects)?;
    tag_texts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (key, value) in tag_texts {
        if tag_text_is_empty(key) || tag_text_is_empty(value) {
            continue;
        }
        out.push(b',');
        push_tag_text(out, key);
        out.push(b'=');
        push_tag_text(out, value);
    }
    out.push(b' ');

    let fields_start = out.len();
    match &metric.fields {
        // In their order: written as the dict is walked, without gathering views first.
        Fields::Dict(dict) if !style.sort_fields => {
            for (key, value) in dict.bind(py).cast::<PyDict>()?.iter() {
                let key = key.cast_into::<PyString>()?;
                let value = FieldView::of_object(&value, uint);
                push_field(out, fields_start, key.to_str()?, &value, style)?;
            }
        }
        _ => {
            let mut field_objects = FieldObjects::new();
            let mut fields = field_views(py, &metric.fields, &mut field_objects, uint)?;
            if style.sort_fields {
                fields.sort_by(|a, b| a.0.cmp(b.0));
            }
            for (key, value) in &fields {
                push_field(out, fields_start, key, value, style)?;
            }
        }
    }
    if out.len() == fields_start {
        out.truncate(start);
        return Ok(false);
    }
    out.push(b' ');
    let time_ns = metric.time_ns.bind(py);
    match time_ns.extract::<i64>() {
        Ok(stamp) => push_int(out, stamp),
        Err(_) => out.extend_from_slice(time_ns.str()?.to_str()?.as_bytes()),
    }
    out.push(b'\n');
    Ok(true)
}

/// Appends `key=value` (after a comma unless it is the first field of the line, which
/// starts at `fields_start`); nothing for an empty key or a value that cannot be written.
fn push_field(
    out: &mut Vec<u8>,
    fields_start: usize,
    key: &str,
    value: &FieldView<'_, '_>,
    style: FieldStyle,
) -> PyResult<()> {
    if key.is_empty() {
        return Ok(());
    }
    let field_start = out.len();
    if field_start != fields_start {
        out.push(b',');
    }
    push_field_key(out, key);
    out.push(b'=');
    if !push_value(out, value, style)? {
        out.truncate(field_start);
    }
    Ok(())
}

/// Calls `each` with every metric's line (with its newline; empty when nothing of the
/// metric can be written) in a buffer it may take from.
fn for_each_line<'py>(
    py: Python<'py>,
    metrics: &Bound<'py, PyAny>,
    style: FieldStyle,
    out: &mut Vec<u8>,
    mut each: impl FnMut(&mut Vec<u8>) -> PyResult<()>,
) -> PyResult<()> {
    let uint = uint_type(py)?;
    for metric in metrics.try_iter()? {
        push_line(out, &metric?, uint, style)?;
        each(out)?;
    }
    Ok(())
}

/// One bytes object per metric: its line with a newline, or b"" when nothing of it can be
/// written (no field that is not NaN or infinite).
#[pyfunction]
pub fn format_influx_lines<'py>(
    py: Python<'py>,
    metrics: &Bound<'py, PyAny>,
    sort_fields: bool,
    uint_support: bool,
) -> PyResult<Bound<'py, PyList>> {
    let style = FieldStyle {
        sort_fields,
        uint_support,
    };
    let lines = PyList::empty(py);
    let mut out = Vec::with_capacity(512);
    for_each_line(py, metrics, style, &mut out, |line| {
        lines.append(PyBytes::new(py, line))?;
        line.clear();
        Ok(())
    })?;
    Ok(lines)
}

/// The lines of all metrics in one bytes object (metrics with nothing to write left out).
#[pyfunction]
pub fn format_influx_joined<'py>(
    py: Python<'py>,
    metrics: &Bound<'py, PyAny>,
    sort_fields: bool,
    uint_support: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let style = FieldStyle {
        sort_fields,
        uint_support,
    };
    let mut out = Vec::with_capacity(64 * 1024);
    for_each_line(py, metrics, style, &mut out, |_| Ok(()))?;
    Ok(PyBytes::new(py, &out))
}

/// The shortest decimal text that reads back as `value`, never in exponent form.
#[pyfunction]
pub fn format_float(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let mut out = Vec::with_capacity(24);
    push_float(&mut out, value);
    String::from_utf8(out).expect("digits, sign and point are ASCII")
}

/// One metric from each of `values` (Kafka record values, bytes), a line without a timestamp
/// dated with its record's: `timestamps_ms[i]` in milliseconds, or `now_ns` where that is
/// negative (no timestamp). None when any value is not exactly one line of line protocol (a
/// comment, a blank, two lines, a refused line, no value: the caller then reads each on its
/// own and tells what is wrong), or when a record's timestamp in nanoseconds is past 64 bits.
/// Timestamps in the lines are multiplied by `scale`.
#[pyfunction]
pub fn parse_influx_records<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyList>,
    timestamps_ms: &Bound<'py, PyList>,
    now_ns: i64,
    scale: i64,
) -> PyResult<Option<Bound<'py, PyList>>> {
    if values.len() != timestamps_ms.len() {
        return Err(PyValueError::new_err(
            "values and timestamps_ms differ in length",
        ));
    }
    let metrics = PyList::empty(py);
    let mut shared = Shared::new();
    for (value, timestamp) in values.iter().zip(timestamps_ms.iter()) {
        let Ok(raw) = value.cast::<PyBytes>() else {
            return Ok(None);
        };
        let mut reader = Reader::new(raw.as_bytes(), scale);
        let line = match (reader.next(), reader.next()) {
            (Some(Item::Metric(line)), None) => line,
            _ => return Ok(None),
        };
        let record_time_ns = match timestamp.extract::<i64>()? {
            ms if ms < 0 => Some(now_ns),
            ms => ms.checked_mul(1_000_000),
        };
        let Some(record_time_ns) = record_time_ns else {
            return Ok(None);
        };
        metrics.append(metric_object(py, &mut shared, &line, Some(record_time_ns))?)?;
    }
    Ok(Some(metrics))
}

/// The lines of one routing group: their text back to back, and each line's end and the
/// position of its metric.
struct RoutedLines {
    tag_value: Option<Py<PyAny>>,
    text: Vec<u8>,
    lines: Vec<(usize, usize)>,
}

/// outputs.kafka's use_batch_format with line protocol, for a whole write: the lines of the
/// metrics grouped by the value of tag `routing_tag` (one group without it; metrics that lack
/// the tag form the group None), groups in order of first appearance, each group's lines cut
/// into records of at most `limit` bytes (at least one line each). Returns the records as
/// (tag value or None, value, positions of their metrics) and the lines over the limit as
/// (position, size); metrics with nothing to write are left out.
#[pyfunction]
#[pyo3(signature = (metrics, sort_fields, uint_support, routing_tag, limit))]
pub fn format_influx_records<'py>(
    py: Python<'py>,
    metrics: &Bound<'py, PyAny>,
    sort_fields: bool,
    uint_support: bool,
    routing_tag: Option<Bound<'py, PyString>>,
    limit: usize,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
    let style = FieldStyle {
        sort_fields,
        uint_support,
    };
    let uint = uint_type(py)?;
    let too_large = PyList::empty(py);
    let mut groups: Vec<RoutedLines> = Vec::new();
    let mut group_index: FxHashMap<String, usize> = FxHashMap::default();
    let mut untagged: Option<usize> = None;
    let mut line = Vec::with_capacity(512);
    for (position, metric) in metrics.try_iter()?.enumerate() {
        let metric = metric?;
        line.clear();
        push_line(&mut line, &metric, uint, style)?;
        if line.is_empty() {
            continue;
        }
        if line.len() > limit {
            too_large.append((position, line.len()))?;
            continue;
        }
        let tag_value = match &routing_tag {
            Some(key) => Metric::tag_value(as_metric(&metric)?, key)?,
            None => None,
        };
        let index = match &tag_value {
            None => *untagged.get_or_insert_with(|| {
                groups.push(RoutedLines {
                    tag_value: None,
                    text: Vec::new(),
                    lines: Vec::new(),
                });
                groups.len() - 1
            }),
            Some(value) => {
                let text = value.bind(py).cast::<PyString>()?.to_str()?;
                match group_index.get(text) {
                    Some(&index) => index,
                    None => {
                        group_index.insert(text.to_owned(), groups.len());
                        groups.push(RoutedLines {
                            tag_value: Some(value.clone_ref(py)),
                            text: Vec::new(),
                            lines: Vec::new(),
                        });
                        groups.len() - 1
                    }
                }
            }
        };
        let group = &mut groups[index];
        group.text.extend_from_slice(&line);
        group.lines.push((group.text.len(), position));
    }
    let records = PyList::empty(py);
    for group in &groups {
        let mut first = 0; // the first line of the next record
        let mut start = 0; // where its text starts
        while first < group.lines.len() {
            // Lines while the record stays within the limit, at least one.
            let mut stop = first + 1;
            while stop < group.lines.len() && group.lines[stop].0 - start <= limit {
                stop += 1;
            }
            let end = group.lines[stop - 1].0;
            let positions: Vec<usize> = group.lines[first..stop]
                .iter()
                .map(|(_, position)| *position)
                .collect();
            let tag_value = match &group.tag_value {
                Some(value) => value.clone_ref(py).into_bound(py),
                None => py.None().into_bound(py),
            };
            records.append((
                tag_value,
                PyBytes::new(py, &group.text[start..end]),
                positions,
            ))?;
            first = stop;
            start = end;
        }
    }
    Ok((records, too_large))
}
