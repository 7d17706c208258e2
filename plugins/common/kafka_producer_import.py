"""kafka-python's KafkaProducer without the rest of kafka-python.

`from kafka import KafkaProducer` runs the package's `__init__`, which imports the admin
client, the consumer and its group coordinator too: about 1.5 MB of an idle agent's memory
that outputs.kafka never uses. `producer_class()` imports the producer's own modules
beneath a `kafka` package whose `__init__` has not run yet. The first time anything asks
that package for a name its `__init__` defines (`from kafka import KafkaConsumer`,
`kafka.__version__`), the `__init__` runs, so every other user of kafka-python in the
process (the sink, the tests) sees the package as it always is.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from typing import Any

_PACKAGE = "kafka"
_init_lock = threading.RLock()


def producer_class() -> type:
    """kafka.KafkaProducer, importing no more of kafka-python than it needs."""
    if _PACKAGE not in sys.modules:
        _install_package_without_init()
    from kafka.producer.kafka import KafkaProducer

    return KafkaProducer


def _install_package_without_init() -> None:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {_PACKAGE!r}", name=_PACKAGE)
    package = importlib.util.module_from_spec(spec)  # __path__ set: submodules import

    def run_init_for(name: str) -> Any:
        """A name the package's __init__ defines: run it, once, and look again. A name of a
        submodule is left to the import system, which imports it when asked to."""
        with _init_lock:
            if package.__dict__.get("__getattr__") is run_init_for:
                if importlib.util.find_spec(f"{_PACKAGE}.{name}") is not None:
                    raise AttributeError(name)
                del package.__getattr__  # type: ignore[attr-defined]
                spec.loader.exec_module(package)  # type: ignore[union-attr]
        return getattr(package, name)

    package.__getattr__ = run_init_for  # type: ignore[method-assign]
    # What the __init__ does besides importing: kafka-python's own loggers stay silent
    # unless logging is set up.
    logging.getLogger(_PACKAGE).addHandler(logging.NullHandler())
    sys.modules[_PACKAGE] = package
