"""Files that hold metrics are for their owner's eyes: mode 0600 whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

OWNER_ONLY = 0o600


def create_owner_only(path: Path | str) -> None:
    """Create `path` empty with mode 0600 if it does not exist; an existing file keeps its
    mode (its owner chose it). SQLite gives the -wal and -shm files it makes beside a
    database the database file's own mode, so creating the database this way first covers
    them too."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, OWNER_ONLY)
    os.close(descriptor)
