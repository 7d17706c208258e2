//! `agent.metric.Metric`, the one data type that flows through the agent, kept in Rust.
//!
//! A metric the parser makes keeps its tags and fields as the parser read them (tag sets
//! shared by every metric of a series, field keys by every line of the same shape) and
//! makes Python dicts of them only when Python code asks for `tags` or `fields`; from then
//! on the dict is the metric's. The serializers and the sink's store read either form, so
//! a line that goes from a file or a topic to an output without a filter touching it never
//! becomes Python objects: that was half the cost of parsing it and a third of writing it,
//! and 920 bytes of memory a metric.
//!
//! A metric made from Python (`Metric(name, tags, fields, time_ns)`) holds the dicts it
//! was given, as the dataclass it replaces did.

use std::sync::Arc;

use crate::line_protocol::Value;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

static UINT_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// agent.metric.UInt, the marker type of unsigned field values.
pub fn uint_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UINT_TYPE.import(py, "agent.metric", "UInt")
}

/// A field value as the parser read it.
#[derive(Clone)]
pub enum ParsedValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Box<str>),
}

impl ParsedValue {
    /// A value as the line protocol reader typed it; an error for a string that is not
    /// UTF-8 (the reader checks every line it accepts, so this does not happen).
    pub fn read(value: &Value<'_>) -> Result<Self, std::str::Utf8Error> {
        Ok(match value {
            Value::Float(number) => ParsedValue::Float(*number),
            Value::Int(number) => ParsedValue::Int(*number),
            Value::UInt(number) => ParsedValue::UInt(*number),
            Value::Bool(flag) => ParsedValue::Bool(*flag),
            Value::Str(text) => ParsedValue::Str(std::str::from_utf8(text)?.into()),
        })
    }

    fn to_object<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            ParsedValue::Float(number) => PyFloat::new(py, *number).into_any(),
            ParsedValue::Int(number) => number.into_pyobject(py)?.into_any(),
            ParsedValue::UInt(number) => uint_type(py)?.call1((*number,))?,
            ParsedValue::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
            ParsedValue::Str(text) => PyString::new(py, text).into_any(),
        })
    }
}

/// A tag set as the parser read it, in the line's order; shared by a series' metrics.
pub type SeriesTags = Arc<[(Py<PyString>, Py<PyString>)]>;
/// Field keys as the parser read them, in the line's order; shared by lines of one shape.
pub type FieldKeys = Arc<[Py<PyString>]>;

/// The value of tag `key` in a tag set as the parser read it.
fn parsed_tag<'a>(
    py: Python<'_>,
    pairs: &'a [(Py<PyString>, Py<PyString>)],
    key: &str,
) -> PyResult<Option<&'a Py<PyString>>> {
    for (have, value) in pairs {
        if have.bind(py).to_str()? == key {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

pub enum Tags {
    Parsed(SeriesTags),
    Dict(Py<PyAny>),
}

pub enum Fields {
    Parsed {
        keys: FieldKeys,
        values: Arc<[ParsedValue]>,
    },
    Dict(Py<PyAny>),
}

impl Tags {
    fn clone_ref(&self, py: Python<'_>) -> Tags {
        match self {
            Tags::Parsed(pairs) => Tags::Parsed(pairs.clone()),
            Tags::Dict(dict) => Tags::Dict(dict.clone_ref(py)),
        }
    }
}

impl Fields {
    fn clone_ref(&self, py: Python<'_>) -> Fields {
        match self {
            Fields::Parsed { keys, values } => Fields::Parsed {
                keys: keys.clone(),
                values: values.clone(),
            },
            Fields::Dict(dict) => Fields::Dict(dict.clone_ref(py)),
        }
    }
}

/// A measurement: `name`, string `tags`, typed `fields` and a timestamp in nanoseconds.
///
/// Field values are float, int (signed 64-bit), UInt (unsigned 64-bit), bool or str.
#[pyclass(module = "agent.metric", name = "Metric")]
pub struct Metric {
    pub name: Py<PyAny>,
    pub tags: Tags,
    pub fields: Fields,
    pub time_ns: Py<PyAny>,
}

fn now_ns() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

impl Metric {
    pub fn parsed(
        name: Py<PyAny>,
        tags: SeriesTags,
        keys: FieldKeys,
        values: Arc<[ParsedValue]>,
        time_ns: Py<PyAny>,
    ) -> Self {
        Metric {
            name,
            tags: Tags::Parsed(tags),
            fields: Fields::Parsed { keys, values },
            time_ns,
        }
    }

    /// A copy of the metric's parts (references, not the dicts' contents), taken under a
    /// borrow that ends before any Python object is made: a borrow held while Python
    /// allocates could meet another thread's, since allocating may run Python code.
    pub fn snapshot(&self, py: Python<'_>) -> Metric {
        Metric {
            name: self.name.clone_ref(py),
            tags: self.tags.clone_ref(py),
            fields: self.fields.clone_ref(py),
            time_ns: self.time_ns.clone_ref(py),
        }
    }

    /// The tags as a dict, made now if they were still as parsed.
    pub fn tags_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        loop {
            let pairs = match &slf.borrow().tags {
                Tags::Dict(dict) => return Ok(dict.bind(py).clone()),
                Tags::Parsed(pairs) => pairs.clone(),
            };
            let dict = PyDict::new(py);
            for (key, value) in pairs.iter() {
                dict.set_item(key.bind(py), value.bind(py))?;
            }
            let mut metric = slf.borrow_mut();
            // Unless another thread changed the tags meanwhile (then made again from those).
            if matches!(&metric.tags, Tags::Parsed(now) if Arc::ptr_eq(now, &pairs)) {
                metric.tags = Tags::Dict(dict.clone().into_any().unbind());
                return Ok(dict.into_any());
            }
        }
    }

    /// The fields as a dict, made now if they were still as parsed.
    pub fn fields_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        loop {
            let (keys, values) = match &slf.borrow().fields {
                Fields::Dict(dict) => return Ok(dict.bind(py).clone()),
                Fields::Parsed { keys, values } => (keys.clone(), values.clone()),
            };
            let dict = PyDict::new(py);
            for (key, value) in keys.iter().zip(values.iter()) {
                dict.set_item(key.bind(py), value.to_object(py)?)?;
            }
            let mut metric = slf.borrow_mut();
            if matches!(&metric.fields, Fields::Parsed { values: now, .. } if Arc::ptr_eq(now, &values))
            {
                metric.fields = Fields::Dict(dict.clone().into_any().unbind());
                return Ok(dict.into_any());
            }
        }
    }

    /// The tag set with each of `tags` whose key it lacks added; None for a dict (changed
    /// in place) or when nothing was missing.
    fn with_absent_tags(
        py: Python<'_>,
        current: &Tags,
        tags: &[(Py<PyString>, Py<PyString>)],
    ) -> PyResult<Option<SeriesTags>> {
        match current {
            Tags::Parsed(pairs) => {
                let mut missing = Vec::new();
                for (key, value) in tags {
                    if parsed_tag(py, pairs, key.bind(py).to_str()?)?.is_none() {
                        missing.push((key.clone_ref(py), value.clone_ref(py)));
                    }
                }
                if missing.is_empty() {
                    return Ok(None);
                }
                let mut all: Vec<_> = pairs
                    .iter()
                    .map(|(key, value)| (key.clone_ref(py), value.clone_ref(py)))
                    .collect();
                all.extend(missing);
                Ok(Some(all.into()))
            }
            Tags::Dict(dict) => {
                let dict = dict.bind(py);
                for (key, value) in tags {
                    dict.call_method1("setdefault", (key, value))?;
                }
                Ok(None)
            }
        }
    }

    fn add_tags_absent(
        slf: &Bound<'_, Self>,
        tags: &[(Py<PyString>, Py<PyString>)],
    ) -> PyResult<()> {
        let py = slf.py();
        loop {
            let current = slf.borrow().tags.clone_ref(py);
            let Some(added) = Metric::with_absent_tags(py, &current, tags)? else {
                return Ok(());
            };
            let mut metric = slf.borrow_mut();
            if matches!((&metric.tags, &current), (Tags::Parsed(now), Tags::Parsed(then)) if Arc::ptr_eq(now, then))
            {
                metric.tags = Tags::Parsed(added);
                return Ok(());
            }
        }
    }

    /// time_ns rounded to the nearest multiple of `precision_ns` (halves up), as Telegraf's
    /// agent rounds gathered metrics.
    fn round_time(slf: &Bound<'_, Self>, precision_ns: i64) -> PyResult<()> {
        let py = slf.py();
        let half = precision_ns / 2;
        let time_ns = slf.borrow().time_ns.clone_ref(py);
        let time_ns = time_ns.bind(py);
        let rounded = match time_ns.extract::<i64>() {
            Ok(stamp) => {
                let rounded = (i128::from(stamp) + i128::from(half))
                    .div_euclid(i128::from(precision_ns))
                    * i128::from(precision_ns);
                rounded.into_pyobject(py)?.into_any().unbind()
            }
            // Not a 64-bit integer: Python's arithmetic decides (as the code it replaces).
            Err(_) => time_ns
                .add(half)?
                .floor_div(precision_ns)?
                .mul(precision_ns)?
                .unbind(),
        };
        slf.borrow_mut().time_ns = rounded;
        Ok(())
    }

    /// The value of tag `key`, if the metric has it.
    pub fn tag_value(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyString>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        match &slf.borrow().tags.clone_ref(py) {
            Tags::Parsed(pairs) => {
                Ok(parsed_tag(py, pairs, key.to_str()?)?
                    .map(|value| value.clone_ref(py).into_any()))
            }
            Tags::Dict(dict) => Ok(dict
                .bind(py)
                .call_method1("get", (key,))
                .map(|value| (!value.is_none()).then(|| value.unbind()))?),
        }
    }

    /// (name, tags, fields, time_ns) as Python objects.
    fn parts<'py>(slf: &Bound<'py, Self>) -> PyResult<[Bound<'py, PyAny>; 4]> {
        let py = slf.py();
        let tags = Metric::tags_dict(slf)?;
        let fields = Metric::fields_dict(slf)?;
        let metric = slf.borrow();
        Ok([
            metric.name.bind(py).clone(),
            tags,
            fields,
            metric.time_ns.bind(py).clone(),
        ])
    }
}

#[pymethods]
impl Metric {
    #[new]
    #[pyo3(signature = (name, tags, fields, time_ns = None))]
    fn new(
        py: Python<'_>,
        name: Py<PyAny>,
        tags: Py<PyAny>,
        fields: Py<PyAny>,
        time_ns: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let time_ns = match time_ns {
            Some(given) => given,
            None => now_ns().into_pyobject(py)?.into_any().unbind(),
        };
        Ok(Metric {
            name,
            tags: Tags::Dict(tags),
            fields: Fields::Dict(fields),
            time_ns,
        })
    }

    #[getter]
    fn get_name(&self, py: Python<'_>) -> Py<PyAny> {
        self.name.clone_ref(py)
    }

    #[setter]
    fn set_name(&mut self, name: Py<PyAny>) {
        self.name = name;
    }

    #[getter]
    fn get_tags<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Metric::tags_dict(slf)
    }

    #[setter]
    fn set_tags(&mut self, tags: Py<PyAny>) {
        self.tags = Tags::Dict(tags);
    }

    #[getter]
    fn get_fields<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Metric::fields_dict(slf)
    }

    #[setter]
    fn set_fields(&mut self, fields: Py<PyAny>) {
        self.fields = Fields::Dict(fields);
    }

    #[getter]
    fn get_time_ns(&self, py: Python<'_>) -> Py<PyAny> {
        self.time_ns.clone_ref(py)
    }

    #[setter]
    fn set_time_ns(&mut self, time_ns: Py<PyAny>) {
        self.time_ns = time_ns;
    }

    /// Adds each (key, value) of `tags` whose key the metric does not have yet (the agent's
    /// and a plugin's default tags), without making a dict of tags still as parsed.
    fn add_missing_tags(
        slf: &Bound<'_, Self>,
        tags: Vec<(Py<PyString>, Py<PyString>)>,
    ) -> PyResult<()> {
        Metric::add_tags_absent(slf, &tags)
    }

    /// The value of tag `key`, or None (without making a dict of tags still as parsed).
    fn get_tag(slf: &Bound<'_, Self>, key: &Bound<'_, PyString>) -> PyResult<Option<Py<PyAny>>> {
        Metric::tag_value(slf, key)
    }

    /// Whether the metric has a field (without making a dict of fields still as parsed).
    fn has_fields(slf: &Bound<'_, Self>) -> PyResult<bool> {
        let py = slf.py();
        match slf.borrow().fields.clone_ref(py) {
            Fields::Parsed { values, .. } => Ok(!values.is_empty()),
            Fields::Dict(dict) => dict.bind(py).is_truthy(),
        }
    }

    /// A metric of its own with the same name, tags, fields and time.
    fn copy(slf: &Bound<'_, Self>) -> PyResult<Metric> {
        let py = slf.py();
        let mut copied = slf.borrow().snapshot(py);
        // Parsed tags and fields are never changed in place (a change makes a dict): they
        // are shared. Dicts are copied.
        if let Tags::Dict(dict) = &copied.tags {
            let dict = dict.bind(py).cast::<PyDict>()?.copy()?;
            copied.tags = Tags::Dict(dict.into_any().unbind());
        }
        if let Fields::Dict(dict) = &copied.fields {
            let dict = dict.bind(py).cast::<PyDict>()?.copy()?;
            copied.fields = Fields::Dict(dict.into_any().unbind());
        }
        Ok(copied)
    }

    /// What makes two metrics the same observation: name, tag set, field names, time.
    fn identity<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let [name, tags, fields, time_ns] = Metric::parts(slf)?;
        let tag_items = PyList::new(
            py,
            tags.call_method0("items")?
                .try_iter()?
                .collect::<PyResult<Vec<_>>>()?,
        )?;
        tag_items.sort()?;
        let field_names = PyList::new(py, fields.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
        field_names.sort()?;
        PyTuple::new(
            py,
            [
                name,
                tag_items.to_tuple().into_any(),
                field_names.to_tuple().into_any(),
                time_ns,
            ],
        )
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let [name, tags, fields, time_ns] = Metric::parts(slf)?;
        Ok(format!(
            "Metric(name={}, tags={}, fields={}, time_ns={})",
            name.repr()?,
            tags.repr()?,
            fields.repr()?,
            time_ns.repr()?
        ))
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<Metric>() else {
            return Ok(py.NotImplemented());
        };
        let equal = || -> PyResult<bool> {
            if slf.is(other) {
                return Ok(true);
            }
            let mine = Metric::parts(slf)?;
            let theirs = Metric::parts(other)?;
            for (a, b) in mine.iter().zip(theirs.iter()) {
                if !a.eq(b)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        match op {
            CompareOp::Eq => Ok(PyBool::new(py, equal()?).to_owned().into_any().unbind()),
            CompareOp::Ne => Ok(PyBool::new(py, !equal()?).to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    /// Pickled as the call that makes it again.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let parts = PyTuple::new(py, Metric::parts(slf)?)?;
        PyTuple::new(py, [slf.get_type().into_any(), parts.into_any()])
    }
}

/// A field value as a writer sees it, from either form of a metric's fields.
pub enum FieldView<'a, 'py> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(&'a str),
    /// A str Python holds that UTF-8 cannot (a lone surrogate), an int past 64 bits, or
    /// a type of its own: the writer decides.
    Other(&'a Bound<'py, PyAny>),
}

impl<'a> FieldView<'a, '_> {
    pub fn of_parsed(value: &'a ParsedValue) -> Self {
        match value {
            ParsedValue::Float(number) => FieldView::Float(*number),
            ParsedValue::Int(number) => FieldView::Int(*number),
            ParsedValue::UInt(number) => FieldView::UInt(*number),
            ParsedValue::Bool(flag) => FieldView::Bool(*flag),
            ParsedValue::Str(text) => FieldView::Str(text),
        }
    }
}

impl<'a, 'py> FieldView<'a, 'py> {
    /// The view of a Python field value (exact types only: a subclass is Other, but for
    /// UInt, the unsigned marker).
    pub fn of_object(value: &'a Bound<'py, PyAny>, uint: &Bound<'py, PyType>) -> Self {
        if let Ok(number) = value.cast_exact::<PyFloat>() {
            return FieldView::Float(number.value());
        }
        if let Ok(flag) = value.cast_exact::<PyBool>() {
            return FieldView::Bool(flag.is_true());
        }
        if value.get_type().is(uint) {
            return match value.extract::<u64>() {
                Ok(number) => FieldView::UInt(number),
                Err(_) => FieldView::Other(value),
            };
        }
        if let Ok(number) = value.cast_exact::<PyInt>() {
            return match number.extract::<i64>() {
                Ok(number) => FieldView::Int(number),
                Err(_) => FieldView::Other(value),
            };
        }
        if let Ok(text) = value.cast_exact::<PyString>() {
            if let Ok(text) = text.to_str() {
                return FieldView::Str(text);
            }
        }
        FieldView::Other(value)
    }
}

/// What the agent does to each gathered metric when no filter or rename applies: leaves out
/// metrics without fields, adds `tags` the metric lacks, rounds time_ns to `precision_ns`
/// (when over 1). The metrics kept, in order.
#[pyfunction]
pub fn finish_metrics<'py>(
    py: Python<'py>,
    metrics: &Bound<'py, PyAny>,
    tags: Vec<(Py<PyString>, Py<PyString>)>,
    precision_ns: i64,
) -> PyResult<Bound<'py, PyList>> {
    let finished = PyList::empty(py);
    for metric in metrics.try_iter()? {
        let metric = metric?;
        let native = as_metric(&metric)?;
        if !Metric::has_fields(native)? {
            continue;
        }
        if !tags.is_empty() {
            Metric::add_tags_absent(native, &tags)?;
        }
        if precision_ns > 1 {
            Metric::round_time(native, precision_ns)?;
        }
        finished.append(metric)?;
    }
    Ok(finished)
}

/// Python strings of a dict's items, kept alive while texts borrowed from them are used.
pub type TagObjects<'py> = Vec<(Bound<'py, PyString>, Bound<'py, PyString>)>;
pub type FieldObjects<'py> = Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>;

/// The tags of either form as (key, value) texts, in their order; `objects` holds the
/// Python strings a dict's texts are borrowed from. An error for a key or value that is not
/// a str, or a str UTF-8 cannot hold.
pub fn tag_texts<'a, 'py>(
    py: Python<'py>,
    tags: &'a Tags,
    objects: &'a mut TagObjects<'py>,
) -> PyResult<Vec<(&'a str, &'a str)>> {
    let mut texts = Vec::with_capacity(8);
    match tags {
        Tags::Parsed(pairs) => {
            for (key, value) in pairs.iter() {
                texts.push((key.bind(py).to_str()?, value.bind(py).to_str()?));
            }
        }
        Tags::Dict(dict) => {
            for (key, value) in dict.bind(py).cast::<PyDict>()?.iter() {
                objects.push((key.cast_into()?, value.cast_into()?));
            }
            let objects: &'a TagObjects<'py> = objects;
            for (key, value) in objects {
                texts.push((key.to_str()?, value.to_str()?));
            }
        }
    }
    Ok(texts)
}

/// The fields of either form as (key, value) views, in their order; `objects` holds the
/// Python objects a dict's views are borrowed from. An error for a key that is not a str.
pub fn field_views<'a, 'py>(
    py: Python<'py>,
    fields: &'a Fields,
    objects: &'a mut FieldObjects<'py>,
    uint: &Bound<'py, PyType>,
) -> PyResult<Vec<(&'a str, FieldView<'a, 'py>)>> {
    let mut views = Vec::with_capacity(16);
    match fields {
        Fields::Parsed { keys, values } => {
            for (key, value) in keys.iter().zip(values.iter()) {
                views.push((key.bind(py).to_str()?, FieldView::of_parsed(value)));
            }
        }
        Fields::Dict(dict) => {
            for (key, value) in dict.bind(py).cast::<PyDict>()?.iter() {
                objects.push((key.cast_into()?, value));
            }
            let objects: &'a FieldObjects<'py> = objects;
            for (key, value) in objects {
                views.push((key.to_str()?, FieldView::of_object(value, uint)));
            }
        }
    }
    Ok(views)
}

/// `object` as a Metric: the class itself is told by one pointer comparison (a subclass
/// check walks the type's bases, a cost paid per metric by every writer).
pub fn as_metric<'a, 'py>(object: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, Metric>> {
    match object.cast_exact::<Metric>() {
        Ok(metric) => Ok(metric),
        Err(_) => Ok(object.cast::<Metric>()?),
    }
}
