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


def psutil_module() -> ModuleType:
    """psutil, reading HOST_PROC: the one place that sets psutil.PROCFS_PATH.

    Call it right before each psutil read, so HOST_PROC is followed even if it changed.
    """
    import psutil

    psutil.PROCFS_PATH = str(root("proc"))
    return psutil
