"""Shared fixtures: where the repository and the recorded host trees are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOSTS = REPO / "tests" / "data" / "hosts"


@pytest.fixture
def host_step(monkeypatch: pytest.MonkeyPatch):
    """Point HOST_PROC (and HOST_SYS, HOST_VAR, HOST_RUN, HOST_DEV) at one step of a
    recorded host tree: host_step("case", 0)."""

    def use(case: str, step: int) -> Path:
        tree = HOSTS / case / f"step{step}"
        for variable in ("HOST_PROC", "HOST_SYS", "HOST_VAR", "HOST_RUN", "HOST_DEV"):
            monkeypatch.setenv(variable, str(tree / variable.removeprefix("HOST_").lower()))
        return tree

    return use
