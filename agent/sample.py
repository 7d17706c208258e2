"""`agent config`: a complete sample configuration, assembled from every plugin's own sample."""

from __future__ import annotations

from agent import registry

HEADER = """\
# metrics-agent configuration
#
# The layout and option names are Telegraf's: a telegraf.conf that uses these plugins
# runs unchanged. Durations are written as "10s", "500ms", "1m".

# Global tags are added to every metric.
[global_tags]
  # dc = "us-east-1"
  # rack = "1a"

# Configuration for the agent itself
[agent]
  ## Default data collection interval for all inputs
  interval = "10s"
  ## Rounds collection interval to 'interval'
  ## ie, if interval="10s" then always collect on :00, :10, :20, etc.
  round_interval = true

  ## Outputs are written in batches of at most metric_batch_size metrics,
  ## and as soon as that many are waiting.
  metric_batch_size = 1000

  ## Maximum number of unwritten metrics buffered per output. When the buffer
  ## is full the oldest metrics are dropped (and counted).
  metric_buffer_limit = 10000

  ## Collection jitter is used to jitter the collection by a random amount.
  collection_jitter = "0s"

  ## Default flushing interval for all outputs, and a random jitter added to it.
  flush_interval = "10s"
  flush_jitter = "0s"

  ## Collected metrics are rounded to the precision specified as an interval
  ## ("1ns", "1us", "1ms", "1s"). By default ("0s") it follows the order of the
  ## collection interval, at most 1s.
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

  ## Override default hostname; if empty use os.Hostname()
  hostname = ""
  ## If set to true, do no set the "host" tag.
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
