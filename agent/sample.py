"""`agent config`: a complete sample configuration, assembled from every plugin's own sample."""

from __future__ import annotations

from agent import registry

HEADER = """\
# metrics-agent configuration
#
# The layout and option names are Telegraf's: a telegraf.conf that uses these plugins
# runs unchanged. Durations are written as "10s", "500ms", "1m".

# Tags added to every metric.
[global_tags]
  # dc = "us-east-1"
  # rack = "1a"

# Timing, batching and logging of the whole agent; an input or output may set
# its own interval, flush_interval and batch sizes.
[agent]
  ## How often each input gathers.
  interval = "10s"
  ## Gather on whole multiples of interval: with "10s", at :00, :10, :20 ...
  round_interval = true

  ## Most metrics an output sends in one write; it writes without waiting for
  ## flush_interval as soon as that many are buffered.
  metric_batch_size = 1000

  ## Metrics an output holds while it cannot write; past this many, the oldest
  ## are dropped (and counted).
  metric_buffer_limit = 10000

  ## Each gather starts up to this much later, at random, so that many agents
  ## do not all read at the same instant.
  collection_jitter = "0s"

  ## How often outputs write what they hold, and a random delay of up to
  ## flush_jitter before each write.
  flush_interval = "10s"
  flush_jitter = "0s"

  ## Timestamps are rounded to this: "1ns", "1us", "1ms" or "1s". "0s": 1s when
  ## interval is 1s or more, else the largest of 1ms, 1us, 1ns not above it.
  precision = "0s"

  ## Buffer strategy: "memory", or "disk" to keep unwritten metrics across restarts
  ## in buffer_directory.
  # buffer_strategy = "memory"
  # buffer_directory = ""

  ## Log at debug level, or only errors.
  debug = false
  quiet = false
  ## Log file name; empty means stderr (journald picks it up under systemd).
  logfile = ""

  ## The value of the host tag; empty: the machine's host name.
  hostname = ""
  ## No host tag at all.
  omit_hostname = false
"""


# What `telegraf config` turns on, among the plugins this agent has (Telegraf's default output,
# influxdb, is kafka here). The others are printed commented out, ready to be turned on.
ENABLED_BY_DEFAULT = {
    "inputs": {"cpu", "disk", "diskio", "kernel", "mem", "processes", "swap", "system"},
    "outputs": {"kafka"},
}


def render(input_names: set[str] | None = None, output_names: set[str] | None = None) -> str:
    """The sample config text. Without names, every plugin's sample: those on by default
    enabled, the rest commented out; with names, only the named plugins, enabled."""
    sections = [HEADER]
    for kind, names, title in (
        ("outputs", output_names, "OUTPUT PLUGINS"),
        ("inputs", input_names, "INPUT PLUGINS"),
    ):
        available = registry.plugins(kind)
        enabled = ENABLED_BY_DEFAULT[kind] if names is None else names
        chosen = [name for name in available if names is None or name in names]
        if not chosen:
            continue
        sections.append(f"\n{'#' * 78}\n#{title:^76}#\n{'#' * 78}\n")
        for name in chosen:
            sample = available[name].SAMPLE_CONFIG
            sections.append("\n" + (sample if name in enabled else commented_out(sample)))
    return "".join(sections)


def commented_out(sample: str) -> str:
    """A plugin's sample with every line behind "# ", as `telegraf config` prints the plugins
    it does not turn on (an empty line becomes "#", with no trailing space)."""
    return "".join(f"# {line}".rstrip() + "\n" for line in sample.splitlines())
