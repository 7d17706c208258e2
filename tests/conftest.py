"""Shared fixtures: where the repository and the recorded host trees are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOSTS = REPO / "tests" / "data" / "hosts"


@pytest.fixture
def host_step(monkeypatch: pytest.MonkeyPatch):
    """Point HOST_PROC at one step of a recorded host tree: host_step("case", 0)."""

    def use(case: str, step: int) -> Path:
        tree = HOSTS / case / f"step{step}"
        monkeypatch.setenv("HOST_PROC", str(tree / "proc"))
        return tree

    return use
