//! The sink stores' rows of a batch, in Telegraf's outputs.postgresql layout (agent/sink/layout.py
//! says what the layout is; agent/sink/postgres.py and agent/sink/store.py how each store
//! writes a batch).
//!
//! `point_tables()` reads a batch's metrics once: per measurement, its points (a point is a
//! tag set at a time to the microsecond; metrics of one point merge their fields, a later
//! value of a field replacing an earlier one), its tag sets by tag_id, and the column type
//! each field's values call for. Once the store knows the table's columns,
//! `PointTable.copy_data()` writes the points as one PostgreSQL COPY … (FORMAT BINARY)
//! stream, and `PointTable.sqlite_parameters()` as the parameters of SQLite's INSERT.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString, PyTuple};
use rustc_hash::FxHashMap;

use crate::metric::{
    as_metric, field_views, tag_texts, uint_type, FieldKeys, FieldObjects, FieldView, Fields,
    ParsedValue, TagObjects, Tags,
};
use crate::point_runs::PointRun;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01), in microseconds.
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The column type a new column for values like this gets (Telegraf's choice).
fn column_type_of(value: &ParsedValue) -> &'static str {
    match value {
        ParsedValue::Float(_) => "double precision",
        ParsedValue::Int(_) => "bigint",
        ParsedValue::UInt(_) => "numeric",
        ParsedValue::Bool(_) => "boolean",
        ParsedValue::Str(_) => "text",
    }
}

/// A field value as the store keeps it (the parser's own form, whichever form it came in).
fn stored_value(key: &str, value: &FieldView<'_, '_>) -> PyResult<ParsedValue> {
    Ok(match value {
        FieldView::Float(number) => ParsedValue::Float(*number),
        FieldView::Int(number) => ParsedValue::Int(*number),
        FieldView::UInt(number) => ParsedValue::UInt(*number),
        FieldView::Bool(flag) => ParsedValue::Bool(*flag),
        FieldView::Str(text) => ParsedValue::Str((*text).into()),
        FieldView::Other(object) => {
            return Err(PyTypeError::new_err(format!(
                "field {key}: {} (of type {}) has no column type",
                object.repr()?,
                object.get_type().name()?
            )))
        }
    })
}

/// Telegraf's tag_id: FNV-1a (64 bit) over the tags sorted by key, each key and value
/// followed by a zero byte, read as a signed integer.
pub fn tag_id(tags: &[(&str, &str)]) -> i64 {
    let mut sorted_tags = tags.to_vec();
    sorted_tags.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut hash = FNV_OFFSET;
    for (key, value) in sorted_tags {
        for &byte in key
            .as_bytes()
            .iter()
            .chain(b"\0")
            .chain(value.as_bytes())
            .chain(b"\0")
        {
            hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }
    hash as i64
}

struct Point {
    time_us: i64,
    tag_id: i64,
    /// By field index; None where no metric of the point had the field.
    values: Vec<Option<ParsedValue>>,
}

/// What one batch puts into one measurement's tables.
#[pyclass(module = "agent.sink.layout")]
pub struct PointTable {
    #[pyo3(get)]
    name: Py<PyString>,
    field_names: Vec<String>,
    field_index: FxHashMap<String, usize>,
    /// Per field, the column types its values call for, in the order first seen, each with
    /// the record that first brought one, as (topic, partition, offset) (for errors).
    value_types: Vec<Vec<(&'static str, Py<PyTuple>)>>,
    tag_sets: Vec<(i64, Vec<(String, String)>)>,
    tag_set_index: FxHashMap<i64, usize>,
    points: Vec<Point>,
    point_index: FxHashMap<(i64, i64), usize>,
    /// Field indexes of the key lists the parser shares among lines of one shape, by the
    /// list's address (valid for the call: the batch holds every metric).
    shapes: FxHashMap<usize, Vec<usize>>,
}

impl PointTable {
    fn new(name: Py<PyString>) -> Self {
        PointTable {
            name,
            field_names: Vec::new(),
            field_index: FxHashMap::default(),
            value_types: Vec::new(),
            tag_sets: Vec::new(),
            tag_set_index: FxHashMap::default(),
            points: Vec::new(),
            point_index: FxHashMap::default(),
            shapes: FxHashMap::default(),
        }
    }

    fn field(&mut self, name: &str) -> usize {
        if let Some(&index) = self.field_index.get(name) {
            return index;
        }
        let index = self.field_names.len();
        self.field_names.push(name.to_owned());
        self.field_index.insert(name.to_owned(), index);
        self.value_types.push(Vec::new());
        for point in &mut self.points {
            point.values.push(None);
        }
        index
    }

    /// Where each of `fields` is among the table's values (None: no point has it).
    fn field_positions(&self, fields: &[String]) -> Vec<Option<usize>> {
        fields
            .iter()
            .map(|name| self.field_index.get(name).copied())
            .collect()
    }

    /// Notes the tag set `identity` (its tags from `tags` when it is new).
    fn tag_set(
        &mut self,
        identity: i64,
        tags: impl FnOnce() -> PyResult<Vec<(String, String)>>,
    ) -> PyResult<()> {
        if !self.tag_set_index.contains_key(&identity) {
            let tags = tags()?;
            self.tag_set_index.insert(identity, self.tag_sets.len());
            self.tag_sets.push((identity, tags));
        }
        Ok(())
    }

    /// The field indexes of a key list the parser made (once per list).
    fn shape_indexes(&mut self, py: Python<'_>, keys: &FieldKeys) -> PyResult<Vec<usize>> {
        let address = keys.as_ptr() as usize;
        if let Some(indexes) = self.shapes.get(&address) {
            return Ok(indexes.clone());
        }
        let indexes = keys
            .iter()
            .map(|key| Ok(self.field(key.bind(py).to_str()?)))
            .collect::<PyResult<Vec<usize>>>()?;
        self.shapes.insert(address, indexes.clone());
        Ok(indexes)
    }

    /// Merges the values (at the field `indexes`) into the point of tag set `identity` at
    /// `time_ns`, noting the column types they call for (and, for a type not seen before,
    /// the record that brought it: `place()`).
    fn merge<'v>(
        &mut self,
        identity: i64,
        time_ns: i64,
        indexes: &[usize],
        values: impl Iterator<Item = &'v ParsedValue> + Clone,
        place: impl Fn() -> PyResult<Py<PyTuple>>,
    ) -> PyResult<()> {
        for (&index, value) in indexes.iter().zip(values.clone()) {
            let column_type = column_type_of(value);
            let seen = &mut self.value_types[index];
            if !seen.iter().any(|(known, _)| *known == column_type) {
                seen.push((column_type, place()?));
            }
        }
        let time_us = time_ns.div_euclid(1000);
        let width = self.field_names.len();
        let position = *self
            .point_index
            .entry((time_us, identity))
            .or_insert_with(|| {
                self.points.push(Point {
                    time_us,
                    tag_id: identity,
                    values: vec![None; width],
                });
                self.points.len() - 1
            });
        let point = &mut self.points[position];
        for (&index, value) in indexes.iter().zip(values) {
            point.values[index] = Some(value.clone());
        }
        Ok(())
    }
}

fn owned_tags(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// Appends one value as COPY's binary format writes a column of `column_type`.
fn push_copy_value(
    out: &mut Vec<u8>,
    value: &ParsedValue,
    column_type: &str,
    field: &str,
) -> PyResult<()> {
    match (column_type, value) {
        ("double precision", ParsedValue::Float(number)) => push_float8(out, *number),
        ("double precision", ParsedValue::Int(number)) => push_float8(out, *number as f64),
        ("double precision", ParsedValue::UInt(number)) => push_float8(out, *number as f64),
        ("bigint", ParsedValue::Int(number)) => {
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&number.to_be_bytes());
        }
        ("numeric", ParsedValue::UInt(number)) => push_numeric(out, i128::from(*number)),
        ("numeric", ParsedValue::Int(number)) => push_numeric(out, i128::from(*number)),
        ("boolean", ParsedValue::Bool(flag)) => {
            out.extend_from_slice(&1i32.to_be_bytes());
            out.push(u8::from(*flag));
        }
        ("text", ParsedValue::Str(text)) => {
            let length = i32::try_from(text.len())
                .map_err(|_| PyValueError::new_err(format!("field {field}: text too long")))?;
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "field {field}: a {} value for a {column_type} column",
                column_type_of(value)
            )))
        }
    }
    Ok(())
}

fn push_float8(out: &mut Vec<u8>, number: f64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&number.to_be_bytes());
}

/// An integer as PostgreSQL's binary numeric: base-10000 digits, most significant first,
/// without trailing zero digits; `weight` is the power of 10000 of the first.
fn push_numeric(out: &mut Vec<u8>, number: i128) {
    let mut magnitude = number.unsigned_abs();
    let mut digits: Vec<i16> = Vec::new();
    while magnitude > 0 {
        digits.push((magnitude % 10_000) as i16);
        magnitude /= 10_000;
    }
    let weight = digits.len() as i16 - 1;
    digits.reverse();
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let weight = if digits.is_empty() { 0 } else { weight };
    let sign: u16 = if number < 0 { 0x4000 } else { 0 };
    let length = 8 + 2 * digits.len() as i32;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes()); // display scale: an integer
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
}

/// A value as SQLite keeps it in a column declared `column_type`: a float column takes
/// integers as floats, as PostgreSQL's does; a numeric column keeps an unsigned integer
/// beyond SQLite's 64-bit integers as a float (SQLite would itself).
fn sqlite_value<'py>(
    py: Python<'py>,
    value: &ParsedValue,
    column_type: &str,
    field: &str,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (column_type, value) {
        ("double precision", ParsedValue::Float(number)) => number.into_pyobject(py)?.into_any(),
        ("double precision", ParsedValue::Int(number)) => {
            (*number as f64).into_pyobject(py)?.into_any()
        }
        ("double precision", ParsedValue::UInt(number)) => {
            (*number as f64).into_pyobject(py)?.into_any()
        }
        ("bigint" | "numeric", ParsedValue::Int(number)) => number.into_pyobject(py)?.into_any(),
        ("numeric", ParsedValue::UInt(number)) => match i64::try_from(*number) {
            Ok(fits) => fits.into_pyobject(py)?.into_any(),
            Err(_) => (*number as f64).into_pyobject(py)?.into_any(),
        },
        ("boolean", ParsedValue::Bool(flag)) => i64::from(*flag).into_pyobject(py)?.into_any(),
        ("text", ParsedValue::Str(text)) => PyString::new(py, text).into_any(),
        _ => {
            return Err(PyValueError::new_err(format!(
                "field {field}: a {} value for a {column_type} column",
                column_type_of(value)
            )))
        }
    })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, UTC: PostgreSQL's text of a timestamp, always with six
/// fractional digits so that the texts sort as the times do.
fn push_timestamp_text(out: &mut String, time_us: i64) {
    use std::fmt::Write;
    let seconds = time_us.div_euclid(1_000_000);
    let micros = time_us.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[pymethods]
impl PointTable {
    /// Field → {column type: None} of the values this batch has for it (an ordered set).
    #[getter]
    fn value_types<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let result = PyDict::new(py);
        for (name, types) in self.field_names.iter().zip(&self.value_types) {
            let set = PyDict::new(py);
            for (column_type, _) in types {
                set.set_item(column_type, py.None())?;
            }
            result.set_item(name, set)?;
        }
        Ok(result)
    }

    /// (field, column type) → (topic, partition, offset) of the record that first brought
    /// such a value.
    #[getter]
    fn first_record<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let result = PyDict::new(py);
        for (name, types) in self.field_names.iter().zip(&self.value_types) {
            for (column_type, place) in types {
                result.set_item((name, column_type), place.bind(py))?;
            }
        }
        Ok(result)
    }

    /// tag_id → tags of each tag set in the batch.
    #[getter]
    fn tag_sets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let result = PyDict::new(py);
        for (identity, tags) in &self.tag_sets {
            let dict = PyDict::new(py);
            for (key, value) in tags {
                dict.set_item(key, value)?;
            }
            result.set_item(identity, dict)?;
        }
        Ok(result)
    }

    /// Every tag key of the batch's tag sets.
    #[getter]
    fn tag_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PySet>> {
        let keys = PySet::empty(py)?;
        for (_, tags) in &self.tag_sets {
            for (key, _) in tags {
                keys.add(key)?;
            }
        }
        Ok(keys)
    }

    /// The points as the parameters of SQLite's INSERT … (time, tag_id, *fields) VALUES
    /// (…), (…): one flat list, point after point, each as the time (UTC text to the
    /// microsecond), the tag_id and each field as its column's type (None where the point
    /// has no value).
    fn sqlite_parameters<'py>(
        &self,
        py: Python<'py>,
        fields: Vec<String>,
        column_types: Vec<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let columns = self.field_positions(&fields);
        let mut parameters: Vec<Bound<'py, PyAny>> =
            Vec::with_capacity(self.points.len() * (fields.len() + 2));
        let mut time_text = String::with_capacity(26);
        for point in &self.points {
            time_text.clear();
            push_timestamp_text(&mut time_text, point.time_us);
            parameters.push(PyString::new(py, &time_text).into_any());
            parameters.push(point.tag_id.into_pyobject(py)?.into_any());
            for ((column, column_type), name) in columns.iter().zip(&column_types).zip(&fields) {
                parameters.push(
                    match column.and_then(|index| point.values[index].as_ref()) {
                        Some(value) => sqlite_value(py, value, column_type, name)?,
                        None => py.None().into_bound(py),
                    },
                );
            }
        }
        PyList::new(py, parameters)
    }

    fn __len__(&self) -> usize {
        self.points.len()
    }

    /// The points as COPY … (time, tag_id, *fields) FROM STDIN (FORMAT BINARY) reads them,
    /// header and trailer included, each field written as its column's type.
    fn copy_data<'py>(
        &self,
        py: Python<'py>,
        fields: Vec<String>,
        column_types: Vec<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let columns = self.field_positions(&fields);
        let column_count = i16::try_from(fields.len() + 2)
            .map_err(|_| PyValueError::new_err("more columns than COPY takes"))?;
        // Written without the GIL: the store thread's encoding need not wait for, nor hold
        // up, the sink's main thread.
        let points = &self.points;
        let out = py.detach(|| -> PyResult<Vec<u8>> {
            let mut out = Vec::with_capacity(points.len() * (22 + 12 * fields.len()) + 32);
            out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
            out.extend_from_slice(&0i32.to_be_bytes()); // flags
            out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
            for point in points {
                out.extend_from_slice(&column_count.to_be_bytes());
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&(point.time_us - POSTGRES_EPOCH_US).to_be_bytes());
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&point.tag_id.to_be_bytes());
                for ((column, column_type), name) in columns.iter().zip(&column_types).zip(&fields)
                {
                    match column.and_then(|index| point.values[index].as_ref()) {
                        Some(value) => push_copy_value(&mut out, value, column_type, name)?,
                        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    }
                }
            }
            out.extend_from_slice(&(-1i16).to_be_bytes());
            Ok(out)
        })?;
        Ok(PyBytes::new(py, &out))
    }
}

/// The batch's metrics as one PointTable per measurement, in order of first appearance.
/// `items` are the batch's deliveries (a record's `metrics`, with its `topic`, `partition`
/// and `offset`) and point runs (records read straight into points, point_runs.rs), in the
/// order they were read. `check_name(name, topic, partition, offset)` is called once for
/// each new measurement name, with the record that brought it (the store refuses some).
#[pyfunction]
pub fn point_tables<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyList>,
    check_name: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let mut tables = Tables {
        tables: Vec::new(),
        index: FxHashMap::default(),
        series_ids: FxHashMap::default(),
        check_name,
    };
    for item in items.iter() {
        match item.cast::<PointRun>() {
            Ok(run) => tables.add_run(py, run.get())?,
            Err(_) => tables.add_delivery(py, &item)?,
        }
    }
    let result = PyList::empty(py);
    for table in tables.tables {
        result.append(Bound::new(py, table)?)?;
    }
    Ok(result)
}

/// The tables one point_tables() call is building.
struct Tables<'a, 'py> {
    tables: Vec<PointTable>,
    index: FxHashMap<String, usize>,
    /// Tag ids of the tag sets the parser shares among a series' metrics, by address.
    series_ids: FxHashMap<usize, i64>,
    check_name: &'a Bound<'py, PyAny>,
}

impl<'py> Tables<'_, 'py> {
    /// The index of measurement `name`'s table, made (and its name checked) when new.
    fn table(
        &mut self,
        py: Python<'py>,
        name: &str,
        place: impl Fn() -> PyResult<Py<PyTuple>>,
    ) -> PyResult<usize> {
        if let Some(&index) = self.index.get(name) {
            return Ok(index);
        }
        let name_object = PyString::new(py, name);
        let (topic, partition, offset) = place()?.bind(py).extract::<(Py<PyAny>, i64, i64)>()?;
        self.check_name
            .call1((&name_object, topic, partition, offset))?;
        self.index.insert(name.to_owned(), self.tables.len());
        self.tables.push(PointTable::new(name_object.unbind()));
        Ok(self.tables.len() - 1)
    }

    fn add_run(&mut self, py: Python<'py>, run: &PointRun) -> PyResult<()> {
        let place = |record: usize| -> PyResult<Py<PyTuple>> {
            Ok(PyTuple::new(
                py,
                [
                    run.topic.clone_ref(py).into_any(),
                    run.partition.into_pyobject(py)?.into_any().unbind(),
                    run.offsets[record].into_pyobject(py)?.into_any().unbind(),
                ],
            )?
            .unbind())
        };
        // Per series: its table, noted with the tag set; per (shape, table): the field
        // indexes of its keys in that table.
        let mut series_tables: Vec<Option<usize>> = vec![None; run.series.len()];
        let mut shape_indexes: FxHashMap<(usize, usize), Vec<usize>> = FxHashMap::default();
        for line in &run.lines {
            let series = &run.series[line.series];
            let table_index = match series_tables[line.series] {
                Some(index) => index,
                None => {
                    let index = self.table(py, &run.names[series.name], || place(line.record))?;
                    self.tables[index].tag_set(series.tag_id, || Ok(series.tags.clone()))?;
                    series_tables[line.series] = Some(index);
                    index
                }
            };
            let table = &mut self.tables[table_index];
            let indexes = shape_indexes
                .entry((line.shape, table_index))
                .or_insert_with(|| {
                    run.shapes[line.shape]
                        .iter()
                        .map(|key| table.field(key))
                        .collect()
                });
            table.merge(
                series.tag_id,
                line.time_ns,
                indexes,
                line.values.iter(),
                || place(line.record),
            )?;
        }
        Ok(())
    }

    fn add_delivery(&mut self, py: Python<'py>, delivery: &Bound<'py, PyAny>) -> PyResult<()> {
        let uint = uint_type(py)?;
        let place = || -> PyResult<Py<PyTuple>> {
            Ok(PyTuple::new(
                py,
                [
                    delivery.getattr(intern!(py, "topic"))?,
                    delivery.getattr(intern!(py, "partition"))?,
                    delivery.getattr(intern!(py, "offset"))?,
                ],
            )?
            .unbind())
        };
        let metrics = delivery.getattr(intern!(py, "metrics"))?;
        for metric in metrics.try_iter()? {
            let metric = metric?;
            let metric = as_metric(&metric)?;
            // Read from a snapshot: no borrow of the metric is held while Python runs.
            let parts = metric.borrow().snapshot(py);
            let name_object = parts.name.bind(py).cast::<PyString>()?.clone();
            let index = self.table(py, name_object.to_str()?, place)?;
            let time_ns: i64 = parts.time_ns.bind(py).extract()?;

            // The parser shares a series' tag set among its metrics: its id is worked out
            // once per batch.
            let series = match &parts.tags {
                Tags::Parsed(pairs) => Some(pairs.as_ptr() as usize),
                Tags::Dict(_) => None,
            };
            let identity = match series.and_then(|address| self.series_ids.get(&address)) {
                Some(&identity) => identity,
                None => {
                    let identity = tag_id(&tag_texts(py, &parts.tags, &mut TagObjects::new())?);
                    if let Some(address) = series {
                        self.series_ids.insert(address, identity);
                    }
                    identity
                }
            };
            let table = &mut self.tables[index];
            table.tag_set(identity, || {
                Ok(owned_tags(&tag_texts(
                    py,
                    &parts.tags,
                    &mut TagObjects::new(),
                )?))
            })?;

            match &parts.fields {
                Fields::Parsed { keys, values } => {
                    let indexes = table.shape_indexes(py, keys)?;
                    table.merge(identity, time_ns, &indexes, values.iter(), place)?;
                }
                Fields::Dict(_) => {
                    let mut field_objects = FieldObjects::new();
                    let fields = field_views(py, &parts.fields, &mut field_objects, uint)?
                        .into_iter()
                        .map(|(key, view)| Ok((key, stored_value(key, &view)?)))
                        .collect::<PyResult<Vec<_>>>()?;
                    let indexes: Vec<usize> =
                        fields.iter().map(|(key, _)| table.field(key)).collect();
                    table.merge(
                        identity,
                        time_ns,
                        &indexes,
                        fields.iter().map(|(_, value)| value),
                        place,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Telegraf's tag_id of a tag set (the store's tests compare it with Python's).
#[pyfunction]
pub fn telegraf_tag_id(tags: &Bound<'_, PyDict>) -> PyResult<i64> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for (key, value) in tags.iter() {
        pairs.push((key.extract()?, value.extract()?));
    }
    let texts: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Ok(tag_id(&texts))
}
