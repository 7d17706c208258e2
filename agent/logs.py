"""Logging in Telegraf's shape, one line per event: `2026-01-02T03:04:05Z I! [inputs.cpu] …`."""

from __future__ import annotations

import logging
import sys
import time

from agent.secret_values import hide_environment

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


class HideEnvironmentValues(logging.Filter):
    """Writes `${NAME}` in a log line wherever a value from the environment would appear.

    On the handler, not on a logger: every record that reaches the agent's stderr or logfile
    passes it, kafka-python's and APScheduler's too, whatever code formatted the message.
    The record itself is rewritten (its message, its exception and stack text), so any
    formatter prints the hidden form.
    """

    _exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: the error would quote them
            message = f"{record.msg} {record.args!r}"
        hidden = hide_environment(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = hide_environment(record.exc_text)
        if record.stack_info:
            record.stack_info = hide_environment(record.stack_info)
        return True


def setup(debug: bool = False, quiet: bool = False, logfile: str = "") -> None:
    """Send log lines to stderr (journald keeps them) or to `logfile`."""
    handler: logging.Handler
    if logfile:
        handler = logging.FileHandler(logfile, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TelegrafFormatter())
    handler.addFilter(HideEnvironmentValues())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO)
    # kafka-python logs every reconnect attempt at WARNING/ERROR; the output plugin reports
    # delivery problems itself, once per flush, so the library only speaks when debugging.
    logging.getLogger("kafka").setLevel(logging.WARNING if debug else logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


class Outage:
    """Logs an outage once: its first error as a warning, then a line when it is over."""

    def __init__(self, log: logging.Logger, over: str) -> None:
        self.log = log
        self.over = over  # the line that says it is over
        self.going_on = False

    def failed(self, what: str) -> None:
        if not self.going_on:
            self.log.warning("%s; trying again", what)
        self.going_on = True

    def recovered(self) -> None:
        if self.going_on:
            self.log.info("%s", self.over)
            self.going_on = False
