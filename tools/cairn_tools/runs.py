"""`cairn runs [--status S] [--queue Q] [--thread T]`, `cairn run show RUN`, `cairn run cancel RUN`.

Connection options, --json, exit codes and one-line errors as the admin commands (admin/__init__.py).
JSON output (stable field names; times RFC 3339 UTC or null):
  runs        {"runs": [RUN], "next_page_token"}
  run show    RUN + {"input", "output", "attempts": [{"number", "worker_id", "status", "started_at", "ended_at",
              "recovered", "error"}]}
  run cancel  RUN
  RUN = {"run_id", "thread_id", "queue", "status", "created_at", "started_at", "ended_at", "attempt_count",
         "failed_attempt_count", "recovery_count", "cancel_requested", "worker_id", "lease_expires_at",
         "error": {"reason", "type", "message", "retryable"} | null, "metadata"}
"""

from __future__ import annotations

import argparse
from typing import Any

from .admin import _connection_options


def register(subparsers: Any) -> None:
    common = _connection_options()
    p = subparsers.add_parser("runs", parents=[common], help="list durable runs, newest first")
    p.add_argument("--status", action="append", default=None,
                   help="only runs in this status (PENDING, RUNNING, INTERRUPTED, COMPLETED, FAILED, CANCELLED); "
                        "repeat for several")
    p.add_argument("--queue", default="", help="only runs of this queue")
    p.add_argument("--thread", default="", help="only runs of this thread")
    p.add_argument("--page-size", type=int, default=0, help="results per page (0 = server default)")
    p.add_argument("--page-token", default="", help="continue from a previous page's next_page_token")
    p.add_argument("--all", action="store_true", help="follow next_page_token to the last page")
    p.set_defaults(func=_run("runs"))

    run = subparsers.add_parser("run", help="one durable run: show, cancel")
    sub = run.add_subparsers(dest="run_command", required=True)
    p = sub.add_parser("show", parents=[common], help="a run with its attempts, input, output and error")
    p.add_argument("run_id", metavar="RUN")
    p.set_defaults(func=_run("run show"))
    p = sub.add_parser("cancel", parents=[common], help="cancel a run (at once when no worker holds it)")
    p.add_argument("run_id", metavar="RUN")
    p.set_defaults(func=_run("run cancel"))


def _run(name: str) -> Any:
    def func(args: argparse.Namespace) -> int:
        from .admin import commands

        commands.COMMANDS.setdefault(name, _COMMANDS[name])
        return commands.run(name, args)

    return func


def _error(e: Any) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"reason": e.reason, "type": e.type, "message": e.message, "retryable": e.retryable}


def _doc(r: Any) -> dict[str, Any]:
    from .admin import output as out

    return {
        "run_id": r.run_id, "thread_id": r.thread_id, "queue": r.queue, "status": r.status,
        "created_at": out.iso_time(r.created_at), "started_at": out.iso_time(r.started_at),
        "ended_at": out.iso_time(r.ended_at), "attempt_count": r.attempt_count,
        "failed_attempt_count": r.failed_attempt_count, "recovery_count": r.recovery_count,
        "cancel_requested": r.cancel_requested, "worker_id": r.worker_id,
        "lease_expires_at": out.iso_time(r.lease_expires_at), "error": _error(r.error), "metadata": r.metadata,
    }


def _payload(raw: bytes, kind: str) -> Any:
    from .admin import output as out

    if not raw:
        return None
    ok, value = out.decode_json(raw, kind)
    return value if ok else f"<{len(raw)} bytes {kind or 'bytes'}>"


def _status(r: Any) -> str:
    return r.status + (" (cancel requested)" if r.cancel_requested and r.status == "RUNNING" else "")


def cmd_runs(args: argparse.Namespace) -> int:
    from .admin import commands as cmd
    from .admin import output as out

    if args.page_size < 0:
        raise cmd.UsageError("--page-size must be 0 (server default) or positive")
    docs: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    token = ""
    with cmd._client(args) as client:
        try:
            fetch = lambda tok: client.list_runs(  # noqa: E731
                status=args.status, queue=args.queue, thread_id=args.thread, page_size=args.page_size,
                page_token=tok)
            for page in cmd._pages(fetch, args):
                token = page.next_page_token
                for r in page.runs:
                    docs.append(_doc(r))
                    rows.append([r.run_id, _status(r), r.queue, r.thread_id, r.attempt_count,
                                 out.human_time(r.created_at), out.human_time(r.ended_at),
                                 (r.error.type or r.error.reason) if r.error else ""])
        except ValueError as exc:  # an unknown --status
            raise cmd.UsageError(str(exc)) from None
    if args.json:
        out.print_json({"runs": docs, "next_page_token": token})
        return cmd.EXIT_OK
    if not rows:
        cmd._err("no runs match")
    else:
        out.table(["RUN", "STATUS", "QUEUE", "THREAD", "ATTEMPTS", "CREATED", "ENDED", "ERROR"], rows)
    cmd._more_hint("runs", token)
    return cmd.EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from .admin import commands as cmd
    from .admin import output as out

    with cmd._client(args) as client:
        r = client.get_run(args.run_id)
    doc = _doc(r)
    doc["input"] = _payload(r.input, r.input_type)
    doc["output"] = _payload(r.output, r.output_type)
    doc["attempts"] = [
        {"number": a.number, "worker_id": a.worker_id, "status": a.status, "started_at": out.iso_time(a.started_at),
         "ended_at": out.iso_time(a.ended_at), "recovered": a.recovered, "error": _error(a.error)}
        for a in r.attempts
    ]
    if args.json:
        out.print_json(doc)
        return cmd.EXIT_OK
    for key in ("run_id", "status", "queue", "thread_id", "created_at", "started_at", "ended_at", "worker_id",
                "attempt_count", "failed_attempt_count", "recovery_count"):
        print(f"{key + ':':22}{out.dash(doc[key])}")
    if r.error:
        print(f"{'error:':22}{r.error.reason} {r.error.type}: {r.error.message}".rstrip())
    print(f"{'input:':22}{out.shorten(str(doc['input']), 100)}")
    print(f"{'output:':22}{out.shorten(str(doc['output']), 100)}")
    print("attempts:")
    out.table(
        ["#", "WORKER", "STATUS", "STARTED", "ENDED", "RECOVERED", "ERROR"],
        [[a.number, a.worker_id, a.status, out.human_time(a.started_at), out.human_time(a.ended_at),
          "yes" if a.recovered else "", f"{a.error.reason} {a.error.type}: {a.error.message}" if a.error else ""]
         for a in r.attempts],
    )
    return cmd.EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    from .admin import commands as cmd
    from .admin import output as out

    with cmd._client(args) as client:
        r = client.cancel_run(args.run_id)
    if args.json:
        out.print_json(_doc(r))
    else:
        print(f"{r.run_id}: {_status(r)}")
    return cmd.EXIT_OK


_COMMANDS = {"runs": cmd_runs, "run show": cmd_show, "run cancel": cmd_cancel}
