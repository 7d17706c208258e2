"""What every benchmark group gets: the broker, the run's mode, a scratch directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AGENT = REPO / ".venv" / "bin" / "agent"


@dataclass
class Context:
    bootstrap: str
    quick: bool
    workdir: Path  # deleted at the end of the run

    def pick(self, full: float, quick: float) -> float:
        """A duration or size: `full` by default, `quick` with --quick."""
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
