"""The influx parser against Telegraf's own verdicts on thousands of tricky cases.

tests/data/telegraf-parser-vectors.jsonl is the corpus of scripts/telegraf-parser-check, one
JSON object a case: `case`, the text of one file, and `telegraf`, what Telegraf 1.37.2 made
of it: either "refused" (Telegraf refuses the file as a whole), or the lines its influx
serializer wrote (unsigned integers as `123u`, without their line end; `NOW` in place of the
timestamp where the case gave none and Telegraf stamped the time it read the file). The agent
reads each case with its InfluxParser and writes what it read with its InfluxSerializer; the
lines must be the same. A case Telegraf refuses must cost the agent at least one line (the
agent loses only the bad line, Telegraf the whole file: a deliberate difference).

Regenerate with `scripts/telegraf-parser-check --write-vectors` (it needs Telegraf; this test
does not).
"""

from __future__ import annotations

import json
from pathlib import Path

from plugins.parsers.influx import InfluxParser
from plugins.serializers.influx import InfluxSerializer

VECTORS_PATH = Path(__file__).parent.parent / "data" / "telegraf-parser-vectors.jsonl"
# The stamp given to lines without a timestamp: no case holds it, so it stands for "now".
DEFAULT_TIME_NS = 1_234_567_890_123_456_789
NOW_MARK = "NOW"
SHOWN_DIFFERENCES = 20


def load_vectors() -> list[dict]:
    with open(VECTORS_PATH, encoding="utf-8") as vectors:
        return [json.loads(line) for line in vectors]


VECTORS = load_vectors()


def agent_reading(case: str) -> list[str] | None:
    """The agent's lines for a case as the vectors write them; None if any line is refused."""
    metrics, errors = InfluxParser().parse(case.encode(), DEFAULT_TIME_NS)
    if errors:
        return None
    serializer = InfluxSerializer(influx_uint_support=True)
    lines = []
    for written in serializer.serialize_each(metrics):
        if not written:
            continue
        line = written.decode().removesuffix("\n")
        head, _, stamp = line.rpartition(" ")
        lines.append(f"{head} {NOW_MARK}" if stamp == str(DEFAULT_TIME_NS) else line)
    return sorted(lines)


def report(differences: list[str]) -> str:
    shown = "\n".join(differences[:SHOWN_DIFFERENCES])
    return f"{len(differences)} cases differ from Telegraf, the first ones:\n{shown}"


def test_the_vectors_hold_at_least_3000_cases_of_both_kinds():
    assert len(VECTORS) >= 3000
    refused = sum(vector["telegraf"] == "refused" for vector in VECTORS)
    assert 500 <= refused <= len(VECTORS) - 1000


def test_parser_reads_every_case_telegraf_accepts_as_the_same_metrics():
    differences = []
    for vector in VECTORS:
        expected = vector["telegraf"]
        if expected == "refused":
            continue
        read = agent_reading(vector["case"])
        if read != sorted(expected):
            shown = "refused" if read is None else read
            differences.append(f"{vector['case']!r}: Telegraf {expected}, agent {shown}")
    assert differences == [], report(differences)


def test_parser_refuses_every_case_telegraf_refuses():
    differences = [
        f"{vector['case']!r}: agent {agent_reading(vector['case'])}"
        for vector in VECTORS
        if vector["telegraf"] == "refused" and agent_reading(vector["case"]) is not None
    ]
    assert differences == [], report(differences)
