"""Values the config took from the environment, remembered so that no message shows them.

Substitution (agent.envvars) records each value it inserts with the name of its variable.
Error messages (agent.errors) and log lines (agent.logs) then write `${NAME}` where such a
value would appear, and option checks ask `reveals_environment()` before quoting a value.
"""

from __future__ import annotations

import re
import threading

# Values shorter than this are not hidden in log lines: a port such as "80", a count, "on"
# or "dc1" is little of a secret, and replacing every "80" or "on" in every log line (inside
# numbers, words, durations) would garble the logs more than it protects. Four characters
# is where values start to be names, hosts, paths and passwords rather than such fragments.
MIN_HIDDEN_LENGTH = 4


class EnvironmentValues:
    """Every non-empty value substitution has inserted, with the name of its variable.

    Values are only ever added: a SIGHUP reload reads the config again (recording what the
    new config inserts) while the previous agent still flushes, and a reload that fails
    keeps the previous config running, so a value once read stays a secret for the process.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # value → the variable it came from (the first one)
        self._lock = threading.Lock()  # log lines come from every thread; reloads record
        self._pattern: re.Pattern[str] | None = None

    def record(self, name: str, value: str) -> None:
        with self._lock:
            if value and value not in self.names:
                self.names[value] = name
                self._pattern = None

    def reveals(self, text: str) -> bool:
        with self._lock:
            values = list(self.names)
        return any(value in text for value in values)

    def hide(self, text: str) -> str:
        """`text` with each value of at least MIN_HIDDEN_LENGTH characters as `${NAME}`."""
        pattern = self._hidden_pattern()
        if pattern is None:
            return text
        return pattern.sub(lambda match: "${" + self.names[match.group()] + "}", text)

    def _hidden_pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None:
                # Longest first, so a value holding another one is replaced as a whole; one
                # pass, so a value is never looked for inside a `${NAME}` just written.
                hidden = sorted(
                    (value for value in self.names if len(value) >= MIN_HIDDEN_LENGTH),
                    key=len,
                    reverse=True,
                )
                if not hidden:
                    return None
                self._pattern = re.compile("|".join(map(re.escape, hidden)))
            return self._pattern


_recorded = EnvironmentValues()


def record_environment_value(name: str, value: str) -> None:
    """Remember that `value` came from environment variable `name`."""
    _recorded.record(name, value)


def reveals_environment(text: str) -> bool:
    """True if `text` contains a value that substitution took from the environment."""
    return _recorded.reveals(text)


def hide_environment(text: str) -> str:
    """`text` with every value taken from the environment (but the shortest, see
    MIN_HIDDEN_LENGTH) replaced by `${NAME}`, the variable it came from."""
    return _recorded.hide(text)
