//! The sink's records read straight into the points its stores keep, with no Python metric
//! in between.
//!
//! A store only needs each line's measurement, tag_id and tags, field keys, values and time;
//! making an `agent.metric.Metric` of each line first, then reading it back, cost more
//! than the parsing itself. `read_point_runs()` parses consecutive records of one partition
//! (without the GIL) into a `PointRun`, which `point_tables()` merges into the stores'
//! tables as it merges the metrics of records decoded one by one. Series (measurement and
//! tag set) and key lists are kept once per run, as a fleet's lines repeat them.
//!
//! A record that needs words (a line that does not parse, a record time past 64-bit
//! nanoseconds) ends the run before it: the caller decodes that record on its own, which
//! says what is wrong, and the next run starts after it, so records stay in order.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use rustc_hash::FxHashMap;

use crate::line_protocol::{Item, Line, Reader};
use crate::metric::ParsedValue;
use crate::point_tables::tag_id;

/// A measurement with a tag set, as the lines of a run name it.
pub struct RunSeries {
    /// Index into `PointRun::names`.
    pub name: usize,
    pub tag_id: i64,
    pub tags: Vec<(String, String)>,
}

/// One line of a run.
pub struct RunLine {
    /// Index into `PointRun::series`.
    pub series: usize,
    /// Index into `PointRun::shapes`: the line's field keys.
    pub shape: usize,
    /// Index into `PointRun::offsets`: the record the line came in.
    pub record: usize,
    pub time_ns: i64,
    pub values: Vec<ParsedValue>,
}

/// The lines of consecutive records of one partition, parsed for the stores.
#[pyclass(module = "agent.sink.batch", frozen)]
pub struct PointRun {
    #[pyo3(get)]
    pub topic: Py<PyString>,
    #[pyo3(get)]
    pub partition: i32,
    /// Each record's offset, in order.
    pub offsets: Vec<i64>,
    pub names: Vec<String>,
    pub series: Vec<RunSeries>,
    pub shapes: Vec<Vec<String>>,
    pub lines: Vec<RunLine>,
}

#[pymethods]
impl PointRun {
    /// The offset of the run's first record.
    #[getter]
    fn offset(&self) -> i64 {
        self.offsets[0]
    }

    /// The offset after the run's last record (what a consumer group commits).
    #[getter]
    fn next_offset(&self) -> i64 {
        self.offsets[self.offsets.len() - 1] + 1
    }

    /// Records in the run.
    #[getter]
    fn records(&self) -> usize {
        self.offsets.len()
    }

    /// Lines (metrics) in the run.
    #[getter]
    fn metric_count(&self) -> usize {
        self.lines.len()
    }
}

/// What a run is being built from: the run's tables of names, series and shapes, with
/// indexes to find an entry again.
struct Builder {
    names: Vec<String>,
    name_index: FxHashMap<Vec<u8>, usize>,
    series: Vec<RunSeries>,
    series_index: FxHashMap<Vec<u8>, usize>,
    shapes: Vec<Vec<String>>,
    shape_index: FxHashMap<Vec<u8>, usize>,
    last_shape: Option<usize>,
    lines: Vec<RunLine>,
    shape_key: Vec<u8>,
    /// Records read into the run.
    records: usize,
}

/// Text the reader accepted (it checks UTF-8), as an owned string.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Builder {
    fn new(capacity: usize) -> Self {
        Builder {
            names: Vec::new(),
            name_index: FxHashMap::default(),
            series: Vec::new(),
            series_index: FxHashMap::default(),
            shapes: Vec::new(),
            shape_index: FxHashMap::default(),
            last_shape: None,
            lines: Vec::with_capacity(capacity),
            shape_key: Vec::new(),
            records: 0,
        }
    }

    fn series_of(&mut self, line: &Line<'_>) -> usize {
        if let Some(&index) = self.series_index.get(line.series_text) {
            return index;
        }
        let name = match self.name_index.get(line.name.as_ref()) {
            Some(&index) => index,
            None => {
                self.names.push(text(&line.name));
                self.name_index
                    .insert(line.name.to_vec(), self.names.len() - 1);
                self.names.len() - 1
            }
        };
        let tags: Vec<(String, String)> = line
            .tags
            .iter()
            .map(|(key, value)| (text(key), text(value)))
            .collect();
        let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let identity = tag_id(&pairs);
        self.series.push(RunSeries {
            name,
            tag_id: identity,
            tags,
        });
        self.series_index
            .insert(line.series_text.to_vec(), self.series.len() - 1);
        self.series.len() - 1
    }

    fn shape_of(&mut self, line: &Line<'_>) -> usize {
        let same_keys = |shape: &[String]| {
            shape.len() == line.fields.len()
                && shape
                    .iter()
                    .zip(&line.fields)
                    .all(|(known, (key, _))| known.as_bytes() == key.as_ref())
        };
        if let Some(last) = self.last_shape {
            if same_keys(&self.shapes[last]) {
                return last;
            }
        }
        // Each key with its length before it, so that no two lists share a text.
        self.shape_key.clear();
        for (key, _) in &line.fields {
            self.shape_key.extend_from_slice(&key.len().to_le_bytes());
            self.shape_key.extend_from_slice(key);
        }
        let index = match self.shape_index.get(&self.shape_key) {
            Some(&index) => index,
            None => {
                self.shapes
                    .push(line.fields.iter().map(|(key, _)| text(key)).collect());
                self.shape_index
                    .insert(self.shape_key.clone(), self.shapes.len() - 1);
                self.shapes.len() - 1
            }
        };
        self.last_shape = Some(index);
        index
    }

    /// The lines of one record, or false (and nothing kept) when the record needs words.
    fn add_record(
        &mut self,
        value: &[u8],
        record: usize,
        record_time_ns: Option<i64>,
        scale: i64,
    ) -> bool {
        let kept = self.lines.len();
        for item in Reader::new(value, scale) {
            let Item::Metric(line) = item else {
                self.lines.truncate(kept);
                return false;
            };
            let Some(time_ns) = line.time_ns.or(record_time_ns) else {
                self.lines.truncate(kept);
                return false;
            };
            let Ok(values) = line
                .fields
                .iter()
                .map(|(_, value)| ParsedValue::read(value))
                .collect()
            else {
                self.lines.truncate(kept);
                return false;
            };
            let series = self.series_of(&line);
            let shape = self.shape_of(&line);
            self.lines.push(RunLine {
                series,
                shape,
                record,
                time_ns,
                values,
            });
        }
        self.records += 1;
        true
    }
}

/// The records of one fetched partition (its `offsets`, `values` and `timestamps_ms` lists,
/// as the sink's fetcher gives them), read as line protocol into runs: a list of runs and,
/// between them, the index of each record that needs words (the caller decodes those on
/// their own), in the records' order. A line without a timestamp takes its record's
/// (milliseconds; `now_ns` where it is negative); timestamps in the lines are multiplied by
/// `scale`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn read_point_runs<'py>(
    py: Python<'py>,
    topic: Bound<'py, PyString>,
    partition: i32,
    offsets: &Bound<'py, PyList>,
    values: &Bound<'py, PyList>,
    timestamps_ms: &Bound<'py, PyList>,
    now_ns: i64,
    scale: i64,
) -> PyResult<Bound<'py, PyList>> {
    let count = offsets.len();
    if values.len() != count || timestamps_ms.len() != count {
        return Err(PyTypeError::new_err(
            "offsets, values and timestamps_ms differ in length",
        ));
    }
    let mut record_offsets: Vec<i64> = Vec::with_capacity(count);
    let mut record_times_ns: Vec<Option<i64>> = Vec::with_capacity(count);
    let mut held: Vec<Bound<'py, PyAny>> = Vec::with_capacity(count);
    for index in 0..count {
        record_offsets.push(offsets.get_item(index)?.extract()?);
        record_times_ns.push(match timestamps_ms.get_item(index)?.extract::<i64>()? {
            ms if ms < 0 => Some(now_ns),
            ms => ms.checked_mul(1_000_000),
        });
        held.push(values.get_item(index)?);
    }
    let mut texts: Vec<&[u8]> = Vec::with_capacity(count);
    for value in &held {
        if value.is_none() {
            texts.push(b"");
        } else {
            let bytes = value
                .cast::<PyBytes>()
                .map_err(|_| PyTypeError::new_err("a record value that is not bytes"))?;
            texts.push(bytes.as_bytes());
        }
    }
    // Each run as (its first record's index, what was read), or a record that needs words.
    let parts: Vec<Result<(usize, Builder), usize>> = py.detach(|| {
        let mut parts = Vec::new();
        let mut builder = Builder::new(count);
        let mut first = 0;
        for (index, (text, record_time_ns)) in texts.iter().zip(&record_times_ns).enumerate() {
            if builder.add_record(text, index - first, *record_time_ns, scale) {
                continue;
            }
            if index > first {
                parts.push(Ok((first, builder)));
            }
            parts.push(Err(index));
            builder = Builder::new(0); // after a refused record, grown as needed
            first = index + 1;
        }
        if count > first {
            parts.push(Ok((first, builder)));
        }
        parts
    });
    let result = PyList::empty(py);
    for part in parts {
        match part {
            Ok((first, builder)) => {
                let taken = builder.records;
                result.append(PointRun {
                    topic: topic.clone().unbind(),
                    partition,
                    offsets: record_offsets[first..first + taken].to_vec(),
                    names: builder.names,
                    series: builder.series,
                    shapes: builder.shapes,
                    lines: builder.lines,
                })?
            }
            Err(index) => result.append(index)?,
        }
    }
    Ok(result)
}
