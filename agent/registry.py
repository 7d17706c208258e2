"""Plugins register themselves by name at import time; the agent never lists them by hand.

`@input("cpu")` on a class in any module under `plugins/inputs/` makes `[[inputs.cpu]]`
available; likewise `@output`, `@serializer` and `@parser`.

Looking a plugin up imports the module named after it first (`plugins/inputs/cpu.py` for
`inputs.cpu`), and every module of its kind only if that one does not register it: an
agent loads the code of the plugins its config uses, not of all of them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)

KINDS = ("inputs", "outputs", "serializers", "parsers")
_registered: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
_loaded: set[str] = set()


def _register(kind: str, name: str) -> Callable[[T], T]:
    def add(cls: T) -> T:
        cls.plugin_name = name
        cls.plugin_kind = kind
        _registered[kind][name] = cls
        return cls

    return add


def input(name: str) -> Callable[[T], T]:  # noqa: A001 - reads as @input("cpu")
    return _register("inputs", name)


def output(name: str) -> Callable[[T], T]:
    return _register("outputs", name)


def serializer(name: str) -> Callable[[T], T]:
    return _register("serializers", name)


def parser(name: str) -> Callable[[T], T]:
    return _register("parsers", name)


def _load(kind: str) -> None:
    """Import every module of `plugins.<kind>` once, so their decorators run."""
    if kind in _loaded:
        return
    package = importlib.import_module(f"plugins.{kind}")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"plugins.{kind}.{module.name}")
    _loaded.add(kind)


def _load_named(kind: str, name: str) -> None:
    """Import `plugins.<kind>.<name>` if there is such a module."""
    if not name.isidentifier():
        return
    module = f"plugins.{kind}.{name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise  # the plugin's own import failed: a bug to see, not a missing plugin


def plugins(kind: str) -> dict[str, type]:
    """All plugins of one kind, by name, sorted."""
    _load(kind)
    return dict(sorted(_registered[kind].items()))


def lookup(kind: str, name: str) -> type | None:
    """The plugin registered as `name`, or None if no module of its kind registers one."""
    registered = _registered[kind]
    if name not in registered:
        _load_named(kind, name)
    if name not in registered:
        _load(kind)
    return registered.get(name)
