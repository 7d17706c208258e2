"""Metrics read from files: every gather parses each file matched by `files` from start to end.

The files hold metrics in a `data_format` (influx line protocol by default, or json), so the
measurements, tags, fields and timestamps are whatever the files say; `file_tag` and
`file_path_tag` add the file's base name or absolute path as a tag. A line without a
timestamp gets the time of the gather.

A line that does not parse is an error naming `file:line:column` and what was expected; the
other lines of the file are kept. A pattern that matches no file is an error too (as in
Telegraf); the other patterns are still read.
"""

from __future__ import annotations

import codecs
import os
import time
from dataclasses import dataclass, field
from typing import Literal

from agent.filters import is_glob
from agent.metric import Metric
from agent.plugin import Input
from agent.registry import input
from plugins.common.globpath import match_paths
from plugins.common.parse_errors import parse_error_reports

SAMPLE_CONFIG = """\
# Read whole files of metrics at every gather
[[inputs.file]]
  ## Paths or globs as in a shell ("*", "?", "[abc]", "{a,b}"), and "**" for
  ## any depth of directories: "/var/log/**.log".
  files = ["/tmp/metrics.out"]

  ## Character encoding of the files: "utf-8", "utf-16le" or "utf-16be"; with these,
  ## bytes that are not valid in the encoding become U+FFFD. When empty (or "none")
  ## the bytes are read as UTF-8 as they are, and a line that is not UTF-8 is an error.
  ## A byte order mark at the start is skipped.
  # character_encoding = ""

  ## What the files hold: "influx" (line protocol) or "json".
  data_format = "influx"

  ## Tag each metric with the file's base name, under this tag name (empty: no
  ## tag). Many different file names make many series.
  # file_tag = ""

  ## Tag each metric with the file's absolute path, under this tag name (empty:
  ## no tag).
  # file_path_tag = ""
"""

CharacterEncoding = Literal["", "none", "utf-8", "utf-16le", "utf-16be"]
_TEXT_CODECS = {"utf-8": "utf-8", "utf-16le": "utf-16-le", "utf-16be": "utf-16-be"}
_BYTE_ORDER_MARK = "\ufeff"


def decode(data: bytes, encoding: CharacterEncoding) -> bytes | str:
    """File contents as the parser gets them: text in `encoding`, or the bytes unchecked
    ("" / "none"); a leading byte order mark left out."""
    codec = _TEXT_CODECS.get(encoding)
    if codec is None:
        return data.removeprefix(codecs.BOM_UTF8)
    return data.decode(codec, errors="replace").removeprefix(_BYTE_ORDER_MARK)


@input("file")
@dataclass
class File(Input):
    """Parses whole files in a data format at every gather; one metric per line (influx)."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    files: list[str] = field(default_factory=list)
    character_encoding: CharacterEncoding = ""
    data_format: str = "influx"
    file_tag: str = ""
    file_path_tag: str = ""

    def gather(self) -> list[Metric]:
        now_ns = time.time_ns()
        metrics: list[Metric] = []
        for path in self.matched_files():
            metrics.extend(self.read(path, now_ns))
        return metrics

    def matched_files(self) -> list[str]:
        """The files of every pattern, each once; a pattern that matches none is reported."""
        found: dict[str, None] = {}
        for pattern in self.files:
            paths = match_paths(pattern)
            if is_glob(pattern):
                paths = [path for path in paths if not os.path.isdir(path)]
            if not paths:
                self.report_error(f"could not find file(s): {pattern}")
            found.update(dict.fromkeys(paths))
        return list(found)

    def read(self, path: str, now_ns: int) -> list[Metric]:
        """The metrics of one file; what cannot be read or parsed is reported."""
        assert self.parser is not None, "the config gives every inputs.file its parser"
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as error:
            self.report_error(f"could not read {path}: {error.strerror}")
            return []
        metrics, errors = self.parser.parse(decode(data, self.character_encoding), now_ns)
        for message in parse_error_reports(path, errors):
            self.report_error(message)
        if self.file_tag:
            name = os.path.basename(path)
            for metric in metrics:
                metric.tags[self.file_tag] = name
        if self.file_path_tag:
            absolute = os.path.abspath(path)
            for metric in metrics:
                metric.tags[self.file_path_tag] = absolute
        return metrics
