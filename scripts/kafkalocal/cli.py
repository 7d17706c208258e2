"""The command line of scripts/kafka: verbs and their options."""

from __future__ import annotations

import argparse
import sys

from kafkalocal.failures import KafkaError
from kafkalocal.layout import HOST, KAFKA_VERSION, NODE_CHOICES, SECURE_PORT
from kafkalocal.plain import cmd_down, cmd_start_node, cmd_status, cmd_stop_node, cmd_up
from kafkalocal.secure import cmd_down_secure, cmd_status_secure, cmd_up_secure
from kafkalocal.tools import cmd_tool


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/kafka",
        description=f"Throwaway Apache Kafka {KAFKA_VERSION} (KRaft) on {HOST} for tests.",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = sub.add_parser("up", help="start Kafka (idempotent); prints the bootstrap address last")
    up.add_argument("--nodes", type=int, choices=NODE_CHOICES, default=None)
    secure_help = f"the separate SASL_SSL node ({HOST}:{SECURE_PORT}) only"
    up.add_argument("--secure", action="store_true", help=secure_help)
    down = sub.add_parser(
        "down", help="stop everything started here (the --secure node too) and delete the data"
    )
    down.add_argument("--secure", action="store_true", help=secure_help)
    for verb, text in (("stop-node", "stop node N, keep data"), ("start-node", "restart node N")):
        sub.add_parser(verb, help=text).add_argument("node", type=int, metavar="N")
    status = sub.add_parser("status", help="what is running; exit 0 if up, 3 if not")
    status.add_argument("--secure", action="store_true", help=secure_help + "; with its files")
    sub.add_parser("tool", help="run a Kafka tool: tool NAME ARGS...", add_help=False)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["tool"]:  # pass the tool's own arguments (even --help) through untouched
        return cmd_tool(argv[1:])
    args = parse_args(argv)
    if args.verb == "up":
        if args.secure:
            if args.nodes not in (None, 1):
                raise KafkaError("--secure is a single node: no --nodes 3", code=2)
            return cmd_up_secure()
        return cmd_up(args.nodes)
    if args.verb == "down":
        return cmd_down_secure() if args.secure else cmd_down()
    if args.verb == "stop-node":
        return cmd_stop_node(args.node)
    if args.verb == "start-node":
        return cmd_start_node(args.node)
    return cmd_status_secure() if args.secure else cmd_status()


def run(argv: list[str]) -> int:
    """main() with an expected failure as one line on stderr, and Ctrl-C as exit 130."""
    try:
        return main(argv)
    except KafkaError as exc:
        print(f"scripts/kafka: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("scripts/kafka: interrupted", file=sys.stderr)
        return 130
