//! Between line protocol and the agent's Python metrics (agent.metric.Metric).
//!
//! Parsing reads the text without the GIL, a chunk of lines at a time, then makes the Python
//! objects of that chunk. Names, tag sets and field keys that repeat within one call share
//! their Python strings: a fleet's lines repeat their series and keys, whatever their values.

use rustc_hash::FxHashMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use crate::influx_format::{
    push_field_key, push_float, push_int, push_measurement, push_string, push_tag_text, push_uint,
    tag_text_is_empty,
};
use crate::line_protocol::{Item, Line, LineError, Reader, Value};

/// Lines parsed per release of the GIL: enough to make the release cheap, few enough that
/// the parsed lines waiting for their Python objects stay small.
const CHUNK_LINES: usize = 4096;
/// Distinct series or keys remembered within one call; past it the memory starts over.
const SHARED_STRINGS_LIMIT: usize = 65_536;
/// Characters of a refused line that its error shows.
const SHOWN_LINE_CHARS: usize = 120;

static METRIC_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UINT_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn metric_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    METRIC_TYPE.import(py, "agent.metric", "Metric")
}

fn uint_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UINT_TYPE.import(py, "agent.metric", "UInt")
}

/// A Python str of bytes the reader accepted (so UTF-8).
fn py_text<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(PyString::new(py, text)),
        Err(error) => Err(PyValueError::new_err(error.to_string())),
    }
}

/// The Python objects a chunk's lines share within one parse call.
struct Shared<'py> {
    series: FxHashMap<Vec<u8>, (Bound<'py, PyString>, Bound<'py, PyDict>)>,
    keys: FxHashMap<Vec<u8>, Bound<'py, PyString>>,
    /// The field keys of the line before, and a dict of them (values None) that a line with
    /// the same keys in the same order copies: a copy of a dict is one block copied, while
    /// building one key by key grows and rehashes it.
    last_field_keys: Vec<Vec<u8>>,
    last_fields: Option<(Vec<Bound<'py, PyString>>, Bound<'py, PyDict>)>,
}

impl<'py> Shared<'py> {
    fn new() -> Self {
        Shared {
            series: FxHashMap::default(),
            keys: FxHashMap::default(),
            last_field_keys: Vec::new(),
            last_fields: None,
        }
    }

    /// The fields dict of a line: its keys in order, its values set.
    fn fields(&mut self, py: Python<'py>, line: &Line<'_>) -> PyResult<Bound<'py, PyDict>> {
        let same_keys = self.last_field_keys.len() == line.fields.len()
            && self
                .last_field_keys
                .iter()
                .zip(&line.fields)
                .all(|(last, (key, _))| last.as_slice() == key.as_ref());
        if !same_keys {
            let mut keys = Vec::with_capacity(line.fields.len());
            let template = PyDict::new(py);
            for (key, _) in &line.fields {
                let key = self.key(py, key)?;
                template.set_item(&key, py.None())?;
                keys.push(key);
            }
            self.last_field_keys = line.fields.iter().map(|(key, _)| key.to_vec()).collect();
            self.last_fields = Some((keys, template));
        }
        let (keys, template) = self.last_fields.as_ref().expect("set just above");
        let fields = template.copy()?;
        for (key, (_, value)) in keys.iter().zip(&line.fields) {
            fields.set_item(key, value_object(py, value)?)?;
        }
        Ok(fields)
    }

    fn key(&mut self, py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if let Some(found) = self.keys.get(key) {
            return Ok(found.clone());
        }
        if self.keys.len() >= SHARED_STRINGS_LIMIT {
            self.keys.clear();
        }
        let made = py_text(py, key)?;
        self.keys.insert(key.to_vec(), made.clone());
        Ok(made)
    }

    /// The name and a fresh tags dict of the line's series.
    fn series(
        &mut self,
        py: Python<'py>,
        line: &Line<'_>,
    ) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyDict>)> {
        if let Some((name, tags)) = self.series.get(line.series_text) {
            return Ok((name.clone(), tags.copy()?));
        }
        let name = py_text(py, &line.name)?;
        let tags = PyDict::new(py);
        for (key, value) in &line.tags {
            tags.set_item(self.key(py, key)?, self.key(py, value)?)?;
        }
        if self.series.len() >= SHARED_STRINGS_LIMIT {
            self.series.clear();
        }
        self.series
            .insert(line.series_text.to_vec(), (name.clone(), tags.clone()));
        Ok((name, tags.copy()?))
    }
}

fn value_object<'py>(py: Python<'py>, value: &Value<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Float(number) => PyFloat::new(py, *number).into_any(),
        Value::Int(number) => number.into_pyobject(py)?.into_any(),
        Value::UInt(number) => uint_type(py)?.call1((*number,))?,
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Str(text) => py_text(py, text)?.into_any(),
    })
}

fn metric_object<'py>(
    py: Python<'py>,
    shared: &mut Shared<'py>,
    line: &Line<'_>,
    default_time_ns: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let (name, tags) = shared.series(py, line)?;
    let fields = shared.fields(py, line)?;
    let time_ns = line.time_ns.or(default_time_ns);
    // The Metric dataclass's __init__ is Python code (a third of a microsecond a call); its
    // instance is made as __init__ would make it, with every attribute set here.
    let metric_type = metric_type(py)?;
    let metric = OBJECT_NEW
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py
                .import("builtins")?
                .getattr("object")?
                .getattr("__new__")?
                .unbind())
        })?
        .bind(py)
        .call1((metric_type,))?;
    metric.setattr(intern!(py, "name"), name)?;
    metric.setattr(intern!(py, "tags"), tags)?;
    metric.setattr(intern!(py, "fields"), fields)?;
    metric.setattr(intern!(py, "time_ns"), time_ns)?;
    Ok(metric)
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
    shared: &mut Shared<'py>,
    metrics: &Bound<'py, PyList>,
    errors: &Bound<'py, PyList>,
) -> PyResult<()> {
    loop {
        let chunk: Vec<Item<'_>> = py.detach(|| reader.by_ref().take(CHUNK_LINES).collect());
        if chunk.is_empty() {
            break;
        }
        for item in &chunk {
            match item {
                Item::Metric(line) => {
                    metrics.append(metric_object(py, shared, line, default_time_ns)?)?
                }
                Item::Error(error) => errors.append(error_tuple(py, bytes, error)?)?,
            }
        }
    }
    Ok(())
}

/// How the fields of one metric are written: as the outputs' influx options say.
#[derive(Clone, Copy)]
struct FieldStyle {
    sort_fields: bool,
    uint_support: bool,
}

/// Appends one field value; false when it cannot be written (NaN, infinity, another type).
fn push_value(
    out: &mut Vec<u8>,
    value: &Bound<'_, PyAny>,
    uint: &Bound<'_, PyType>,
    style: FieldStyle,
) -> PyResult<bool> {
    if let Ok(number) = value.cast_exact::<PyFloat>() {
        let number = number.value();
        if !number.is_finite() {
            return Ok(false);
        }
        push_float(out, number);
        return Ok(true);
    }
    if let Ok(flag) = value.cast_exact::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"true" } else { b"false" });
        return Ok(true);
    }
    if value.get_type().is(uint) {
        let number: u64 = value.extract()?;
        if style.uint_support {
            push_uint(out, number);
            out.push(b'u');
        } else {
            push_int(out, number.min(i64::MAX as u64) as i64);
            out.push(b'i');
        }
        return Ok(true);
    }
    if let Ok(number) = value.cast::<PyInt>() {
        match number.extract::<i64>() {
            Ok(number) => push_int(out, number),
            // Beyond 64 bits: written as Python writes the number.
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
    let start = out.len();
    let name = metric.getattr(intern!(py, "name"))?;
    let tags = metric.getattr(intern!(py, "tags"))?;
    let fields = metric.getattr(intern!(py, "fields"))?;
    let time_ns = metric.getattr(intern!(py, "time_ns"))?;
    let tags = tags.cast::<PyDict>()?;
    let fields = fields.cast::<PyDict>()?;

    let name = name.cast::<PyString>()?.to_str()?;
    if name.is_empty() {
        return Ok(false); // as Telegraf: a metric without a name is not written
    }
    push_measurement(out, name);
    let mut tag_pairs: Vec<(Bound<'_, PyString>, Bound<'_, PyString>)> =
        Vec::with_capacity(tags.len());
    for (key, value) in tags.iter() {
        tag_pairs.push((key.cast_into::<PyString>()?, value.cast_into::<PyString>()?));
    }
    let mut tag_texts: Vec<(&str, &str)> = Vec::with_capacity(tag_pairs.len());
    for (key, value) in &tag_pairs {
        tag_texts.push((key.to_str()?, value.to_str()?));
    }
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
    let write_field =
        |out: &mut Vec<u8>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>| -> PyResult<()> {
            let key = key.cast::<PyString>()?.to_str()?;
            if key.is_empty() {
                return Ok(());
            }
            let field_start = out.len();
            if field_start != fields_start {
                out.push(b',');
            }
            push_field_key(out, key);
            out.push(b'=');
            if !push_value(out, value, uint, style)? {
                out.truncate(field_start);
            }
            Ok(())
        };
    if style.sort_fields {
        let mut items: Vec<(String, Bound<'_, PyAny>)> = Vec::with_capacity(fields.len());
        for (key, value) in fields.iter() {
            items.push((key.cast::<PyString>()?.to_str()?.to_owned(), value));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in items {
            write_field(out, &PyString::new(py, &key).into_any(), &value)?;
        }
    } else {
        for (key, value) in fields.iter() {
            write_field(out, &key, &value)?;
        }
    }
    if out.len() == fields_start {
        out.truncate(start);
        return Ok(false);
    }
    out.push(b' ');
    match time_ns.extract::<i64>() {
        Ok(stamp) => push_int(out, stamp),
        Err(_) => out.extend_from_slice(time_ns.str()?.to_str()?.as_bytes()),
    }
    out.push(b'\n');
    Ok(true)
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
