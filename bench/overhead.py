"""Overhead of the running agent, beside collectd doing a similar job in the same run."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import broker, procstat, telegraf
from bench.context import AGENT, REPO, Context
from bench.progress import say
from bench.report import Figure

TITLE = "Overhead of the running agent"
MEANING = """
CPU seconds per minute (the time on a CPU of each thread of the process, in nanoseconds from
/proc/PID/task/TID/schedstat; from utime + stime in /proc/PID/stat, clock ticks of 10 ms,
if a thread started or ended during the window) and peak resident memory (VmHWM from
/proc/PID/status; MB = 2^20 bytes) of `agent -config C`
with the default config's plugins: cpu (per CPU and total), mem, system, disk, diskio, net,
swap, processes, kernel, and outputs.kafka (acks all, idempotent), `flush_interval` equal to
`interval`. The CPU figure is the steady state: counted over the measuring window, which
starts after a warm-up (two intervals plus 5 s: the first gathers, the Kafka connection);
the peak RSS covers the whole life of the process. Beside it, started at the same time,
collectd 5.12 (`collectd -f`, Debian package collectd-core) with its cpu (per CPU, per
state, percentages), memory and write_kafka plugins (JSON, `enable.idempotence=true`, which
implies acks all) to a topic of its own on the same broker, at the same interval. The
records each delivered during the run are counted with kcat, so the comparison is between
two programs that really deliver. collectd's cpu and memory plugins gather less than the
agent's nine inputs: the ratio compares the two default-ish setups, not equal work. What
limits them (measured in the agent's process, 2 cores, 73 processes): at 10 s, a round of the
nine gathers takes about 4 ms of CPU (processes, which reads every /proc/PID/stat, 0.75 ms of
it), the Kafka write of a round about 2 ms (kafka-python's producer and its network thread),
APScheduler 0.1 ms per job run. Gathers due together take turns: side by side in threads they
cost twice as much, handing the GIL over at every file read. The RSS is mostly code: the
Python interpreter 10 MB, ssl with libcrypto 4.5 MB and kafka-python's producer 12 MB (its
protocol schemas, and the snappy, zstd and lz4 codecs, 2.8 MB, which it imports whatever
compression_codec says), importlib.metadata 3 MB (APScheduler and crc32c import it), psutil
2 MB, and two things the agent never uses: kafka-python's admin client and consumer (1.9 MB;
the package's `__init__` imports them with the producer) and asyncio (1.5 MB; APScheduler
imports it for one function). Until 2026-12-02 the agent kept those two out by patching how
kafka-python and APScheduler were imported; that saved 3.0 MB of peak RSS with the seed's
telegraf.conf (36.9 MB with the patches, 39.9 MB without, VmHWM after 30 s against the local
broker) and 2.8 MB with the nine inputs above (38.9 MB, 41.7 MB), and nothing after start-up
(imports happen once, so the CPU figures do not move). The patches tied the agent to the
internals of the exact versions pinned and were removed: the memory is the price, and it
puts the nine-input figure above the old 40 MB target; the idle target that counts now is
CPU, at or below Telegraf's (below). Not loaded: the plugins the config does not use, sqlite3.
decimal (0.5 MB) is, by the influx serializer, for a float whose shortest form has an
exponent (a small inodes_used_percent).

*Seed config*: at interval 10s, in the same window, two more processes run the seed's
telegraf.conf (conf/examples/seed-telegraf.conf: cpu per CPU and total without the time_*
fields, mem, outputs.kafka with nothing set but the broker and a topic of each's own, so
each program's defaults: the agent's producer is idempotent, Telegraf's is not), the same
file for both: the agent, and Telegraf 1.37.2. Their CPU and peak RSS are counted as above;
the target compares the CPU. Each uses only a few clock ticks' worth in the window (one
tick is 0.005 CPU-s per minute over 120 s), which is why the threads' own nanosecond counts
are used: with ticks, one more or less moved the ratio by a third.
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
    threads_before = {name: procstat.thread_times(p.pid) for name, p in processes.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    usage = {}
    for name, process in processes.items():
        precise = procstat.thread_times(process.pid).seconds_since(threads_before[name])
        cpu = precise if precise is not None else procstat.cpu_seconds(process.pid) - before[name]
        peak = procstat.peak_rss_bytes(process.pid) / MB
        usage[name] = Usage(cpu / elapsed * 60, peak)
    return usage


@dataclass
class Contender:
    """One program measured in a run: how it is started and what it is called in figures."""

    name: str  # "agent", "collectd", "agent, seed config", "Telegraf, seed config"
    command: list[str]
    shown: str  # the command as the figures show it
    topic: str
    log: Path


SEED_CONFIG = REPO / "conf" / "examples" / "seed-telegraf.conf"
SEED_INTERVAL_S = 10  # the seed config's interval: the comparison with Telegraf runs at it
SEED_AGENT = "agent, seed config"
SEED_TELEGRAF = "Telegraf, seed config"
AGENT_SHOWN = (
    "agent -config C (cpu, mem, system, disk, diskio, net, swap, processes, kernel → kafka)"
)


def seed_config(ctx: Context, topic: str) -> str:
    """The seed's telegraf.conf (cpu per CPU and total, mem, outputs.kafka, interval 10s),
    pointed at the benchmark's broker and a topic of its own."""
    text = SEED_CONFIG.read_text()
    return text.replace("127.0.0.1:9092", ctx.bootstrap).replace("my-computer-metric", topic)


def contenders(ctx: Context, directory: Path, interval: int) -> list[Contender]:
    """The nine-input agent and collectd; at 10 s, also the agent and Telegraf with the seed's
    telegraf.conf, the same file for both."""
    at = f"{interval}s"
    agent_topic = broker.create_topic(ctx.bootstrap, f"overhead-agent-{at}")
    collectd_topic = broker.create_topic(ctx.bootstrap, f"overhead-collectd-{at}")
    (directory / "agent.toml").write_text(agent_config(ctx, agent_topic, interval))
    (directory / "collectd.conf").write_text(
        collectd_config(ctx, directory, collectd_topic, interval)
    )
    found = [
        Contender(
            "agent",
            [str(AGENT), "-config", str(directory / "agent.toml")],
            AGENT_SHOWN,
            agent_topic,
            directory / "agent.stderr",
        ),
        Contender(
            "collectd",
            ["/usr/sbin/collectd", "-f", "-C", str(directory / "collectd.conf")],
            "collectd -f -C C (cpu, memory → write_kafka)",
            collectd_topic,
            directory / "collectd.log",
        ),
    ]
    if interval != SEED_INTERVAL_S:
        return found
    seed_topic = broker.create_topic(ctx.bootstrap, "overhead-agent-seed")
    (directory / "seed-agent.conf").write_text(seed_config(ctx, seed_topic))
    found.append(
        Contender(
            SEED_AGENT,
            [str(AGENT), "-config", str(directory / "seed-agent.conf")],
            "agent -config seed-telegraf.conf (cpu, mem → kafka)",
            seed_topic,
            directory / "seed-agent.stderr",
        )
    )
    telegraf_found = telegraf.find()
    if isinstance(telegraf_found, telegraf.Telegraf):
        telegraf_topic = broker.create_topic(ctx.bootstrap, "overhead-telegraf-seed")
        (directory / "seed-telegraf.conf").write_text(seed_config(ctx, telegraf_topic))
        found.append(
            Contender(
                SEED_TELEGRAF,
                [str(telegraf_found.path), "--config", str(directory / "seed-telegraf.conf")],
                f"telegraf --config seed-telegraf.conf (cpu, mem → kafka; {telegraf_found.name})",
                telegraf_topic,
                directory / "seed-telegraf.log",
            )
        )
    return found


def run_interval(ctx: Context, interval: int, seconds: float) -> list[Figure]:
    directory = ctx.scratch(f"overhead-{interval}s")
    started = contenders(ctx, directory, interval)
    warmup_s = 2 * interval + 5
    names = ", ".join(contender.name for contender in started)
    say(f"overhead: {names} at interval {interval}s: {warmup_s}s warm-up, {seconds:g}s")
    processes: dict[str, subprocess.Popen] = {}
    try:
        for contender in started:
            with open(contender.log, "wb") as log:
                processes[contender.name] = subprocess.Popen(
                    contender.command, stdout=log, stderr=subprocess.STDOUT
                )
        usage = measure(processes, warmup_s, seconds)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(60)
    at = f"interval {interval}s"
    count = "kcat -C -b BROKER -t TOPIC -o beginning -e -q -f '%p %o\\n' | wc -l"
    figures = []
    for contender in started:
        delivered = broker.count_records(ctx.bootstrap, contender.topic)
        if delivered == 0:
            raise RuntimeError(
                f"{contender.name} delivered nothing to Kafka:\n{contender.log.read_text()[-2000:]}"
            )
        name, used = contender.name, usage[contender.name]
        figures += [
            Figure(f"{name} CPU, {at}", used.cpu_s_per_min, "CPU-s/min", contender.shown),
            Figure(f"{name} peak RSS, {at}", used.peak_rss_mb, "MB", contender.shown),
            Figure(f"{name} records delivered, {at}", delivered, "records", count),
        ]
    agent, collectd = usage["agent"], usage["collectd"]
    figures += [
        Figure(
            f"agent / collectd CPU, {at}", agent.cpu_s_per_min / collectd.cpu_s_per_min, "×", ""
        ),
        Figure(f"agent / collectd RSS, {at}", agent.peak_rss_mb / collectd.peak_rss_mb, "×", ""),
    ]
    if interval == SEED_INTERVAL_S and SEED_TELEGRAF not in usage:
        reason = telegraf.find()
        note = reason.reason if isinstance(reason, telegraf.Missing) else ""
        figures.append(Figure(f"{SEED_TELEGRAF} CPU, {at}", None, "CPU-s/min", "", note))
    return figures


def run(ctx: Context) -> tuple[str, list[Figure]]:
    seconds = ctx.pick(120.0, 20.0)
    figures = run_interval(ctx, 10, seconds) + run_interval(ctx, 1, seconds)
    return f"{seconds:g} s measured per interval, after the warm-up", figures
