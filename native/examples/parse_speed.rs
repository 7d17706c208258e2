use std::time::Instant;
fn main() {
    let data = std::fs::read("/tmp/cpu500k.lp").unwrap();
    let start = Instant::now();
    let mut metrics = 0usize;
    for item in _native::line_protocol::Reader::new(&data, 1) {
        if let _native::line_protocol::Item::Metric(line) = item {
            metrics += line.fields.len();
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{} fields, {:.3} us/line",
        metrics,
        elapsed.as_secs_f64() / 500000.0 * 1e6
    );
}
