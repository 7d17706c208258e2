"""Logging in Telegraf's shape, one line per event: `2026-01-02T03:04:05Z I! [inputs.cpu] …`."""

from __future__ import annotations

import logging
import sys
import time

_LEVEL_MARKS = {
    logging.DEBUG: "D!",
    logging.INFO: "I!",
    logging.WARNING: "W!",
    logging.ERROR: "E!",
    logging.CRITICAL: "E!",
}


class TelegrafFormatter(logging.Formatter):
    """UTC timestamp, level mark, the plugin in brackets (the logger's name), the message."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", self.converter(record.created))
        mark = _LEVEL_MARKS.get(record.levelno, "I!")
        plugin = f"[{record.name}] " if record.name not in ("root", "agent") else ""
        message = record.getMessage().replace("\n", " ")
        if record.name == "agent":
            plugin = "[agent] "
        return f"{stamp} {mark} {plugin}{message}"


def setup(debug: bool = False, quiet: bool = False, logfile: str = "") -> None:
    """Send log lines to stderr (journald keeps them) or to `logfile`."""
    handler: logging.Handler
    if logfile:
        handler = logging.FileHandler(logfile, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TelegrafFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO)
    # kafka-python logs every reconnect attempt at WARNING/ERROR; the output plugin reports
    # delivery problems itself, once per flush, so the library only speaks when debugging.
    logging.getLogger("kafka").setLevel(logging.WARNING if debug else logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
