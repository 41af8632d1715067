"""Admin subcommands of `cairn`: threads, history, show, delete, clear, copy, prune, delete-runs, health.

They talk to a running server through the Python client (cairn_client), so they
work against any deployment: `--target host:port` or `--target unix:/path`
(default $CAIRN_TARGET, else 127.0.0.1:50051), `--token` (default $CAIRN_TOKEN),
`--tls-ca PEM` (default $CAIRN_TLS_CA). Output is a human table unless `--json`
is given; the JSON field names are stable (see commands.py).

Exit codes: 0 success; 1 not found (a thread or checkpoint that does not exist: `show`, `history` of a
thread without checkpoints, `delete`/`clear` that found nothing to delete), any other error the server
returned, a server that could not be reached, `health` not SERVING, or a deletion not confirmed;
2 bad usage; 130 interrupted. The connection flags may come before the command (`cairn --json threads`).
Errors are printed as one line on stderr (`cairn: NOT_FOUND: ... [THREAD_EMPTY]`),
never as a traceback.

Nothing heavy is imported here: `register` runs for every `cairn` invocation,
including `cairn serve`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

DEFAULT_TARGET = "127.0.0.1:50051"


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=os.environ.get("CAIRN_TARGET") or DEFAULT_TARGET,
        help="server address, host:port or unix:/path (env CAIRN_TARGET; default %(default)s)",
    )
    group.add_argument(
        "--token", default=os.environ.get("CAIRN_TOKEN") or None, help="bearer token (env CAIRN_TOKEN)"
    )
    group.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=os.environ.get("CAIRN_TLS_CA") or None,
        help="connect with TLS, trusting this CA certificate file (env CAIRN_TLS_CA)",
    )
    group.add_argument(
        "--tls-server-name", default=None, help="expected server name in its certificate (with --tls-ca)"
    )
    group.add_argument(
        "--timeout", type=float, default=None, help="seconds per call (default 10; 3 for health)"
    )
    common.add_argument("--json", action="store_true", help="print JSON (stable field names) instead of a table")
    return common


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-size", type=int, default=0, help="results per page (0 = server default)")
    parser.add_argument("--page-token", default="", help="continue from a previous page's next_page_token")
    parser.add_argument("--all", action="store_true", help="follow next_page_token to the last page")
    parser.add_argument(
        "--metadata-filter",
        metavar="JSON",
        default=None,
        help='JSON object; only results whose metadata contains it, e.g. \'{"source": "loop"}\'',
    )


def _run(name: str) -> Any:
    def func(args: argparse.Namespace) -> int:
        from .commands import run

        return run(name, args)

    return func


def register(subparsers: Any) -> None:
    common = _connection_options()

    p = subparsers.add_parser(
        "threads", parents=[common], help="list threads with status, checkpoint count and last update"
    )
    _paging(p)
    p.add_argument("--status", default=None, help="only threads whose head metadata has this `status`")
    p.set_defaults(func=_run("threads"))

    p = subparsers.add_parser("history", parents=[common], help="a thread's checkpoints, newest first")
    p.add_argument("thread_id", metavar="THREAD")
    p.add_argument("--namespace", default=None, help='only this namespace ("" = root); default: all')
    _paging(p)
    p.set_defaults(func=_run("history"))

    p = subparsers.add_parser(
        "show", parents=[common], help="one checkpoint (the head by default): state and pending writes"
    )
    p.add_argument("thread_id", metavar="THREAD")
    p.add_argument("checkpoint_id", metavar="CHECKPOINT", nargs="?", default=None)
    p.add_argument("--namespace", default="", help='namespace of the checkpoint (default "" = root)')
    p.add_argument("--raw", action="store_true", help="write only the state's bytes to stdout")
    p.set_defaults(func=_run("show"))

    p = subparsers.add_parser("delete", parents=[common], help="delete one checkpoint and its pending writes")
    p.add_argument("thread_id", metavar="THREAD")
    p.add_argument("checkpoint_id", metavar="CHECKPOINT")
    p.add_argument("--namespace", default="", help='namespace of the checkpoint (default "" = root)')
    p.set_defaults(func=_run("delete"))

    p = subparsers.add_parser(
        "clear", parents=[common], help="delete a whole thread (every namespace), or every thread with a prefix"
    )
    p.add_argument("thread_id", metavar="THREAD", nargs="?", default=None)
    p.add_argument("--prefix", default=None,
                   help="delete every thread whose id starts with PREFIX (asks first; -y when not on a terminal)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_run("clear"))

    p = subparsers.add_parser(
        "copy", parents=[common], help="copy a thread (ids, parents, pending writes) into an empty one: a fork"
    )
    p.add_argument("source_thread_id", metavar="SOURCE")
    p.add_argument("target_thread_id", metavar="TARGET")
    p.set_defaults(func=_run("copy"))

    p = subparsers.add_parser(
        "prune", parents=[common], help="keep the newest N checkpoints along each thread's head chain"
    )
    p.add_argument("thread_ids", metavar="THREAD", nargs="+")
    keep = p.add_mutually_exclusive_group(required=True)
    keep.add_argument("--keep", type=int, metavar="N", help="checkpoints to keep per thread (1 or more)")
    keep.add_argument("--all", action="store_true", help="delete every checkpoint of the threads")
    p.add_argument("-y", "--yes", action="store_true", help="with --all: do not ask for confirmation")
    p.set_defaults(func=_run("prune"))

    p = subparsers.add_parser(
        "delete-runs", parents=[common], help="delete the checkpoints whose metadata run_id is one of these"
    )
    p.add_argument("run_ids", metavar="RUN_ID", nargs="+")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation on a terminal")
    p.set_defaults(func=_run("delete-runs"))

    p = subparsers.add_parser(
        "health", parents=[common], help="grpc.health.v1 Check: exit 0 when SERVING, 1 otherwise"
    )
    p.add_argument("--service", default="", help="service name to check (default: the whole server)")
    p.set_defaults(func=_run("health"))
