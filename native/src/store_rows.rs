//! The sink's SQLite rows, made from a batch of deliveries in one call.
//!
//! A row keeps the metric's tags, sorted field names and fields as canonical JSON texts
//! (keys sorted, no spaces, non-ASCII kept): the texts are part of the row's identity, so
//! they must be exactly what Python's `json` module writes with those settings, which the
//! store wrote before this module existed and which existing store files hold. Floats are
//! written as Python's `repr` writes them. A value this module does not know how to write
//! (a key that is not a str, a str Python holds but UTF-8 cannot, a type of its own) makes
//! the whole text come from the encoder the caller passes.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};
use rustc_hash::FxHashMap;

use crate::influx_format::{push_int, push_uint, Decimal};
use crate::metric::{
    as_metric, field_views, tag_texts, uint_type, FieldObjects, FieldView, Metric, TagObjects,
};

/// Distinct texts of tag sets or field-name lists remembered within one call.
const SHARED_TEXTS_LIMIT: usize = 65_536;

/// Appends `text` as a JSON string, escaped as Python's json does with ensure_ascii off.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    let needs_escape = |byte: &u8| *byte < 0x20 || *byte == b'"' || *byte == b'\\';
    out.push(b'"');
    let mut rest = text.as_bytes();
    // Runs without anything to escape (most keys and values are one) are copied whole.
    while let Some(index) = rest.iter().position(needs_escape) {
        out.extend_from_slice(&rest[..index]);
        match rest[index] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            byte => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        rest = &rest[index + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends a float as Python's `repr` writes it (and so its json): the shortest digits that
/// read back to the same value, positional from 1e-4 up to 1e16, else with an exponent.
pub fn push_python_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
        return;
    }
    let magnitude = value.abs();
    if (1e-4..1e16).contains(&magnitude) {
        // Where Python writes positional digits, ryu does too, the same shortest ones, and
        // as Python keeps ".0" on an integral value.
        let mut buffer = ryu::Buffer::new();
        let shortest = buffer.format_finite(value);
        if !shortest.contains('e') {
            out.extend_from_slice(shortest.as_bytes());
            return;
        }
    }
    let decimal = Decimal::of_float(value);
    let (digits, point) = (decimal.digits(), decimal.point);
    if !digits.is_empty() && (point <= -4 || point > 16) {
        if decimal.negative {
            out.push(b'-');
        }
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let exponent = point - 1;
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(magnitude.to_string().as_bytes());
    } else if decimal.push_positional(out) {
        out.extend_from_slice(b".0"); // as Python keeps it on an integral value
    }
}

/// Appends one JSON value; false if this module does not write its kind.
fn push_json_value(out: &mut Vec<u8>, value: &FieldView<'_, '_>) -> bool {
    match value {
        FieldView::Float(number) => push_python_float(out, *number),
        FieldView::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        FieldView::Int(number) => push_int(out, *number),
        FieldView::UInt(number) => push_uint(out, *number),
        FieldView::Str(text) => push_json_string(out, text),
        FieldView::Other(_) => return false,
    }
    true
}

/// The JSON object of sorted (key, value) pairs; false if a value is beyond this module.
fn fields_json(out: &mut Vec<u8>, fields: &[(&str, FieldView<'_, '_>)]) -> bool {
    out.push(b'{');
    for (index, (key, value)) in fields.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_json_string(out, key);
        out.push(b':');
        if !push_json_value(out, value) {
            return false;
        }
    }
    out.push(b'}');
    true
}

/// The JSON array of the sorted field names.
fn names_json(out: &mut Vec<u8>, fields: &[(&str, FieldView<'_, '_>)]) {
    out.push(b'[');
    for (index, (key, _)) in fields.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_json_string(out, key);
    }
    out.push(b']');
}

/// The JSON object of sorted tags.
fn tags_json(out: &mut Vec<u8>, tags: &[(&str, &str)]) {
    out.push(b'{');
    for (index, (key, value)) in tags.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_json_string(out, key);
        out.push(b':');
        push_json_string(out, value);
    }
    out.push(b'}');
}

/// Python strings of texts that recur within one call (a host's tag set, a measurement's
/// field names), so each is made once.
#[derive(Default)]
struct SharedTexts<'py> {
    made: FxHashMap<Vec<u8>, Bound<'py, PyString>>,
}

impl<'py> SharedTexts<'py> {
    fn get(&mut self, py: Python<'py>, text: &[u8]) -> Bound<'py, PyString> {
        if let Some(found) = self.made.get(text) {
            return found.clone();
        }
        if self.made.len() >= SHARED_TEXTS_LIMIT {
            self.made.clear();
        }
        // The texts are built from str values and ASCII punctuation: UTF-8.
        let made = PyString::new(py, std::str::from_utf8(text).expect("built from str"));
        self.made.insert(text.to_vec(), made.clone());
        made
    }
}

/// The SQLite rows of a batch's deliveries: for each metric, (measurement, tags JSON,
/// field names JSON, fields JSON, time_ns, topic, partition, offset). `encode_sorted` is
/// called with a dict (or a sorted list of field names) this module cannot write itself.
#[pyfunction]
pub fn sqlite_rows<'py>(
    py: Python<'py>,
    deliveries: &Bound<'py, PyList>,
    encode_sorted: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let rows = PyList::empty(py);
    let uint = uint_type(py)?;
    let mut shared_tags = SharedTexts::default();
    let mut shared_names = SharedTexts::default();
    let mut text = Vec::with_capacity(512);
    for delivery in deliveries.iter() {
        let topic = delivery.getattr(intern!(py, "topic"))?;
        let partition = delivery.getattr(intern!(py, "partition"))?;
        let offset = delivery.getattr(intern!(py, "offset"))?;
        let metrics = delivery.getattr(intern!(py, "metrics"))?;
        for metric in metrics.try_iter()? {
            let metric = metric?;
            let metric = as_metric(&metric)?;
            // Read from a snapshot: no borrow of the metric is held while Python objects are
            // made.
            let parts = metric.borrow().snapshot(py);
            let texts = row_texts(
                py,
                &parts,
                uint,
                &mut text,
                &mut shared_tags,
                &mut shared_names,
            )?;
            let (tags_json, names_json, fields_json) = match texts {
                Some(texts) => texts,
                None => {
                    // Something only Python's json writes: all three texts from it.
                    let tags = Metric::tags_dict(metric)?;
                    let fields = Metric::fields_dict(metric)?;
                    let names = PyList::new(py, fields.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
                    names.sort()?;
                    (
                        encode_sorted.call1((tags,))?,
                        encode_sorted.call1((names,))?,
                        encode_sorted.call1((fields,))?,
                    )
                }
            };
            let row = PyTuple::new(
                py,
                [
                    parts.name.bind(py).clone(),
                    tags_json,
                    names_json,
                    fields_json,
                    parts.time_ns.bind(py).clone(),
                    topic.clone(),
                    partition.clone(),
                    offset.clone(),
                ],
            )?;
            rows.append(row)?;
        }
    }
    Ok(rows)
}

type RowTexts<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// The tags, field names and fields texts of one metric; None if one needs Python's json.
fn row_texts<'py>(
    py: Python<'py>,
    metric: &Metric,
    uint: &Bound<'py, PyType>,
    text: &mut Vec<u8>,
    shared_tags: &mut SharedTexts<'py>,
    shared_names: &mut SharedTexts<'py>,
) -> PyResult<Option<RowTexts<'py>>> {
    // Tags or field keys that are not str (or are a str UTF-8 cannot hold) are left to
    // Python's json, as is any value the views call Other.
    let mut tag_objects = TagObjects::new();
    let Ok(mut tags) = tag_texts(py, &metric.tags, &mut tag_objects) else {
        return Ok(None);
    };
    let mut field_objects = FieldObjects::new();
    let Ok(mut fields) = field_views(py, &metric.fields, &mut field_objects, uint) else {
        return Ok(None);
    };
    // Python sorts str by code point, which is the order of their UTF-8 bytes.
    tags.sort_unstable_by(|a, b| a.0.cmp(b.0));
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));

    text.clear();
    if !fields_json(text, &fields) {
        return Ok(None);
    }
    let fields_text = PyString::new(py, std::str::from_utf8(text).expect("built from str"));
    text.clear();
    tags_json(text, &tags);
    let tags_text = shared_tags.get(py, text);
    text.clear();
    names_json(text, &fields);
    let names_text = shared_names.get(py, text);
    Ok(Some((
        tags_text.into_any(),
        names_text.into_any(),
        fields_text.into_any(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_float(value: f64) -> String {
        let mut out = Vec::new();
        push_python_float(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_as_python_repr_writes_them() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e300, "1.2345e+300"),
            (0.20040080160320642, "0.20040080160320642"),
            (123456.789, "123456.789"),
            (-123.0, "-123.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.00010000000000000002, "0.00010000000000000002"),
            (0.00009999999999999999, "9.999999999999999e-05"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float(value), expected, "{value:e}");
        }
    }

    #[test]
    fn strings_escape_as_python_json_does_without_ensure_ascii() {
        let mut out = Vec::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é\u{7f}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\nd\\u0001é\u{7f}\""
        );
    }
}
