"""`agent sink …`: print or store the metrics of a Kafka topic; `lag` and `reset` of its group.

    agent sink --brokers 127.0.0.1:9092 --topic metrics [--group NAME] [--from-beginning]
               [--format line|json|table] [--print-key [--key-separator SEP]]
               [--max-messages N] [--timeout-ms MS] [--data-format influx|json]
               [--store sqlite:PATH | --store postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME]
               [--workers N]
    agent sink -config conf/sink.toml [flags that override the file]
    agent sink lag --brokers B --group NAME
    agent sink reset --brokers B --group NAME (--to-earliest | --to-latest | --to-offset N)
               [--topic T[:P[,P…]]]… [--dry-run]

Flags take one dash or two, as the agent's own (and the seed's `-group testgroup`).
A mistake in a flag or the config is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.errors import UsageError
from agent.flags import FlagParser, add_flag
from agent.options import warn_ignored

if TYPE_CHECKING:
    from agent.sink.settings import SinkSettings

PROG = "agent sink"


def _common(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "config", metavar="FILE", help="sink configuration file (TOML)")
    add_flag(
        parser,
        "brokers",
        "bootstrap-server",
        dest="brokers",
        metavar="HOST:PORT[,…]",
        action="append",
        help="Kafka brokers (default 127.0.0.1:9092)",
    )
    add_flag(parser, "group", metavar="NAME", help="consumer group")


def run_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog=PROG,
        description="Print or store the metrics of a Kafka topic, in a consumer group.",
        epilog="Subcommands: 'agent sink lag --group NAME', 'agent sink reset --group NAME …'.",
        allow_abbrev=False,
    )
    _common(parser)
    add_flag(parser, "topic", metavar="NAME", action="append", help="topic to read (repeatable)")
    add_flag(
        parser,
        "from-beginning",
        action="store_true",
        default=None,
        help="without committed offsets, start at the oldest record (else at the end)",
    )
    add_flag(
        parser, "format", choices=["line", "json", "table"], help="how to print (default line)"
    )
    add_flag(
        parser,
        "print-key",
        action="store_true",
        default=None,
        help="print each record's key (or null) before the metric",
    )
    add_flag(parser, "key-separator", metavar="SEP", help="between key and metric (default tab)")
    add_flag(parser, "max-messages", type=int, metavar="N", help="exit after N records")
    add_flag(parser, "timeout-ms", type=int, metavar="MS", help="exit when nothing arrives for MS")
    add_flag(parser, "data-format", choices=["influx", "json"], help="what the topic holds")
    add_flag(
        parser,
        "store",
        metavar="URL",
        help="store metrics once each: sqlite:PATH, or postgresql://USER@HOST:PORT/DBNAME",
    )
    add_flag(
        parser,
        "workers",
        type=int,
        metavar="N",
        help="consumer processes in the group on this machine (default 1)",
    )
    add_flag(parser, "batch-size", type=int, metavar="N", help="metrics per store transaction")
    add_flag(
        parser, "flush-interval", metavar="DURATION", help='longest wait before storing ("200ms")'
    )
    add_flag(parser, "client-id", metavar="ID", help="Kafka client id")
    add_flag(parser, "debug", action="store_true", default=None, help="log each batch")
    add_flag(parser, "quiet", action="store_true", default=None, help="log errors only")
    return parser


def lag_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog=f"{PROG} lag",
        description="Per partition: the group's committed offset, the log-end offset and the lag, "
        "as kafka-consumer-groups --describe prints them.",
        allow_abbrev=False,
    )
    _common(parser)
    return parser


def reset_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog=f"{PROG} reset",
        description="Move a consumer group's committed offsets (the group must be inactive).",
        allow_abbrev=False,
    )
    _common(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("-to-earliest", "--to-earliest", action="store_true")
    target.add_argument("-to-latest", "--to-latest", action="store_true")
    target.add_argument("-to-offset", "--to-offset", type=int, metavar="N")
    add_flag(
        parser,
        "topic",
        metavar="T[:P[,P…]]",
        action="append",
        help="topic, or some of its partitions (default: every topic the group has offsets for)",
    )
    add_flag(parser, "dry-run", action="store_true", help="print the new offsets, change nothing")
    return parser


def _split(values: list[str] | None) -> list[str] | None:
    """`--topic a,b --topic c` → [a, b, c]."""
    if values is None:
        return None
    return [part for value in values for part in value.split(",") if part]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line, as settings keys."""
    given = {k: v for k, v in vars(args).items() if v is not None and k != "config"}
    if "brokers" in given:
        given["brokers"] = _split(given["brokers"])
    if "topic" in given:
        given["topics"] = _split(given.pop("topic"))
        given["topic"] = ""
    return given


def run(argv: Sequence[str]) -> int:
    from agent.sink.consumer import Sink
    from agent.sink.decoder import RecordDecoder
    from agent.sink.printer import make_printer
    from agent.sink.settings import load
    from agent.sink.store import Store, open_store

    args = run_parser().parse_args(argv)
    settings = load(args.config, _overrides(args))
    if not settings.topics:
        raise UsageError("no topic: pass --topic NAME (or topics = [...] in the config file)")
    logs.setup(debug=settings.debug, quiet=settings.quiet, logfile=settings.logfile)
    warn_ignored(settings.ignored_options, logging.getLogger("sink"))
    if settings.workers > 1:
        from agent.sink.workers import Workers

        return Workers(argv, settings.workers).run()
    try:
        decoder = RecordDecoder(
            settings.data_format,
            settings.influx_timestamp_precision,
            settings.json_timestamp_units,
            # A sink that only stores needs no Python metrics: records are read into points.
            into_points=bool(settings.store) and not settings.prints,
        )
    except ValueError as error:  # a parser's own check of its options
        raise UsageError(str(error)) from None
    stores: list[Store] = []
    if settings.store:
        # Opening a store may wait for its server; SIGTERM meanwhile ends the sink cleanly.
        previous = signal.signal(signal.SIGTERM, _stop_while_starting)
        try:
            stores.append(open_store(settings.store))
        finally:
            signal.signal(signal.SIGTERM, previous)
    if settings.prints:
        stores.append(
            make_printer(
                sys.stdout, settings.print_format, settings.print_key, settings.key_separator
            )
        )
    sink = Sink(settings, stores, decoder)
    sink.install_signal_handlers()
    try:
        return sink.run()
    finally:
        sink.close()


class StoppedWhileStarting(Exception):
    """SIGTERM came before the sink began consuming: nothing was read, nothing is lost."""


def _stop_while_starting(signum: int, frame: Any) -> None:
    raise StoppedWhileStarting


def _group_settings(args: argparse.Namespace) -> SinkSettings:
    from agent.sink.settings import load

    overrides = {k: v for k, v in _overrides(args).items() if k in ("brokers", "group")}
    settings = load(args.config, overrides)
    if not settings.group:
        raise UsageError("no group: pass --group NAME")
    return settings


def lag(argv: Sequence[str]) -> int:
    from agent.sink.groups import format_lag, group_lag

    settings = _group_settings(lag_parser().parse_args(argv))
    security = settings.client_config()
    sys.stdout.write(format_lag(group_lag(settings.brokers, settings.group, security)))
    return 0


def reset(argv: Sequence[str]) -> int:
    from agent.sink.groups import format_reset, reset_offsets

    args = reset_parser().parse_args(argv)
    settings = _group_settings(args)
    if args.to_earliest:
        target: Any = ("earliest", 0)
    elif args.to_latest:
        target = ("latest", 0)
    else:
        target = ("offset", args.to_offset)
    offsets = reset_offsets(
        settings.brokers,
        settings.group,
        target,
        args.topic or [],
        settings.client_config(),
        execute=not args.dry_run,
    )
    sys.stdout.write(format_reset(settings.group, offsets))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from agent.sink.consumer import SinkError
    from agent.sink.groups import GroupError
    from agent.sink.settings import SettingsError
    from agent.sink.store import StoreError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "lag":
            return lag(argv[1:])
        if argv and argv[0] == "reset":
            return reset(argv[1:])
        return run(argv)
    except (UsageError, SettingsError, StoreError, GroupError, SinkError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except StoppedWhileStarting:
        print(f"{PROG}: stopped (SIGTERM) before reading anything", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        return 130
