"""Where scripts/kafka keeps its state, from the script's own layout (KAFKA_FIRST_PORT moves
it), for the fixtures that read the state file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from kafkalocal.layout import SECURE_STATE_FILE, STATE_FILE  # noqa: E402

__all__ = ["SECURE_STATE_FILE", "STATE_FILE"]
