"""Where the host's kernel interfaces are: /proc, /sys and friends, or Telegraf's HOST_*
environment variables when the agent watches a host from a container (or a recorded tree).
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOTS = {
    "proc": ("HOST_PROC", "/proc"),
    "sys": ("HOST_SYS", "/sys"),
    "etc": ("HOST_ETC", "/etc"),
    "var": ("HOST_VAR", "/var"),
    "run": ("HOST_RUN", "/run"),
    "dev": ("HOST_DEV", "/dev"),
}


def root(kind: str) -> Path:
    """The directory that stands for /proc, /sys, … on the host being watched."""
    variable, default = _ROOTS[kind]
    return Path(os.environ.get(variable) or default)


def proc(*parts: str) -> Path:
    return root("proc").joinpath(*parts)


def sys_path(*parts: str) -> Path:
    return root("sys").joinpath(*parts)
