"""agent.registry: plugins found by name, loading only the code a config uses."""

from __future__ import annotations

import subprocess
import sys

from agent import registry


def loaded_plugin_modules_after(statement: str) -> list[str]:
    """The plugins.* modules a fresh interpreter has imported after running `statement`."""
    script = (
        f"import sys\nfrom agent import registry\n{statement}\n"
        "print(' '.join(sorted(m for m in sys.modules if m.count('.') == 2)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return [m for m in result.stdout.split() if m.startswith("plugins.")]


def test_looking_up_a_plugin_imports_only_its_own_module():
    loaded = loaded_plugin_modules_after("registry.lookup('inputs', 'mem')")
    assert loaded == ["plugins.inputs.mem"]


def test_an_unknown_name_is_looked_for_in_every_module_of_its_kind():
    assert registry.lookup("inputs", "no_such_plugin") is None
    assert "cpu" in registry.plugins("inputs") and "exec" in registry.plugins("inputs")
    loaded = loaded_plugin_modules_after("registry.lookup('inputs', 'no-such-plugin')")
    assert "plugins.inputs.cpu" in loaded and "plugins.inputs.exec" in loaded
