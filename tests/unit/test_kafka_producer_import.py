"""plugins.common.kafka_producer_import: the producer without the rest of kafka-python."""

from __future__ import annotations

import subprocess
import sys


def run_python(script: str) -> list[str]:
    """What a fresh interpreter prints running `script`, word by word."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_producer_comes_without_the_admin_client_and_the_consumer():
    printed = run_python(
        "import sys\n"
        "from plugins.common.kafka_producer_import import producer_class\n"
        "producer = producer_class()\n"
        "from kafka import errors\n"
        "from kafka.errors import KafkaError\n"
        "print(producer.__name__, errors.KafkaError is KafkaError)\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('kafka.')}))\n"
    )
    assert printed[:2] == ["KafkaProducer", "True"]
    loaded = " ".join(printed[2:])
    assert "'producer'" in loaded and "'errors'" in loaded
    assert "'admin'" not in loaded and "'consumer'" not in loaded


def test_the_rest_of_the_package_is_there_for_whoever_asks_for_it():
    printed = run_python(
        "from plugins.common.kafka_producer_import import producer_class\n"
        "producer = producer_class()\n"
        "import kafka\n"
        "from kafka import KafkaConsumer, KafkaProducer\n"
        "print(KafkaProducer is producer, KafkaConsumer.__name__, kafka.__version__ != '')\n"
        "print('KafkaAdminClient' in kafka.__all__, 'KafkaAdminClient' in dir(kafka))\n"
    )
    assert printed == ["True", "KafkaConsumer", "True", "True", "True"]


def test_a_package_imported_whole_before_is_used_as_it_is():
    printed = run_python(
        "import kafka\n"
        "from plugins.common.kafka_producer_import import producer_class\n"
        "print(producer_class() is kafka.KafkaProducer)\n"
    )
    assert printed == ["True"]
