"""Overhead of the running agent, beside collectd doing a similar job in the same run."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import broker, procstat
from bench.context import AGENT, Context
from bench.progress import say
from bench.report import Figure

TITLE = "Overhead of the running agent"
MEANING = """
CPU seconds per minute (utime + stime of the process, all threads, from /proc/PID/stat) and
peak resident memory (VmHWM from /proc/PID/status; MB = 2^20 bytes) of `agent -config C`
with the default config's plugins: cpu (per CPU and total), mem, system, disk, diskio, net,
swap, processes, kernel, and outputs.kafka (acks all, idempotent), `flush_interval` equal to
`interval`. The CPU figure is the steady state: counted over the measuring window, which
starts after a warm-up (two intervals plus 5 s: the first gathers, the Kafka connection),
in clock ticks of 10 ms (over 120 s, a resolution of 0.005 CPU-s per minute); the peak
RSS covers the whole life of the process. Beside it, started at the same time,
collectd 5.12 (`collectd -f`, Debian package collectd-core) with its cpu (per CPU, per
state, percentages), memory and write_kafka plugins (JSON, `enable.idempotence=true`, which
implies acks all) to a topic of its own on the same broker, at the same interval. The
records each delivered during the run are counted with kcat, so the comparison is between
two programs that really deliver. collectd's cpu and memory plugins gather less than the
agent's nine inputs: the ratio compares the two default-ish setups, not equal work. What
limits them: at 10 s the inputs take most of the CPU (processes reads every /proc/PID/stat),
the idle Kafka producer about 0.01 CPU-s per minute. The RSS is mostly code: the Python
interpreter 10 MB, kafka-python 13 MB (importing its producer imports the whole package:
admin client, consumer, protocol schemas), APScheduler with importlib.metadata 5 MB,
psutil 3 MB; sqlite3 and decimal are no longer loaded by an agent that does not use them.
"""

MB = 2**20


@dataclass
class Usage:
    cpu_s_per_min: float
    peak_rss_mb: float


def agent_config(ctx: Context, topic: str, interval: int) -> str:
    inputs = "".join(
        f"\n[[inputs.{name}]]\n"
        for name in ("mem", "system", "disk", "diskio", "net", "swap", "processes", "kernel")
    )
    return f"""
[agent]
  interval = "{interval}s"
  flush_interval = "{interval}s"

[[outputs.kafka]]
  brokers = ["{ctx.bootstrap}"]
  topic = "{topic}"

[[inputs.cpu]]
  percpu = true
  totalcpu = true
{inputs}"""


def collectd_config(ctx: Context, directory: Path, topic: str, interval: int) -> str:
    return f"""
Hostname "bench"
FQDNLookup false
BaseDir "{directory}"
PIDFile "{directory}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval {interval}

LoadPlugin cpu
LoadPlugin memory
LoadPlugin write_kafka

<Plugin cpu>
  ReportByCpu true
  ReportByState true
  ValuesPercentage true
</Plugin>

<Plugin write_kafka>
  Property "metadata.broker.list" "{ctx.bootstrap}"
  Property "enable.idempotence" "true"
  <Topic "{topic}">
    Format JSON
  </Topic>
</Plugin>
"""


def measure(processes: dict[str, subprocess.Popen], warmup_s: float, seconds: float) -> dict:
    time.sleep(warmup_s)
    for name, process in processes.items():
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during the warm-up (status {process.returncode})")
    before = {name: procstat.cpu_seconds(p.pid) for name, p in processes.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    usage = {}
    for name, process in processes.items():
        cpu = procstat.cpu_seconds(process.pid) - before[name]
        peak = procstat.peak_rss_bytes(process.pid) / MB
        usage[name] = Usage(cpu / elapsed * 60, peak)
    return usage


def run_interval(ctx: Context, interval: int, seconds: float) -> list[Figure]:
    directory = ctx.scratch(f"overhead-{interval}s")
    agent_topic = broker.create_topic(ctx.bootstrap, f"overhead-agent-{interval}s")
    collectd_topic = broker.create_topic(ctx.bootstrap, f"overhead-collectd-{interval}s")
    (directory / "agent.toml").write_text(agent_config(ctx, agent_topic, interval))
    (directory / "collectd.conf").write_text(
        collectd_config(ctx, directory, collectd_topic, interval)
    )
    warmup_s = 2 * interval + 5
    say(f"overhead: agent and collectd at interval {interval}s: {warmup_s}s warm-up, {seconds:g}s")
    processes: dict[str, subprocess.Popen] = {}
    try:
        with open(directory / "agent.stderr", "wb") as agent_log:
            processes["agent"] = subprocess.Popen(
                [str(AGENT), "-config", str(directory / "agent.toml")], stderr=agent_log
            )
        with open(directory / "collectd.log", "wb") as collectd_log:
            processes["collectd"] = subprocess.Popen(
                ["/usr/sbin/collectd", "-f", "-C", str(directory / "collectd.conf")],
                stdout=collectd_log,
                stderr=subprocess.STDOUT,
            )
        usage = measure(processes, warmup_s, seconds)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(60)
    delivered = {
        "agent": broker.count_records(ctx.bootstrap, agent_topic),
        "collectd": broker.count_records(ctx.bootstrap, collectd_topic),
    }
    for name, count in delivered.items():
        if count == 0:
            log = directory / ("agent.stderr" if name == "agent" else "collectd.log")
            raise RuntimeError(f"{name} delivered nothing to Kafka:\n{log.read_text()[-2000:]}")
    agent, collectd = usage["agent"], usage["collectd"]
    agent_command = (
        "agent -config C (cpu, mem, system, disk, diskio, net, swap, processes, kernel → kafka)"
    )
    collectd_command = "collectd -f -C C (cpu, memory → write_kafka)"
    at = f"interval {interval}s"
    cpu_ratio = agent.cpu_s_per_min / collectd.cpu_s_per_min
    rss_ratio = agent.peak_rss_mb / collectd.peak_rss_mb
    count = "kcat -C -b BROKER -t TOPIC -o beginning -e -q -f '%p %o\\n' | wc -l"
    return [
        Figure(f"agent CPU, {at}", agent.cpu_s_per_min, "CPU-s/min", agent_command),
        Figure(f"collectd CPU, {at}", collectd.cpu_s_per_min, "CPU-s/min", collectd_command),
        Figure(f"agent / collectd CPU, {at}", cpu_ratio, "×", ""),
        Figure(f"agent peak RSS, {at}", agent.peak_rss_mb, "MB", agent_command),
        Figure(f"collectd peak RSS, {at}", collectd.peak_rss_mb, "MB", collectd_command),
        Figure(f"agent / collectd RSS, {at}", rss_ratio, "×", ""),
        Figure(f"agent records delivered, {at}", delivered["agent"], "records", count),
        Figure(f"collectd records delivered, {at}", delivered["collectd"], "records", count),
    ]


def run(ctx: Context) -> tuple[str, list[Figure]]:
    seconds = ctx.pick(120.0, 20.0)
    figures = run_interval(ctx, 10, seconds) + run_interval(ctx, 1, seconds)
    return f"{seconds:g} s measured per interval, after the warm-up", figures
