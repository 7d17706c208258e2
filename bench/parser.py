"""Line protocol in process: microseconds a line to parse and to serialize, no Kafka, no file."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

from agent.metric import Metric
from bench import data
from bench.context import Context
from bench.progress import say
from bench.report import Figure
from plugins.parsers.influx import InfluxParser
from plugins.serializers.influx import InfluxSerializer

TITLE = "Parsing and serializing in process"
MEANING = """
Microseconds a line of the influx parser (`InfluxParser().parse()`, as inputs.file and the
sink call it, on bytes) and of the influx serializer (`InfluxSerializer().serialize_each()`,
as outputs.file and outputs.kafka call it), in the benchmark's own process, with the
garbage collector settings of the agent's. The lines are cpu lines whose values never repeat
(10 float fields, 2 tags, 50 hosts × 8 CPUs, 350 bytes). *1,000-line chunks*: calls of
1,000 lines (a write of `metric_batch_size` metrics, or a small file) in passes over 100,000
lines repeated for a few seconds, the fastest pass counted (on this shared machine a busy
moment only adds time); each pass's metrics are dropped after its timing ends, as the
gather's are. *One whole-file gather*: one call on the 500,000 lines of the file
benchmark, as `--once` makes it, then the serializer on its metrics; best of the runs; all
500,000 metrics alive at once. The gather must not cost more a line than the chunks (a cost
that grows with the gather, as the garbage collector scanning every metric made so far once
did); it costs less, since a call on 1 MiB or more reads its lines in a thread of its own
ahead of the metrics being made (docs/NATIVE.md). Both parse figures count the
young-generation collection of the garbage collector that the metrics made bring on (the
chunks' as it comes in the loop, the gather's right after the call). *Values repeating*:
the secondary data (ratios of small tick counts, four fields always 0), 1,000-line chunks.
"""

T = TypeVar("T")
CHUNK_LINES = 1_000
CHUNK_DATA_LINES = 100_000
CHUNK_PARSE = f"parse, {CHUNK_LINES:,}-line chunks"
GATHER_PARSE = "parse, one whole-file gather"


def per_line_us(call: Callable[[T], object], chunks: list[T], lines: int, seconds: float) -> float:
    """Microseconds a line of `call` over every chunk (`lines` lines in all): the fastest of
    passes repeated for `seconds` of timed work (a busy moment of the shared machine only
    ever adds time to a pass). A pass's results are dropped after its timing ends, as the
    gather's are: the figure is the call alone."""
    timed = 0.0
    fastest = float("inf")
    while timed < seconds:
        started = time.perf_counter()
        results = [call(chunk) for chunk in chunks]
        elapsed = time.perf_counter() - started
        timed += elapsed
        fastest = min(fastest, elapsed)
        del results
    return fastest / lines * 1e6


def chunked(metrics: list[Metric]) -> list[list[Metric]]:
    return [metrics[i : i + CHUNK_LINES] for i in range(0, len(metrics), CHUNK_LINES)]


def chunk_figures(label: str, metrics: list[Metric], seconds: float) -> list[Figure]:
    """Parse and serialize µs a line, in 1,000-line calls over `metrics`."""
    parser, serializer = InfluxParser(), InfluxSerializer()
    metric_chunks = chunked(metrics)
    text_chunks = [b"".join(serializer.serialize_each(chunk)) for chunk in metric_chunks]
    stamp = data.start_of_hour_ns()
    say(f"parser: parse and serialize{label}, {CHUNK_LINES:,}-line chunks, {seconds:g} s each")
    parse_us = per_line_us(
        lambda text: parser.parse(text, stamp), text_chunks, len(metrics), seconds
    )
    serialize_us = per_line_us(serializer.serialize_each, metric_chunks, len(metrics), seconds)
    chunks = f"{CHUNK_LINES:,}-line chunks"
    return [
        Figure(f"{CHUNK_PARSE}{label}", parse_us, "µs", f"InfluxParser().parse({chunks})"),
        Figure(
            f"serialize, {chunks}{label}",
            serialize_us,
            "µs",
            f"InfluxSerializer().serialize_each({CHUNK_LINES:,} metrics)",
        ),
    ]


def gather_figures(lines: int, runs: int) -> list[Figure]:
    """Parse µs a line of one call on `lines` lines, then serialize of its metrics; best of
    `runs` runs."""
    parser, serializer = InfluxParser(), InfluxSerializer()
    text = b"".join(serializer.serialize_each(data.cpu_metrics(lines)))
    stamp = data.start_of_hour_ns()
    parse_s, serialize_s = [], []
    for run in range(runs):
        say(f"parser: one {lines:,}-line gather, run {run + 1} of {runs}")
        gc.collect()
        started = time.perf_counter()
        metrics, errors = parser.parse(text, stamp)
        # The young-generation collection that the call's objects bring on at the next
        # allocation; in the chunks' loop it comes by itself and is timed.
        gc.collect(0)
        parse_s.append(time.perf_counter() - started)
        if errors or len(metrics) != lines:
            raise RuntimeError(f"parsed {len(metrics)} metrics and {len(errors)} errors")
        started = time.perf_counter()
        serializer.serialize_each(metrics)
        serialize_s.append(time.perf_counter() - started)
        del metrics
    return [
        Figure(
            GATHER_PARSE,
            min(parse_s) / lines * 1e6,
            "µs",
            f"InfluxParser().parse({lines:,} lines at once)",
        ),
        Figure(
            "serialize, one whole-file gather",
            min(serialize_s) / lines * 1e6,
            "µs",
            f"InfluxSerializer().serialize_each({lines:,} metrics)",
        ),
    ]


def run(ctx: Context) -> tuple[str, list[Figure]]:
    seconds = ctx.pick(3.0, 0.3)
    gather_lines = ctx.count(500_000, 50_000)
    runs = ctx.count(5, 1)
    figures = chunk_figures("", data.cpu_metrics(CHUNK_DATA_LINES), seconds)
    figures += gather_figures(gather_lines, runs)
    repeating = data.cpu_metrics(CHUNK_DATA_LINES, repeating=True)
    figures += chunk_figures(f", {data.REPEATING_LABEL}", repeating, seconds)
    settings = f"{seconds:g} s per chunk figure; best of {runs} gather(s) of {gather_lines:,} lines"
    return settings, figures
