"""Writes metrics to files or standard output, in any data_format (influx by default)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import BinaryIO

from agent.metric import Metric
from agent.plugin import Output
from agent.registry import output

SAMPLE_CONFIG = """\
# Write metrics to standard output or to files
[[outputs.file]]
  ## Where to write: "stdout", or paths of files (appended to, created if missing).
  files = ["stdout"]

  ## Serialize each write as one batch (for "json": one {"metrics":[...]} object)
  ## instead of one metric after the other.
  # use_batch_format = false

  ## Output format: "influx" (line protocol) or "json".
  data_format = "influx"
"""


@output("file")
@dataclass
class File(Output):
    """Appends serialized metrics to each file in `files`; "stdout" is standard output."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    files: list[str] = field(default_factory=lambda: ["stdout"])
    use_batch_format: bool = False
    data_format: str = "influx"
    _streams: list[BinaryIO] = field(default_factory=list, init=False, repr=False)

    def connect(self) -> None:
        for name in self.files:
            if name == "stdout":
                self._streams.append(sys.stdout.buffer)
            else:
                try:
                    self._streams.append(open(name, "ab"))  # noqa: SIM115 - kept open
                except OSError as error:
                    raise ConnectionError(f"cannot open {name}: {error.strerror}") from None

    def write(self, metrics: list[Metric]) -> None:
        assert self.serializer is not None
        if self.use_batch_format:
            data = self.serializer.serialize_batch(metrics)
        else:
            data = b"".join(self.serializer.serialize_each(metrics))
        for stream in self._streams:
            stream.write(data)
            stream.flush()

    def close(self) -> None:
        for stream in self._streams:
            if stream is not sys.stdout.buffer:
                stream.close()
        self._streams.clear()
