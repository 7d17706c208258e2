"""One TOML config file, read as the agent and the sink read theirs: environment variables
substituted as Telegraf does, parsed, and its lines kept to name them in error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import envvars
from agent.errors import ConfigError
from agent.toml_text import MAX_NESTING, tomllib, too_deep

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r'^\s*["\']?([A-Za-z0-9_.-]+)["\']?\s*=')


@dataclass
class ConfigFile:
    """A config file's TOML table, and its lines (comments removed, variables substituted:
    as many lines as the file has) to find where a table or key was written."""

    path: Path
    table: dict[str, Any]
    lines: list[str]

    def line_of(self, table: list[str], occurrence: int = 0, key: str | None = None) -> int | None:
        """The 1-based line of `key` in the `occurrence`-th table named `table` (`[]`: the
        top level), or of that table's header.

        TOML parsers forget positions; this scan finds them again for error messages. It
        knows headers and `key =` lines, which covers how configs are written in practice.
        """
        wanted = ".".join(table)
        seen = -1
        header_line = None
        inside = not table
        for number, line in enumerate(self.lines, start=1):
            header = _HEADER.match(line)
            if header:
                name = header.group(2).replace(" ", "").replace('"', "")
                if table and name == wanted:
                    seen += 1
                    inside = seen == occurrence
                    if inside:
                        header_line = number
                elif not (table and name.startswith(wanted + ".")):
                    inside = False
                continue
            if inside and key is not None:
                match = _KEY.match(line)
                if match and match.group(1) == key:
                    return number
        return header_line

    def where(self, table: list[str], occurrence: int = 0, key: str | None = None) -> str:
        """`path:line` for a message about `key` of `table` (see line_of), or `path`."""
        line = self.line_of(table, occurrence, key)
        return f"{self.path}:{line}" if line else str(self.path)


def read_config_file(path: Path) -> ConfigFile:
    """A config file, environment variables substituted as Telegraf does; every problem is
    a ConfigError naming the file (and line, column where known)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        message = f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        raise ConfigError(message) from None
    text = envvars.substitute(text, path)  # ${VAR} as Telegraf: in the raw text, not comments
    deep_line = too_deep(text)
    if deep_line is not None:
        raise ConfigError(
            f"{path}:{deep_line}: arrays or inline tables nested more than {MAX_NESTING} deep"
        )
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        where = f"{path}:{position.group(1)}:{position.group(2)}" if position else str(path)
        message = _TOML_POSITION.sub("", message).strip()
        raise ConfigError(f"{where}: TOML syntax error: {message}") from None
    return ConfigFile(path, table, text.splitlines())
