//! The agent's native core: line protocol read into the agent's metrics and written back out.
//!
//! Python keeps the orchestration; this module does the per-line work of parsers and
//! serializers, where an interpreter spends microseconds per line, and the sink's conversion of
//! metrics into SQLite rows. Python calls it through plugins/parsers/influx.py,
//! plugins/serializers/influx.py and agent/sink/store.py only.

pub mod influx_format;
pub mod line_protocol;
mod metric;
mod postgres_rows;
mod python_metrics;
mod store_rows;

use pyo3::prelude::*;

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<metric::Metric>()?;
    module.add_function(wrap_pyfunction!(metric::group_by_tag, module)?)?;
    module.add_function(wrap_pyfunction!(metric::finish_metrics, module)?)?;
    module.add_function(wrap_pyfunction!(python_metrics::parse_influx, module)?)?;
    module.add_function(wrap_pyfunction!(python_metrics::parse_influx_each, module)?)?;
    module.add_function(wrap_pyfunction!(
        python_metrics::format_influx_lines,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(
        python_metrics::format_influx_joined,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(python_metrics::format_float, module)?)?;
    module.add_function(wrap_pyfunction!(store_rows::sqlite_rows, module)?)?;
    module.add_class::<postgres_rows::PointTable>()?;
    module.add_function(wrap_pyfunction!(postgres_rows::postgres_tables, module)?)?;
    module.add_function(wrap_pyfunction!(postgres_rows::postgres_tag_id, module)?)?;
    Ok(())
}
