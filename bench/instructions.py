"""Instructions per line of the native parser and serializer, counted by callgrind.

    python -m bench.instructions [LINES]

Timings on a shared machine drift (threefold within an hour here); instruction counts do not.
Runs itself under `valgrind --tool=callgrind` twice per step, with and without the measured
loop, and divides the difference by the lines handled: what one line costs, start-up and
imports left out. For parsing it also tells the part spent reading the text in Rust (the
reader's own functions, from callgrind_annotate), the rest being the Python objects made.
The data are bench.data's cpu lines whose values never repeat. Needs valgrind (Debian
package valgrind).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROUNDS = 10
CHUNK_LINES = 1000


def run_step(step: str, rounds: int, data_path: str) -> None:
    """The measured loop, run inside callgrind: `rounds` calls on CHUNK_LINES lines."""
    from agent import _native

    data = Path(data_path).read_bytes()
    metrics, _ = _native.parse_influx(data, 0, 1)
    _native.format_influx_lines(metrics, False, False)
    for _ in range(rounds):
        if step == "parse":
            _native.parse_influx(data, 0, 1)
        else:
            _native.format_influx_lines(metrics, False, False)


# The reader's iterator, whose inclusive count is the Rust side of a parse.
READER_FUNCTION = re.compile(r"^\s*([\d,]+) .*line_protocol::Reader.*Iterator.*::next", re.M)


def instructions(step: str, rounds: int, data_path: str) -> tuple[int, int]:
    """Total instructions of a run, and those inside the Rust reader."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "callgrind.out")
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.instructions", "--step", step, str(rounds), data_path,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", out],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total:\n{result.stderr[-2000:]}")
    reader = READER_FUNCTION.search(annotated)
    return int(found.group(1)), int(reader.group(1).replace(",", "")) if reader else 0


def main() -> None:
    if sys.argv[1:2] == ["--step"]:
        run_step(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    from bench.data import cpu_metrics
    from plugins.serializers.influx import InfluxSerializer

    lines = int(sys.argv[1]) if len(sys.argv) > 1 else CHUNK_LINES
    metrics = cpu_metrics(lines, repeating=False)
    with tempfile.NamedTemporaryFile(suffix=".lp") as data:
        data.write(InfluxSerializer().serialize_batch(metrics))
        data.flush()
        for step in ("parse", "serialize"):
            print(f"==> {step}: callgrind, {ROUNDS} rounds of {lines} lines", file=sys.stderr)
            total, reader = instructions(step, ROUNDS, data.name)
            base_total, base_reader = instructions(step, 0, data.name)
            per_line = (total - base_total) / (ROUNDS * lines)
            print(f"{step}: {per_line:,.0f} instructions a line")
            if step == "parse":
                read = (reader - base_reader) / (ROUNDS * lines)
                print(f"  of which reading the text in Rust: {read:,.0f}")
                print(f"  of which making the Python objects: {per_line - read:,.0f}")


if __name__ == "__main__":
    main()
