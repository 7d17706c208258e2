"""Kafka's jars: resolved from Maven Central on first use, or taken from KAFKA_HOME."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import CACHE, JARS, JARS_MARKER, KAFKA_VERSION, POM
from kafkalocal.processes import find_java
from kafkalocal.state import locked


def pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def classpath() -> str:
    """`java -cp` value; resolves the jars with Maven on first use."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.*.jar")):
            raise KafkaError(f"KAFKA_HOME={kafka_home} has no libs/kafka_2.*.jar (unset it?)")
        return f"{libs}/*"
    if not jars_resolved():
        # `up` and `up --secure` hold different locks: do not resolve twice at once.
        with locked(CACHE / "jars.lock"):
            if not jars_resolved():
                resolve_jars()
    return f"{JARS}/*"


def jars_resolved() -> bool:
    return JARS_MARKER.is_file() and JARS_MARKER.read_text().strip() == pom_digest()


def resolve_jars() -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError(
            "mvn not found: install Maven (Debian/Ubuntu: apt-get install maven) "
            "or set KAFKA_HOME to an unpacked Kafka release"
        )
    find_java()  # Maven needs it too; give the clearer message first
    info(f"resolving Kafka {KAFKA_VERSION} jars with Maven (first run only)…")
    CACHE.mkdir(parents=True, exist_ok=True)
    # Into a fresh directory, then renamed: an interrupted download is never taken as done.
    staging = Path(tempfile.mkdtemp(prefix="jars-", dir=CACHE))
    cmd = [mvn, "-B", "-f", str(POM), "dependency:copy-dependencies"]
    cmd += [f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    started = time.monotonic()
    returncode, tail = run_maven_with_progress(cmd, started)
    jars = list(staging.glob("*.jar"))
    if returncode != 0 or not jars:
        shutil.rmtree(staging, ignore_errors=True)
        for line in tail:
            info(f"  mvn: {line}")
        raise KafkaError(f"Maven could not resolve the Kafka jars (exit {returncode})")
    (staging / JARS_MARKER.name).write_text(pom_digest() + "\n")
    shutil.rmtree(JARS, ignore_errors=True)
    os.replace(staging, JARS)
    info(f"resolved {len(jars)} jars into {JARS} in {time.monotonic() - started:.1f}s")


def run_maven_with_progress(cmd: list[str], started: float) -> tuple[int, list[str]]:
    """Run Maven, saying every few seconds how many files it has downloaded; its exit
    status and its last lines (for an error message)."""
    process = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    tail: list[str] = []
    downloaded, said_at = 0, time.monotonic()
    for line in process.stdout:
        tail = [*tail[-14:], line.rstrip()]
        if line.startswith("Downloaded from"):
            downloaded += 1
            if time.monotonic() - said_at >= 2:
                info(f"  … {downloaded} files downloaded ({time.monotonic() - started:.0f}s)")
                said_at = time.monotonic()
    return process.wait(), tail
