"""The admin commands. Each returns an exit code; run() turns every failure into one stderr line.

JSON output (stable field names; times are RFC 3339 UTC strings or null):
  threads   {"threads": [{"thread_id", "status", "checkpoint_count", "updated_at", "head_checkpoint_id",
             "head_node_name", "head_next_nodes", "head_metadata"}], "next_page_token"}
  history   {"thread_id", "namespace", "checkpoints": [CHECKPOINT], "next_page_token"}
  show      CHECKPOINT + {"thread_id", "state_is_json", "state", "state_b64",
             "pending_writes": [{"task_id", "task_path", "idx", "channel", "value_type", "size_bytes",
             "value_is_json", "value", "value_b64"}]}
  delete    {"thread_id", "namespace", "checkpoint_id", "deleted"}
  clear     {"thread_id", "deleted_count"}; with --prefix {"prefix", "threads": [THREAD_ID], "deleted_count"}
  copy      {"source_thread_id", "target_thread_id", "copied_count"}
  prune     {"thread_ids", "keep_latest" (null with --all), "deleted_count"}
  delete-runs {"run_ids", "deleted_count"}
  health    {"target", "service", "status", "serving"}
  CHECKPOINT = {"checkpoint_id", "parent_checkpoint_id", "namespace", "sequence", "created_at", "node_name",
                "next_nodes", "state_type", "state_size_bytes", "stored_size_bytes", "metadata"}
`state`/`value` hold the decoded JSON when the bytes are JSON (else null; the bytes are always in *_b64).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import output as out

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
CLEAR_COUNT_LIMIT = 10_000  # `clear` counts at most this many checkpoints for its question


class UsageError(Exception):
    """A bad option value found after argparse (exit 2)."""


class Missing(Exception):
    """Nothing by that name: printed as `cairn: NOT_FOUND: ...`, exit 1 (as the server's NOT_FOUND is)."""


class NotConfirmed(Exception):
    """A deletion the user did not confirm (exit 1, nothing deleted)."""


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _tls(args: argparse.Namespace) -> Any:
    if not args.tls_ca:
        if args.tls_server_name:
            raise UsageError("--tls-server-name needs --tls-ca")
        return None
    from cairn_client import TLS

    try:
        ca = Path(args.tls_ca).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --tls-ca {args.tls_ca}: {exc.strerror or exc}") from None
    return TLS(root_certificates=ca, server_name_override=args.tls_server_name)


def _timeout(args: argparse.Namespace, default: float = 10.0) -> float:
    if args.timeout is None:
        return default
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    return float(args.timeout)


def _client(args: argparse.Namespace) -> Any:
    from cairn_client import CheckpointClient

    return CheckpointClient(args.target, token=args.token, tls=_tls(args), timeout_seconds=_timeout(args))


def _metadata_filter(args: argparse.Namespace) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    if args.metadata_filter:
        try:
            flt = json.loads(args.metadata_filter)
        except ValueError as exc:
            raise UsageError(f"--metadata-filter is not valid JSON: {exc}") from None
        if not isinstance(flt, dict):
            raise UsageError("--metadata-filter must be a JSON object, e.g. '{\"status\": \"done\"}'")
    if args.page_size < 0:
        raise UsageError("--page-size must be 0 (server default) or positive")
    return flt


def _pages(fetch: Callable[[str], Any], args: argparse.Namespace) -> Iterator[Any]:
    """The page at --page-token, then (with --all) every following page."""
    token = args.page_token
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not args.all or not token:
            return


def _more_hint(kind: str, token: str) -> None:
    if token:
        _err(f"more {kind}: repeat with --page-token {token} (or use --all)")


def _checkpoint_doc(cp: Any) -> dict[str, Any]:
    return {
        "checkpoint_id": cp.checkpoint_id,
        "parent_checkpoint_id": cp.parent_checkpoint_id,
        "namespace": cp.namespace,
        "sequence": cp.sequence,
        "created_at": out.iso_time(cp.created_at),
        "node_name": cp.node_name,
        "next_nodes": list(cp.next_nodes),
        "state_type": cp.state_type,
        "state_size_bytes": cp.state_size_bytes,
        "stored_size_bytes": cp.stored_size_bytes,
        "metadata": cp.metadata,
    }


# -- commands -------------------------------------------------------------------------------------


def cmd_threads(args: argparse.Namespace) -> int:
    flt = _metadata_filter(args)
    if args.status is not None:
        flt["status"] = args.status
    docs: list[dict[str, Any]] = []
    token = ""
    with _client(args) as client:
        fetch = lambda tok: client.list_threads(page_size=args.page_size, page_token=tok, metadata_filter=flt)  # noqa: E731
        for page in _pages(fetch, args):
            token = page.next_page_token
            for t in page.threads:
                status = t.head_metadata.get("status")
                docs.append(
                    {
                        "thread_id": t.thread_id,
                        "status": status if status is None or isinstance(status, str) else json.dumps(status),
                        "checkpoint_count": t.checkpoint_count,
                        "updated_at": out.iso_time(t.updated_at),
                        "head_checkpoint_id": t.head_checkpoint_id,
                        "head_node_name": t.head_node_name,
                        "head_next_nodes": list(t.head_next_nodes),
                        "head_metadata": t.head_metadata,
                    }
                )
    if args.json:
        out.print_json({"threads": docs, "next_page_token": token})
        return EXIT_OK
    if not docs:
        _err("no threads" + (" match" if flt else ""))
    else:
        out.table(
            ["THREAD", "STATUS", "CHECKPOINTS", "UPDATED", "NODE", "NEXT", "HEAD"],
            [
                [d["thread_id"], d["status"], d["checkpoint_count"], out.human_time(_parse_time(d["updated_at"])),
                 d["head_node_name"], d["head_next_nodes"], d["head_checkpoint_id"]]
                for d in docs
            ],
        )
    _more_hint("threads", token)
    return EXIT_OK


def _parse_time(text: str | None) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _require_thread(args: argparse.Namespace) -> None:
    if not args.thread_id:
        raise UsageError("THREAD must not be empty")


def cmd_history(args: argparse.Namespace) -> int:
    _require_thread(args)
    flt = _metadata_filter(args)
    cps: list[Any] = []
    token = ""
    with _client(args) as client:
        def fetch(tok: str) -> Any:
            return client.list(
                args.thread_id, namespace=args.namespace, metadata_filter=flt or None,
                page_size=args.page_size, page_token=tok,
            )

        for page in _pages(fetch, args):
            token = page.next_page_token
            cps.extend(page.checkpoints)
    if not cps and not args.page_token:
        raise Missing(f"thread {args.thread_id!r} has no checkpoints" + (" that match" if flt or args.namespace else ""))
    if args.json:
        out.print_json(
            {
                "thread_id": args.thread_id,
                "namespace": args.namespace,
                "checkpoints": [_checkpoint_doc(cp) for cp in cps],
                "next_page_token": token,
            }
        )
        return EXIT_OK
    if cps:
        extra = [k for k in ("step", "source", "status") if any(k in cp.metadata for cp in cps)]
        show_ns = any(cp.namespace for cp in cps)
        headers = ["CREATED", "SEQ", "CHECKPOINT", "PARENT", *(["NAMESPACE"] if show_ns else []), "NODE", "NEXT",
                   "SIZE", *(k.upper() for k in extra)]
        rows = [
            [out.human_time(cp.created_at), cp.sequence, cp.checkpoint_id, cp.parent_checkpoint_id,
             *([cp.namespace or "(root)"] if show_ns else []), cp.node_name, cp.next_nodes,
             out.human_size(cp.state_size_bytes), *(cp.metadata.get(k) for k in extra)]
            for cp in cps
        ]
        out.table(headers, rows)
    _more_hint("checkpoints", token)
    return EXIT_OK


def _write_doc(w: Any) -> dict[str, Any]:
    is_json, value = out.decode_json(w.value, w.value_type)
    return {
        "task_id": w.task_id,
        "task_path": w.task_path,
        "idx": w.idx,
        "channel": w.channel,
        "value_type": w.value_type,
        "size_bytes": len(w.value),
        "value_is_json": is_json,
        "value": value,
        "value_b64": base64.b64encode(w.value).decode(),
    }


def cmd_show(args: argparse.Namespace) -> int:
    _require_thread(args)
    with _client(args) as client:
        cp = client.load(args.thread_id, namespace=args.namespace, checkpoint_id=args.checkpoint_id)
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(cp.state)
        sys.stdout.buffer.flush()
        return EXIT_OK
    is_json, state = out.decode_json(cp.state, cp.state_type)
    if args.json:
        doc = {"thread_id": cp.thread_id, **_checkpoint_doc(cp)}
        doc.update(
            state_is_json=is_json,
            state=state,
            state_b64=base64.b64encode(cp.state).decode(),
            pending_writes=[_write_doc(w) for w in cp.pending_writes],
        )
        out.print_json(doc)
        return EXIT_OK
    w = sys.stdout.write
    fields = [
        ("thread", cp.thread_id),
        ("namespace", cp.namespace or "(root)"),
        ("checkpoint", cp.checkpoint_id),
        ("parent", cp.parent_checkpoint_id),
        ("sequence", cp.sequence),
        ("created", out.human_time(cp.created_at)),
        ("node", cp.node_name),
        ("next", cp.next_nodes),
        ("state", f"{out.human_size(cp.state_size_bytes or len(cp.state))} {cp.state_type or '(untyped)'}"
                  f" (stored {out.human_size(cp.stored_size_bytes)})"),
        ("metadata", json.dumps(cp.metadata, ensure_ascii=False, sort_keys=True)),
    ]
    for name, value in fields:
        w(f"{name:<11}{out.dash(value)}\n")
    w("\nstate:\n")
    if is_json:
        w(json.dumps(state, indent=2, ensure_ascii=False) + "\n")
    elif not cp.state:
        w("  (empty)\n")
    else:
        w(f"  {len(cp.state)} bytes of {cp.state_type or 'untyped'} data, not JSON; first bytes:\n")
        w(out.hexdump(cp.state) + "\n")
    w(f"\npending writes ({len(cp.pending_writes)}):\n")
    if cp.pending_writes:
        out.table(
            ["TASK", "PATH", "IDX", "CHANNEL", "TYPE", "SIZE", "VALUE"],
            [[pw.task_id, pw.task_path, pw.idx, pw.channel, pw.value_type, out.human_size(len(pw.value)),
              out.value_preview(pw.value, pw.value_type)] for pw in cp.pending_writes],
        )
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    _require_thread(args)
    with _client(args) as client:
        deleted = client.delete(args.thread_id, args.checkpoint_id, namespace=args.namespace)
    if args.json:
        out.print_json({"thread_id": args.thread_id, "namespace": args.namespace,
                        "checkpoint_id": args.checkpoint_id, "deleted": deleted})
    elif deleted:
        print(f"deleted checkpoint {args.checkpoint_id} of thread {args.thread_id}")
    if not deleted:
        raise Missing(f"no checkpoint {args.checkpoint_id} in thread {args.thread_id!r}; nothing deleted")
    return EXIT_OK


def _confirm(question: str) -> bool:
    sys.stderr.write(question + " [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _ask(args: argparse.Namespace, question: str, *, required: bool) -> None:
    """Asks on a terminal unless --yes. Off a terminal a `required` question needs --yes; others pass."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        if required:
            raise NotConfirmed(f"{question.rstrip('?')}: add --yes to confirm when not on a terminal")
        return
    if not _confirm(question):
        raise NotConfirmed("not confirmed; nothing deleted")


def cmd_clear(args: argparse.Namespace) -> int:
    if args.prefix is not None:
        if args.thread_id is not None:
            raise UsageError("give THREAD or --prefix, not both")
        return _clear_prefix(args)
    if args.thread_id is None:
        raise UsageError("give THREAD, or --prefix PREFIX to clear every thread it starts")
    _require_thread(args)
    with _client(args) as client:
        if not args.yes and sys.stdin.isatty():
            count = sum(1 for _ in client.iter_checkpoints(args.thread_id, page_size=1000,
                                                           limit=CLEAR_COUNT_LIMIT + 1))
            if count:
                shown = f"{CLEAR_COUNT_LIMIT}+" if count > CLEAR_COUNT_LIMIT else str(count)
                plural = "" if count == 1 else "s"
                _ask(args, f"Delete thread {args.thread_id!r}: {shown} checkpoint{plural} in every "
                     "namespace, with their pending writes?", required=False)
        deleted = client.clear(args.thread_id)
    if args.json:
        out.print_json({"thread_id": args.thread_id, "deleted_count": deleted})
    elif deleted:
        print(f"cleared thread {args.thread_id}: {deleted} checkpoint{'' if deleted == 1 else 's'} deleted")
    if not deleted:
        raise Missing(f"thread {args.thread_id!r} has no checkpoints; nothing deleted")
    return EXIT_OK


def _clear_prefix(args: argparse.Namespace) -> int:
    if not args.prefix:
        raise UsageError("--prefix must not be empty (it would clear every thread)")
    with _client(args) as client:
        threads = [t.thread_id for t in client.iter_threads(page_size=1000) if t.thread_id.startswith(args.prefix)]
        if not threads:
            raise Missing(f"no thread id starts with {args.prefix!r}; nothing deleted")
        examples = ", ".join(threads[:3]) + (", ..." if len(threads) > 3 else "")
        plural = "" if len(threads) == 1 else "s"
        _ask(args, f"Delete {len(threads)} thread{plural} whose id starts with {args.prefix!r} ({examples}), "
             "every checkpoint and pending write?", required=True)
        deleted = sum(client.clear(t) for t in threads)
    if args.json:
        out.print_json({"prefix": args.prefix, "threads": threads, "deleted_count": deleted})
    else:
        print(f"cleared {len(threads)} thread{plural} starting with {args.prefix}: "
              f"{deleted} checkpoint{'' if deleted == 1 else 's'} deleted")
    return EXIT_OK


def cmd_copy(args: argparse.Namespace) -> int:
    if not args.source_thread_id or not args.target_thread_id:
        raise UsageError("SOURCE and TARGET must not be empty")
    with _client(args) as client:
        copied = client.copy_thread(args.source_thread_id, args.target_thread_id)
    if not copied:
        raise Missing(f"thread {args.source_thread_id!r} has no checkpoints; nothing copied")
    if args.json:
        out.print_json({"source_thread_id": args.source_thread_id, "target_thread_id": args.target_thread_id,
                        "copied_count": copied})
    else:
        print(f"copied thread {args.source_thread_id} to {args.target_thread_id}: "
              f"{copied} checkpoint{'' if copied == 1 else 's'}")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    if any(not t for t in args.thread_ids):
        raise UsageError("THREAD must not be empty")
    if args.keep is not None and args.keep < 1:
        raise UsageError("--keep must be 1 or more (use --all to delete every checkpoint)")
    keep = None if args.all else args.keep
    if keep is None:
        _ask(args, f"Delete every checkpoint of {len(args.thread_ids)} thread(s) ({', '.join(args.thread_ids[:3])}"
             f"{', ...' if len(args.thread_ids) > 3 else ''})?", required=True)
    with _client(args) as client:
        deleted = client.prune(args.thread_ids, keep_latest=keep)
    if args.json:
        out.print_json({"thread_ids": args.thread_ids, "keep_latest": keep, "deleted_count": deleted})
    else:
        kept = "nothing" if keep is None else f"the newest {keep}"
        print(f"pruned {len(args.thread_ids)} thread(s), keeping {kept}: "
              f"{deleted} checkpoint{'' if deleted == 1 else 's'} deleted")
    return EXIT_OK


def cmd_delete_runs(args: argparse.Namespace) -> int:
    if any(not r for r in args.run_ids):
        raise UsageError("RUN_ID must not be empty")
    _ask(args, f"Delete every checkpoint whose metadata run_id is {', '.join(args.run_ids)}?", required=False)
    with _client(args) as client:
        deleted = client.delete_runs(args.run_ids)
    if args.json:
        out.print_json({"run_ids": args.run_ids, "deleted_count": deleted})
    elif deleted:
        print(f"deleted {deleted} checkpoint{'' if deleted == 1 else 's'} of run(s) {', '.join(args.run_ids)}")
    if not deleted:
        raise Missing(f"no checkpoint has run_id {', '.join(args.run_ids)}; nothing deleted")
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    import grpc

    from cairn_client import transport
    from cairn_client.errors import from_rpc_error

    from . import health

    timeout = _timeout(args, default=3.0)
    tls = _tls(args)
    target, creds, options = transport.channel_args(args.target, tls, args.token, 4 << 20)
    options = [o for o in options if o[0] not in ("grpc.service_config", "grpc.enable_retries")]
    channel = grpc.secure_channel(target, creds, options) if creds else grpc.insecure_channel(target, options)
    try:
        status = health.check(channel, args.service, timeout, transport.call_metadata(args.token, tls))
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
            raise from_rpc_error(exc) from None
        status = "SERVICE_UNKNOWN"  # the health protocol answers NOT_FOUND for a service it does not know
    finally:
        channel.close()
    serving = status == "SERVING"
    if args.json:
        out.print_json({"target": args.target, "service": args.service, "status": status, "serving": serving})
    else:
        print(status)
    return EXIT_OK if serving else EXIT_FAIL


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "threads": cmd_threads,
    "history": cmd_history,
    "show": cmd_show,
    "delete": cmd_delete,
    "clear": cmd_clear,
    "copy": cmd_copy,
    "prune": cmd_prune,
    "delete-runs": cmd_delete_runs,
    "health": cmd_health,
}


def run(name: str, args: argparse.Namespace) -> int:
    """Run one command; every failure becomes one line on stderr and a non-zero exit code."""
    from cairn_client import CairnError

    try:
        return COMMANDS[name](args)
    except CairnError as err:
        reason = f" [{err.reason}]" if err.reason else ""
        hint = f" (target {args.target})" if err.code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED") else ""
        _err(f"cairn: {err.code.name}: {_one_line(err.message)}{reason}{hint}")
        return EXIT_FAIL
    except Missing as err:
        _err(f"cairn: NOT_FOUND: {err}")
        return EXIT_FAIL
    except NotConfirmed as err:
        _err(f"cairn {name}: {err}")
        return EXIT_FAIL
    except UsageError as err:
        _err(f"cairn {name}: error: {err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("cairn: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`cairn threads | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAIL
    except Exception as err:  # noqa: BLE001 - the contract is one line, never a traceback
        _err(f"cairn: {type(err).__name__}: {_one_line(str(err))}")
        return EXIT_FAIL
