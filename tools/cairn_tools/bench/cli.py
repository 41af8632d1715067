"""`cairn bench`: options, the run (one process, or --procs children), and the output."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

DEFAULT_MIX = "save=70,load=25,list=5"

EPILOG = """\
examples:
  cairn bench --target 127.0.0.1:50051 --concurrency 32 --duration 10
  cairn bench --target unix:/run/cairn.sock --mix load=100 --concurrency 1 --json
  cairn bench --target HOST:443 --tls-ca ca.pem --token "$TOKEN" --mix save=100 --procs 2 --plot save.png
  cairn bench --stream --concurrency 4 --stream-window 64 --duration 10     # SaveStream checkpoints/s
  cairn bench --mix save=1 --rate 1000 --concurrency 256 --duration 30        # latency at 1,000 saves/s

operations (--mix NAME=WEIGHT,...):
  save        unary Save of a new checkpoint (client-side UUIDv7 id, parent = the thread's previous one)
  load        Load of a thread's head (hot: the run prefills every thread first)
  list        List of a thread, --list-page-size items, no state unless --list-include-state
  batch_load  BatchLoad of --batch-size thread heads (JSON adds items and itemsPerSecond)
  put_writes  PutWrites of one agent task's writes (its new message, ~1.3 KB, and a routing write) against a
              thread's latest checkpoint, new task id each call: what a graph stores per task between saves
  save_stream SaveStream: --concurrency streams, each with up to --stream-window saves in flight
              (same as --stream; it cannot be mixed with the unary operations)

--json prints one ghz-shaped object (latencies in nanoseconds): the overall figures at the top level,
one object per operation under "operations", ghz's histogram and endReason, and with --details every
measured call. The threads the run created (bench-<run id>-NNNNN) are deleted afterwards unless --keep.
Exit status: 0 when some call succeeded, 1 when none did or the run could not start, 2 for bad options.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="load-test a CheckpointStore server (ghz-style report, --json, --plot)",
        description="Load-test a CheckpointStore server: throughput and latency per operation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=main)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--target", default=os.environ.get("CAIRN_TARGET", "127.0.0.1:50051"),
                   help="host:port or unix:/path (default $CAIRN_TARGET or 127.0.0.1:50051)")
    g.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"), help="bearer token (default $CAIRN_TOKEN)")
    g.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    g.add_argument("--tls-ca", metavar="PEM", help="use TLS, trusting this CA file")
    g.add_argument("--tls-server-name", metavar="NAME", help="expected server name in its certificate")
    g.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="deadline of each call (30)")

    g = p.add_argument_group("load")
    g.add_argument("-c", "--concurrency", type=int, default=32,
                   help="calls in flight (streams with --stream), all processes together (32)")
    g.add_argument("--connections", type=int, default=1, help="gRPC connections per process (1)")
    how_long = g.add_mutually_exclusive_group()
    how_long.add_argument("-z", "--duration", type=float, default=None, metavar="SECONDS",
                          help="measure for this long (default 10)")
    how_long.add_argument("-n", "--requests", type=int, default=None, metavar="N",
                          help="measure this many operations instead (items with --stream)")
    g.add_argument("--rate", type=float, default=None, metavar="OPS",
                   help="open loop: start OPS operations per second in total, whether or not earlier ones "
                        "have answered; each latency counts from when its op was due, so queueing behind a "
                        "slow server shows (as wrk2 and pgbench --rate); --concurrency caps the calls in "
                        "flight (default: closed loop, each call right after the last)")
    g.add_argument("--warmup", type=float, default=1.0, metavar="SECONDS",
                   help="run this long before measuring; not counted (1)")
    g.add_argument("--mix", default=None, help=f"operation weights (default {DEFAULT_MIX}; see below)")
    g.add_argument("--stream", action="store_true", help="save over SaveStream instead (mix save_stream=100)")
    g.add_argument("--stream-window", type=int, default=32, metavar="N", help="saves in flight per stream (32)")
    g.add_argument("--batch-size", type=int, default=10, metavar="N", help="loads per BatchLoad (10)")
    g.add_argument("--list-page-size", type=int, default=10, metavar="N", help="page size of list (10)")
    g.add_argument("--list-include-state", action="store_true", help="list returns states too")
    g.add_argument("--compress-states", action="store_true",
                   help="zstd-compress each saved state in the client (STATE_ENCODING_ZSTD) and ask for zstd "
                        "states on reads, decompressing them, as CheckpointClient(compress_states=True) does")
    g.add_argument("--threads", type=int, default=100, metavar="N", help="thread ids the run uses (100)")
    g.add_argument("--prefill", type=int, default=None, metavar="K",
                   help="checkpoints saved to every thread before the run (default: 10 when list is in the "
                        "mix, 1 when load/batch_load/put_writes is, else 0)")
    g.add_argument("--procs", type=int, default=1, metavar="N",
                   help="client processes; concurrency, connections and requests are split between them (1)")
    g.add_argument("--seed", type=int, default=42, help="seed of the state generator and the op choice (42)")

    g = p.add_argument_group("states (choose one)")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--agent-states", action="store_true",
                     help="realistic chat-agent states with tool calls, 10-70 KB, mean ~37 KB (the default)")
    src.add_argument("--state-size", type=int, metavar="BYTES", help="JSON states of exactly this size")
    src.add_argument("--state-file", metavar="PATH",
                     help="states from a file: JSON Lines = one state per line, anything else = one state")
    g.add_argument("--state-pool", type=int, default=64, metavar="N", help="distinct states generated (64)")

    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print ghz-shaped JSON instead of the text summary")
    g.add_argument("--plot", metavar="FILE.png", help="write latency over time as a PNG (needs matplotlib)")
    g.add_argument("--details", action="store_true",
                   help="--json: add ghz's details, one {timestamp, latency, error, status} per measured call")
    g.add_argument("--keep", action="store_true",
                   help="keep the threads the run created (default: delete them when the run ends)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress line (also off when not a terminal)")


class UsageError(Exception):
    pass


def parse_mix(text: str) -> list[tuple[str, int]]:
    from .loadgen import OPERATIONS

    out: list[tuple[str, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.partition("=")
        name = name.strip().replace("-", "_")
        if name not in OPERATIONS:
            raise UsageError(f"--mix: unknown operation {name!r}; use {', '.join(OPERATIONS)}")
        try:
            w = int(weight) if sep else 1
        except ValueError:
            raise UsageError(f"--mix: weight of {name} must be a whole number, not {weight!r}") from None
        if w < 0:
            raise UsageError(f"--mix: weight of {name} is negative")
        if any(n == name for n, _ in out):
            raise UsageError(f"--mix: {name} given twice")
        out.append((name, w))
    if not any(w for _, w in out):
        raise UsageError("--mix: give at least one operation a positive weight, e.g. save=70,load=25,list=5")
    return [(n, w) for n, w in out if w > 0]


def _mix_of(args: argparse.Namespace) -> list[tuple[str, int]]:
    from .loadgen import SAVE, SAVE_STREAM

    if args.stream:
        if args.mix is None:
            return [(SAVE_STREAM, 100)]
        mix = parse_mix(args.mix)
        if any(n not in (SAVE, SAVE_STREAM) for n, _ in mix):
            raise UsageError("--stream measures SaveStream alone: drop the other operations from --mix "
                             "(or leave --mix out)")
        return [(SAVE_STREAM, 100)]
    mix = parse_mix(args.mix or DEFAULT_MIX)
    if any(n == SAVE_STREAM for n, _ in mix) and len(mix) > 1:
        raise UsageError("save_stream cannot be mixed with unary operations; run it on its own (--stream)")
    return mix


def _check(args: argparse.Namespace) -> None:
    for name in ("concurrency", "connections", "procs", "threads", "stream_window", "batch_size", "state_pool"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.list_page_size < 0:
        raise UsageError("--list-page-size must not be negative")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.requests is not None and args.requests < 1:
        raise UsageError("--requests must be at least 1")
    if args.warmup < 0:
        raise UsageError("--warmup must not be negative")
    if args.prefill is not None and args.prefill < 0:
        raise UsageError("--prefill must not be negative")
    if args.procs > args.concurrency:
        raise UsageError(f"--procs {args.procs} > --concurrency {args.concurrency}: every process needs a call in flight")
    if args.rate is not None and not args.rate > 0:
        raise UsageError("--rate must be a positive number of operations per second")
    if args.rate is not None and args.stream:
        raise UsageError("--rate paces unary operations; SaveStream (--stream) runs closed loop, drop --rate")
    if args.state_size is not None and args.state_size < 16:
        raise UsageError("--state-size must be at least 16 bytes")


def _states(args: argparse.Namespace):
    from . import states

    if args.state_file:
        try:
            src = states.file_states(args.state_file)
        except OSError as exc:
            raise UsageError(f"--state-file: {exc}") from None
        except ValueError as exc:
            raise UsageError(f"--state-file: {exc}") from None
        try:
            for s in src.states:
                json.loads(s)
            state_type = "json"
        except ValueError:
            state_type = "bytes"
        return src, state_type
    if args.state_size is not None:
        return states.fixed_states(args.state_size, min(args.state_pool, 16), args.seed), "json"
    return states.agent_states(args.state_pool, args.seed), "json"


def _split(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


class _Progress:
    """The live line on stderr: phase, elapsed, rate over the last half second, errors."""

    def __init__(self, warmup: float, duration: float | None, requests: int | None) -> None:
        self.warmup, self.duration, self.requests = warmup, duration, requests
        self.t0 = time.monotonic()
        self.last = (self.t0, 0)

    def line(self, count: int, errors: int, measuring: bool) -> str:
        now = time.monotonic()
        el = now - self.t0
        if not measuring:
            return f"\r\x1b[Kwarm-up {min(el, self.warmup):4.1f}/{self.warmup:g} s"
        prev_t, prev_n = self.last
        rate = (count - prev_n) / max(now - prev_t, 1e-6) if count >= prev_n else 0.0
        self.last = (now, count)
        m_el = max(el - self.warmup, 0.0)
        goal = f"{m_el:5.1f}/{self.duration:g} s" if self.duration else f"{count:,}/{self.requests:,}"
        return f"\r\x1b[K[{goal}] {count:,} ops  {rate:,.0f} ops/s  errors {errors:,}"

    @staticmethod
    def clear() -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def main(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        print(f"cairn bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncairn bench: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from . import loadgen, plot as plotting, report

    _check(args)
    mix = _mix_of(args)
    if args.plot and not plotting.available():
        print(f"cairn bench: {plotting.MISSING}", file=sys.stderr)
        return 2
    if args.duration is None and args.requests is None:
        args.duration = 10.0
    tls_ca = None
    if args.tls_ca:
        try:
            with open(args.tls_ca, "rb") as f:
                tls_ca = f.read()
        except OSError as exc:
            raise UsageError(f"--tls-ca: {exc}") from None
    source, state_type = _states(args)
    names = {n for n, _ in mix}
    prefill = args.prefill
    if prefill is None:
        prefill = 10 if "list" in names else 1 if names & {"load", "batch_load", "put_writes"} else 0
    elif prefill == 0 and "put_writes" in names:
        raise UsageError("put_writes writes against every thread's latest checkpoint: give --prefill 1 or more")
    run_id = uuid.uuid4().hex[:10]
    threads = [f"bench-{run_id}-{i:05d}" for i in range(args.threads)]
    base = loadgen.Plan(
        target=args.target, mix=mix, threads=threads, heads=[], states=source.states, state_type=state_type,
        token=args.token, tls=args.tls, tls_ca=tls_ca, tls_server_name=args.tls_server_name,
        concurrency=args.concurrency, connections=args.connections, duration=args.duration,
        requests=args.requests, warmup=args.warmup, seed=args.seed, total_workers=args.concurrency,
        stream_window=args.stream_window, batch_size=args.batch_size, list_page_size=args.list_page_size,
        list_include_state=args.list_include_state, timeout=args.timeout,
        record_samples=bool(args.plot or (args.details and args.json)),
        compress_states=args.compress_states, rate=args.rate,
    )
    show = not args.quiet and sys.stderr.isatty()
    try:
        return _measure(args, base, mix, prefill, source, show)
    finally:
        if not args.keep:
            _delete_threads(args, threads, tls_ca, show)


def _delete_threads(args: argparse.Namespace, threads: list[str], tls_ca: bytes | None, show: bool) -> None:
    """Clears every thread the run may have written (a few saves at most reach an unused id: Clear is cheap)."""
    import asyncio

    from cairn_client import TLS, AsyncCheckpointClient, CairnError

    async def run() -> int:
        tls = TLS(root_certificates=tls_ca, server_name_override=args.tls_server_name) if (args.tls or tls_ca) else None
        limit = asyncio.Semaphore(16)
        async with AsyncCheckpointClient(args.target, token=args.token, tls=tls, timeout_seconds=args.timeout) as c:
            async def clear(thread: str) -> int:
                async with limit:
                    return await c.clear(thread)

            return sum(await asyncio.gather(*(clear(t) for t in threads)))

    try:
        deleted = asyncio.run(run())
    except (CairnError, OSError) as exc:
        print(f"cairn bench: could not delete the run's threads bench-{threads[0][6:16]}-*: {exc}", file=sys.stderr)
        return
    if show:
        print(f"cairn bench: deleted the run's {len(threads)} threads ({deleted:,} checkpoints); --keep keeps them",
              file=sys.stderr)


def _measure(args: argparse.Namespace, base: Any, mix: list[tuple[str, int]], prefill: int, source: Any,
             show: bool) -> int:
    """Prefill, run, and print the report; returns the exit status."""
    import asyncio

    from . import loadgen, plot as plotting, report

    names = {n for n, _ in mix}
    try:
        if prefill:
            if show:
                sys.stderr.write(f"prefilling {len(base.threads)} threads x {prefill} checkpoints ...")
                sys.stderr.flush()
            base.heads = asyncio.run(loadgen.prefill(base, prefill, min(args.concurrency, 64)))
            if show:
                _Progress.clear()
        if args.procs == 1:
            results = [_run_here(base, show)]
        else:
            results = _run_children(base, args.procs, show)
    except loadgen.BenchError as exc:
        print(f"cairn bench: {exc}", file=sys.stderr)
        return 1
    merged = report.merge(results)
    options = {
        "target": args.target, "mix": ",".join(f"{n}={w}" for n, w in mix), "concurrency": args.concurrency,
        "connections": args.connections, "procs": args.procs, "duration": args.duration,
        "requests": args.requests, "warmup": args.warmup, "threads": args.threads, "prefill": prefill,
        "states": source.kind, "statePool": len(source.states), "meanStateBytes": round(source.mean_bytes),
        "seed": args.seed, "streamWindow": args.stream_window if "save_stream" in names else None,
        "batchSize": args.batch_size if "batch_load" in names else None,
        "listPageSize": args.list_page_size if "list" in names else None, "tls": bool(args.tls or base.tls_ca),
        "compressStates": args.compress_states, "rate": args.rate,
        "histogram": next(iter(merged.ops.values())).hist.kind if merged.ops else None,
        "keep": args.keep,
    }
    conns = args.connections * args.procs
    header = (
        f"cairn bench -> {args.target}: {args.concurrency} {'streams' if 'save_stream' in names else 'in flight'} "
        f"over {conns} connection{'s' if conns > 1 else ''}, {args.procs} process{'es' if args.procs > 1 else ''}, "
        f"{merged.seconds:.1f} s measured after {args.warmup:g} s warm-up"
    )
    if args.plot:
        plotting.plot(merged, args.plot, header)
    if args.json:
        print(json.dumps(report.to_json(
            merged, options, {"stateSource": source.description},
            end_reason="timeout" if args.duration else "normal", with_details=args.details,
        ), indent=2))
    else:
        print(report.to_text(merged, header, source.description))
        if args.plot:
            print(f"  plot: {args.plot}")
    total = merged.overall()
    return 0 if total.count > total.errors else 1


def _run_here(plan, show: bool) -> dict[str, Any]:
    import asyncio

    from .loadgen import LoadRunner

    progress = None
    if show:
        bar = _Progress(plan.warmup, plan.duration, plan.requests)

        async def progress(runner: LoadRunner) -> None:
            try:
                while True:
                    await asyncio.sleep(0.5)
                    n = sum(s.count for s in runner.stats.values()) if runner.measuring else 0
                    e = sum(s.errors for s in runner.stats.values()) if runner.measuring else 0
                    sys.stderr.write(bar.line(n, e, runner.measuring))
                    sys.stderr.flush()
            finally:
                _Progress.clear()

    return asyncio.run(LoadRunner(plan).run(progress))


def _run_children(base, procs: int, show: bool) -> list[dict[str, Any]]:
    import dataclasses
    import multiprocessing as mp
    import queue as queue_mod

    from .loadgen import BenchError, child_main

    ctx = mp.get_context("spawn")  # never fork a process that may hold gRPC state
    shared = ctx.Array("q", 2 * procs, lock=False)
    barrier = ctx.Barrier(procs + 1)
    results_q = ctx.Queue()
    children = []
    offset = 0
    for i in range(procs):
        conc = _split(base.concurrency, procs, i)
        plan = dataclasses.replace(
            base, proc_index=i, concurrency=conc, worker_offset=offset,
            requests=None if base.requests is None else max(1, _split(base.requests, procs, i)),
            seed=base.seed, rate=None if base.rate is None else base.rate * conc / base.concurrency,
        )
        offset += conc
        proc = ctx.Process(target=child_main, args=(plan, shared, barrier, results_q), daemon=True)
        proc.start()
        children.append(proc)
    results: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    try:
        try:
            barrier.wait(timeout=120)
        except Exception:  # noqa: BLE001 - a child failed before the start; its message follows
            pass
        bar = _Progress(base.warmup, base.duration, base.requests) if show else None
        deadline_started = time.monotonic()
        while len(results) + len(errors) < procs:
            try:
                idx, out, err = results_q.get(timeout=0.5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in children) and results_q.empty():
                    errors.append("a client process died without a result")
                    break
                if bar is not None:
                    measuring = time.monotonic() - deadline_started >= base.warmup
                    n = sum(shared[2 * i] for i in range(procs))
                    e = sum(shared[2 * i + 1] for i in range(procs))
                    sys.stderr.write(bar.line(n, e, measuring))
                    sys.stderr.flush()
                continue
            if err:
                errors.append(f"process {idx}: {err}")
            else:
                results[idx] = out
    finally:
        if show:
            _Progress.clear()
        for p in children:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    if errors:
        raise BenchError("; ".join(errors))
    return [results[i] for i in sorted(results)]
