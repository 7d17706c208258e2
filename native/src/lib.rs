//! The agent's native core: line protocol read into the agent's metrics and written back out.
//!
//! Python keeps the orchestration; this module does the per-line work of parsers and
//! serializers, where an interpreter spends microseconds per line, the sink's conversion of
//! metrics into its stores' rows, and the reading of the record batches the sink fetches.
//! Python calls it through agent/metric.py, plugins/parsers/influx.py,
//! plugins/serializers/influx.py, the sink's fetcher and its stores.

pub mod influx_format;
mod kafka_records;
pub mod line_protocol;
mod metric;
mod point_runs;
mod point_tables;
mod python_metrics;

use pyo3::prelude::*;

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<metric::Metric>()?;
    module.add_function(wrap_pyfunction!(metric::finish_metrics, module)?)?;
    module.add_function(wrap_pyfunction!(python_metrics::parse_influx, module)?)?;
    module.add_function(wrap_pyfunction!(
        python_metrics::parse_influx_records,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(
        kafka_records::read_record_batches,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(kafka_records::write_record_batch, module)?)?;
    module.add_function(wrap_pyfunction!(
        python_metrics::format_influx_lines,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(
        python_metrics::format_influx_joined,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(python_metrics::format_float, module)?)?;
    module.add_function(wrap_pyfunction!(
        python_metrics::format_influx_records,
        module
    )?)?;
    module.add_class::<point_tables::PointTable>()?;
    module.add_class::<point_runs::PointRun>()?;
    module.add_function(wrap_pyfunction!(point_runs::read_point_runs, module)?)?;
    module.add_function(wrap_pyfunction!(point_tables::point_tables, module)?)?;
    module.add_function(wrap_pyfunction!(point_tables::telegraf_tag_id, module)?)?;
    Ok(())
}
