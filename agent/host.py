"""Where the host's kernel interfaces are: /proc, /sys and friends, or Telegraf's HOST_*
environment variables when the agent watches a host from a container (or a recorded tree).

| variable            | stands for | read by                                              |
| ------------------- | ---------- | ---------------------------------------------------- |
| `HOST_PROC`         | /proc      | every host input (psutil too, via psutil.PROCFS_PATH) |
| `HOST_SYS`          | /sys       | system, disk, diskio, net, kernel                    |
| `HOST_ETC`          | /etc       | nothing yet (accepted for Telegraf's sake)           |
| `HOST_VAR`          | /var       | system (run/utmp: logged-in users)                   |
| `HOST_RUN`          | /run       | disk, diskio (udev data)                             |
| `HOST_DEV`          | /dev       | disk, diskio (device nodes, /dev/mapper links)       |
| `HOST_MOUNT_PREFIX` | (none)     | disk: where the host's file systems are mounted      |

The variables are read at every call, so a change (a test pointing HOST_PROC at a recorded
tree) takes effect on the next gather.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

_ROOTS = {
    "proc": ("HOST_PROC", "/proc"),
    "sys": ("HOST_SYS", "/sys"),
    "etc": ("HOST_ETC", "/etc"),
    "var": ("HOST_VAR", "/var"),
    "run": ("HOST_RUN", "/run"),
    "dev": ("HOST_DEV", "/dev"),
}


class HostFileError(OSError):
    """A kernel interface file that cannot be read; the message names the file."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot read {path}: {error.strerror or error}")
        self.path = path
        self.errno = error.errno


class HostFileFormatError(ValueError):
    """A kernel interface file whose content is not what the kernel writes (damaged, cut
    short, or another file in its place); the message names the file, the line and what
    was expected there."""

    def __init__(self, path: Path, expected: str, line_number: int = 0, found: str = "") -> None:
        where = f"{path}:{line_number}" if line_number else str(path)
        message = f"{where}: expected {expected}"
        if found:
            message += f", found {found}"
        super().__init__(message)
        self.path = path
        self.line_number = line_number


# A damaged line is quoted up to this many characters: enough to recognise it.
QUOTED_LINE_CHARS = 80


def quoted(line: str) -> str:
    """A line as an error message shows it: in quotes, cut after QUOTED_LINE_CHARS."""
    if len(line) <= QUOTED_LINE_CHARS:
        return repr(line)
    return f"{line[:QUOTED_LINE_CHARS]!r}… ({len(line) - QUOTED_LINE_CHARS} more characters)"


def root(kind: str) -> Path:
    """The directory that stands for /proc, /sys, … on the host being watched."""
    variable, default = _ROOTS[kind]
    return Path(os.environ.get(variable) or default)


def is_redirected(kind: str) -> bool:
    """True if the HOST_* variable for `kind` is set: the host is not the one we run on."""
    return bool(os.environ.get(_ROOTS[kind][0]))


def proc(*parts: str) -> Path:
    return root("proc").joinpath(*parts)


def sys_path(*parts: str) -> Path:
    return root("sys").joinpath(*parts)


def etc(*parts: str) -> Path:
    return root("etc").joinpath(*parts)


def var(*parts: str) -> Path:
    return root("var").joinpath(*parts)


def run(*parts: str) -> Path:
    return root("run").joinpath(*parts)


def dev(*parts: str) -> Path:
    return root("dev").joinpath(*parts)


def mount_prefix() -> str:
    """HOST_MOUNT_PREFIX: where the host's file systems are mounted inside a container ("")."""
    return os.environ.get("HOST_MOUNT_PREFIX", "")


def read_text(path: Path) -> str:
    """The whole text of a kernel interface file; HostFileError naming it if unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise HostFileError(path, error) from None


def read_lines(path: Path, may_be_empty: bool = False) -> list[str]:
    """The lines of a kernel interface file. The kernel ends every line with a newline, so
    a last line without one was cut short: that, and an empty file (unless it `may_be_empty`),
    is a HostFileFormatError naming the file; an unreadable file is a HostFileError."""
    text = read_text(path)
    lines = text.splitlines()
    if not lines and not may_be_empty:
        raise HostFileFormatError(path, "the kernel's lines", found="an empty file")
    if text and not text.endswith("\n"):
        expected = "a line ending in a newline (the file was cut short)"
        raise HostFileFormatError(path, expected, len(lines), quoted(lines[-1]))
    return lines


def parse_integers(
    path: Path, line_number: int, line: str, values: list[str], what: str
) -> list[int]:
    """`values` (words of line `line_number`) as integers; a HostFileFormatError naming the
    line and `what` it should hold if one is not a whole number."""
    try:
        return [int(value) for value in values]
    except ValueError:
        raise HostFileFormatError(path, what, line_number, quoted(line)) from None


def psutil_module() -> ModuleType:
    """psutil, reading HOST_PROC: the one place that sets psutil.PROCFS_PATH.

    Call it right before each psutil read, so HOST_PROC is followed even if it changed.
    """
    import psutil

    psutil.PROCFS_PATH = str(root("proc"))
    return psutil
