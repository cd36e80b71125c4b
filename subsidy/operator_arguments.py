"""The command-line arguments of the operators' commands that subsidy/messaging.py and
subsidy/outbox.py run (`subsidy dlq replay`, `subsidy outbox dead`), apart from the code that runs
them: the CLI builds its whole parser for every command, and importing those modules (Kafka,
Temporal and FastStream clients) cost ~1 s of CPU per `subsidy` call that never used them."""

from __future__ import annotations

import argparse


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `subsidy dlq replay` (on the CLI's existing `dlq` parser)."""
    parser.add_argument("--id", dest="ids", action="append", default=None, metavar="SCHEMA:ID",
                        help="replay: this dead letter (as `subsidy dlq list` shows it; repeatable)")
    parser.add_argument("--reason", help="replay: every dead letter with this reason not yet replayed")
    parser.add_argument("--schema", action="append", help="replay --reason: only this service's dead letters")
    parser.add_argument("--actor", help="replay: who does it, for the audit log (default: operator:$USER)")
    parser.add_argument("--dry-run", action="store_true", help="replay: judge only; publish, stamp and audit nothing")


def add_outbox_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `outbox dead list|requeue ID` (without `func`: the CLI sets it; subsidy.outbox.run_cli runs it)."""
    parser = subparsers.add_parser("outbox", help="the services' outboxes: rows set aside as unpublishable")
    what = parser.add_subparsers(dest="outbox_command", required=True)
    dead = what.add_parser("dead", help="rows that could not be published (too large, unknown topic, unserializable)")
    dead.add_argument("action", choices=["list", "requeue"])
    dead.add_argument("id", nargs="?", help="requeue: the row's id as listed, e.g. intake:12")
    dead.add_argument("--schema", action="append", help="list: only this service's outbox (repeatable)")
    dead.add_argument("--all", action="store_true", help="list: also the rows requeued already")
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--actor", default=None, help="requeue: who does it, for the audit log (default: $USER)")
    return parser
