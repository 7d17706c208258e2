"""The `agent` command line, with Telegraf's flags: `agent -config FILE [--test|--once]`.

Subcommands: `agent config` prints a sample configuration, `agent version` the version.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence

from agent import __version__, logs
from agent.config import Config, load
from agent.errors import ConfigError, UsageError, one_line
from agent.flags import FlagParser, add_flag
from agent.options import warn_ignored

DEFAULT_CONFIG = "/etc/agent/agent.toml"
# Metrics are many small objects that live until delivered and hold no reference cycles.
# With Python's default thresholds (700, 10, 10) the collector went through every buffered
# metric over and over: 13 full collections, 3.4 s of the 13.7 s it took to send a file of
# 500,000 lines. With these, young objects are collected every 50,000 allocations and a full
# collection needs 25 million: none in that run, 0.3 s in all.
GC_THRESHOLDS = (50_000, 50, 10)
# outputs.kafka's sender thread takes the GIL back after each socket call and each
# compression (the sink's store thread after each statement), often while the main thread
# parses or serializes. Python makes a thread that wants the GIL wait up to the switch
# interval, 5 ms by default: with a request of a few milliseconds taking it four or five
# times, the sender waited more than it worked. 1 ms bounds that wait.
GIL_SWITCH_INTERVAL_S = 0.001


def run_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog="agent",
        description="Gather host metrics and send them to Kafka (a Telegraf-compatible agent).",
        epilog="Subcommands: 'agent config' prints a sample config; 'agent version'.",
        allow_abbrev=False,
    )
    add_flag(parser, "config", metavar="FILE", action="append", help="configuration file")
    add_flag(parser, "config-directory", metavar="DIR", help="also load every *.conf/*.toml in DIR")
    add_flag(
        parser, "test", action="store_true", help="gather once, print metrics, contact no output"
    )
    add_flag(parser, "once", action="store_true", help="gather once, write to the outputs, exit")
    add_flag(parser, "input-filter", metavar="A:B", help="run only these inputs")
    add_flag(parser, "output-filter", metavar="A:B", help="use only these outputs")
    add_flag(parser, "debug", action="store_true", help="log at debug level")
    add_flag(parser, "quiet", action="store_true", help="log errors only")
    add_flag(parser, "version", action="store_true", help="print the version and exit")
    add_flag(
        parser, "list-plugins", action="store_true", help="print the available plugins and exit"
    )
    return parser


def config_files(args: argparse.Namespace) -> list[str]:
    files = list(args.config or [])
    if not files:
        if not os.path.exists(DEFAULT_CONFIG):
            raise UsageError(f"no config file: pass -config FILE (default {DEFAULT_CONFIG})")
        files = [DEFAULT_CONFIG]
    if args.config_directory:
        directory = args.config_directory
        if not os.path.isdir(directory):
            raise UsageError(f"--config-directory {directory}: not a directory")
        files += sorted(
            os.path.join(directory, name)
            for name in os.listdir(directory)
            if name.endswith((".conf", ".toml"))
        )
    return files


def print_plugins() -> None:
    """--list-plugins: every registered plugin as `kind.name`, as `telegraf plugins` lists them."""
    from agent import registry

    for kind in registry.KINDS:
        for name in registry.plugins(kind):
            print(f"{kind}.{name}")


def print_sample_config(argv: Sequence[str]) -> int:
    """`agent config [--input-filter A:B] [--output-filter C]`, as `telegraf config`."""
    from agent import registry
    from agent.sample import render

    parser = FlagParser(prog="agent config", allow_abbrev=False)
    add_flag(parser, "input-filter", metavar="A:B", help="print only these inputs, enabled")
    add_flag(parser, "output-filter", metavar="A:B", help="print only these outputs, enabled")
    args = parser.parse_args(argv)
    chosen: dict[str, set[str] | None] = {}
    for kind, names in (("inputs", args.input_filter), ("outputs", args.output_filter)):
        chosen[kind] = set(names.split(":")) if names else None
        available = registry.plugins(kind)
        unknown = sorted((chosen[kind] or set()) - set(available))
        if unknown:
            named = ", ".join(f'"{kind}.{name}"' for name in unknown)
            raise UsageError(
                f"--{kind[:-1]}-filter: unknown plugin{'s' * (len(unknown) > 1)} {named} "
                f"(available: {', '.join(available)})"
            )
    sys.stdout.write(render(chosen["inputs"], chosen["outputs"]))
    return 0


def apply_plugin_filters(
    config: Config, inputs: str | None, outputs: str | None
) -> dict[str, list[str]]:
    """--input-filter / --output-filter keep only the named plugins of the config; returns
    the names of the inputs and outputs configured before (for the error when none is left)."""
    configured = {
        "inputs": [entry.name for entry in config.inputs],
        "outputs": [entry.name for entry in config.outputs],
    }
    if inputs:
        wanted = set(inputs.split(":"))
        config.inputs = [entry for entry in config.inputs if entry.name in wanted]
    if outputs:
        wanted = set(outputs.split(":"))
        config.outputs = [entry for entry in config.outputs if entry.name in wanted]
    return configured


def nothing_to_run(kind: str, configured: list[str], plugin_filter: str | None, files: str) -> str:
    """Why a config leaves no inputs (or outputs): none in the files, or a filter that
    matched none of those there are."""
    if configured and plugin_filter:
        names = ", ".join(dict.fromkeys(configured))
        return (
            f"--{kind[:-1]}-filter {plugin_filter} matched none of the {kind} "
            f"configured in {files} ({names})"
        )
    return f"no {kind} configured in {files}"


def run(argv: Sequence[str]) -> int:
    from agent.agent import Agent

    args = run_parser().parse_args(argv)
    if args.version:
        print(f"agent {__version__}")
        return 0
    if args.list_plugins:
        print_plugins()
        return 0

    def load_filtered() -> tuple[Config, dict[str, list[str]]]:
        config = load(config_files(args))
        return config, apply_plugin_filters(config, args.input_filter, args.output_filter)

    config, configured = load_filtered()
    files = ", ".join(config.files)
    settings = config.agent
    logs.setup(
        debug=args.debug or settings.debug,
        quiet=args.quiet or settings.quiet,
        logfile="" if args.test else settings.logfile,
    )
    warn_ignored(config.ignored_options, logging.getLogger("agent"))
    if not config.inputs:
        raise UsageError(nothing_to_run("inputs", configured["inputs"], args.input_filter, files))
    if args.test:
        return Agent(config).test()
    if not config.outputs:
        raise UsageError(
            nothing_to_run("outputs", configured["outputs"], args.output_filter, files)
        )
    if args.once:
        return Agent(config).once()
    from agent.daemon import run_daemon

    return run_daemon(lambda: load_filtered()[0], config)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        if argv and argv[0] == "version":
            print(f"agent {__version__}")
            return 0
        if argv and argv[0] == "config":
            return print_sample_config(argv[1:])
        if argv and argv[0] == "sink":
            from agent.sink.cli import main as sink_main

            return sink_main(argv[1:])
        return run(argv)
    except (ConfigError, UsageError) as error:
        print(f"agent: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the environment: an unwritable buffer directory, say
        print(f"agent: {one_line(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
