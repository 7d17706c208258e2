"""Kafka's command-line tools by the names of a release's bin/*.sh, and kafka-storage format."""

from __future__ import annotations

import os
import subprocess
import sys

from kafkalocal.broker_config import prepare_support_files
from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import TOOLS_LOG4J
from kafkalocal.maven import classpath
from kafkalocal.processes import captured, find_java

# Same names and classes as the bin/*.sh scripts of a Kafka 4.1 release.
TOOLS: dict[str, str] = {
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-configs": "kafka.admin.ConfigCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-dump-log": "kafka.tools.DumpLogSegments",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-storage": "kafka.tools.StorageTool",
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
}
PERF_TOOLS = {"kafka-producer-perf-test", "kafka-consumer-perf-test"}


def tool_java_opts(heap: str, name: str) -> list[str]:
    opts = [f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]
    if name not in PERF_TOOLS:
        opts.append("-XX:TieredStopAtLevel=1")  # short-lived CLI: start fast, peak speed irrelevant
    return [*opts, f"-Dlog4j2.configurationFile={TOOLS_LOG4J}"]


def storage_format_command(java: str, cp: str, cluster_id: str, config: str) -> list[str]:
    """kafka-storage format of one node's log dir with the cluster id."""
    cmd = [java, *tool_java_opts("256m", "kafka-storage"), "-cp", cp, TOOLS["kafka-storage"]]
    return [*cmd, "format", "-t", cluster_id, "-c", config]


def format_storage(java: str, cp: str, cluster_id: str, configs: dict[int, str]) -> None:
    """kafka-storage format for every node at once (node id -> its server.properties): one
    JVM each, run in parallel."""
    procs = []
    for node_id, config in configs.items():
        cmd = storage_format_command(java, cp, cluster_id, config)
        procs.append((node_id, subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **captured())))
    for node_id, proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            for line in out.strip().splitlines()[-10:]:
                info(f"  kafka-storage: {line}")
            raise KafkaError(f"formatting node {node_id}'s log dir failed")


def cmd_tool(argv: list[str]) -> int:
    known = "known tools: " + ", ".join(sorted(TOOLS))
    if not argv or argv[0] in ("-h", "--help"):
        info("usage: scripts/kafka tool NAME [ARGS...]   (same arguments as bin/NAME.sh)")
        info(known)
        return 0 if argv else 2
    name = argv[0].removesuffix(".sh")
    if name not in TOOLS:
        raise KafkaError(f"unknown tool {argv[0]!r}; {known}", code=2)
    java = find_java()
    cp = classpath()
    prepare_support_files()
    cmd = [java, *tool_java_opts("256m", name), "-cp", cp, TOOLS[name], *argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(java, cmd)  # the tool gets our stdin/stdout/stderr and its exit code is ours
