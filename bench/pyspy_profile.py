#!/usr/bin/env python3
"""Profile `cairn serve` under load with py-spy and print its hotspots.

Starts redis, postgres and `cairn serve` (under `py-spy record`) like bench/run.py, drives one workload with
`cairn bench`, stops the server gracefully (so py-spy writes its samples), and prints the functions with the
most self time and the most inclusive time, and self time per source file.

    python bench/pyspy_profile.py --workload save [--duration 10] [--concurrency 32] [--native] [--keep FILE]
    python bench/pyspy_profile.py --summarize FILE     # an existing py-spy raw (collapsed stacks) file

Needs py-spy (pip install py-spy). py-spy samples only while the process is busy (no --idle), so the
percentages are shares of the server's CPU time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOADS = {
    "save": ["--mix", "save=1"],
    "load": ["--mix", "load=1"],
    "list": ["--mix", "list=1"],
    "mix": ["--mix", "save=70,load=25,list=5"],
    "stream": ["--stream", "--stream-window", "64"],
    "batch_load": ["--mix", "batch_load=1", "--batch-size", "50"],
    "put_writes": ["--mix", "put_writes=1"],
}
# Leaf frames that are waiting, not working (py-spy --native reports the blocking syscall as busy).
IDLE_LEAVES = {"epoll_wait", "epoll_pwait", "poll", "ppoll", "select", "pselect", "nanosleep", "clock_nanosleep",
               "pthread_cond_wait", "pthread_cond_timedwait", "__futex_abstimed_wait_common", "futex_wait"}
# Where a sample's time goes: the first frame from the leaf up that matches one of these (in this order).
CATEGORIES = [
    ("zstd (de)compression", ("zstd", "Codec.encode", "Codec.decode", "compressor.c", "decompressor.c")),
    ("hashes/checksums", ("blake2", "content_hash", "crc32", "hashlib")),
    ("gc", ("gc_collect",)),
    ("postgres client (asyncpg)", ("asyncpg/",)),
    ("redis client (redis-py)", ("redis/",)),
    ("json", ("json/", "_json.c")),
    ("protobuf", ("_message.abi3", "protobuf/", "json_format")),
    ("cairn_server code (and the asyncio work under it)", ("cairn_server/",)),
    ("grpc (cygrpc, aio)", ("grpc/", "cygrpc")),
]
_LINE = re.compile(r" \(([^()]*?)(?::\d+)?\)$")


def _frame(frame: str) -> str:
    """'func (path/file.py:123)' -> 'func (path/file.py)'."""
    return _LINE.sub(lambda m: f" ({m.group(1)})", frame.strip())


def _file(frame: str) -> str:
    m = re.search(r"\(([^()]*)\)$", frame)
    return m.group(1) if m else frame


def _category(frames: list[str]) -> str:
    for f in reversed(frames):
        for name, needles in CATEGORIES:
            if any(n in f for n in needles):
                return name
    return "asyncio loop, sockets, other"


def summarize(path: str, top: int = 25) -> str:
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    files: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    total = idle = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        if frames[-1].split(" (")[0] in IDLE_LEAVES:
            idle += count
            continue
        total += count
        self_t[frames[-1]] += count
        cats[_category(frames)] += count
        files[_file(frames[-1])] += count
        for f in set(frames):
            incl[f] += count
    if not total:
        return f"{path}: no samples"
    out = [f"{total:,} samples (CPU-busy only; {idle:,} more waiting in epoll/poll left out)", "",
           "by subsystem (innermost matching frame):"]
    out += [f"  {100 * c / total:5.1f}%  {k}" for k, c in cats.most_common()]
    out += ["", f"top {top} by self time:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in self_t.most_common(top)]
    out += ["", f"top {top} by inclusive time:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in incl.most_common(top)]
    out += ["", "self time by file:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in files.most_common(15)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="save")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second (200)")
    p.add_argument("--native", action="store_true", help="include C frames (grpc core, zstd, asyncpg protocol)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--keep", metavar="FILE", help="also keep py-spy's raw output here")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG", help="extra `cairn serve` argument")
    p.add_argument("--summarize", metavar="FILE", help="only summarize an existing py-spy raw file")
    args = p.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize, args.top), flush=True)
        return 0
    if not shutil.which("py-spy"):
        print("pyspy_profile.py needs py-spy: pip install py-spy", file=sys.stderr)
        return 2

    from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

    raw = args.keep or tempfile.mktemp(prefix="cairn-pyspy-", suffix=".txt")
    spy = ["py-spy", "record", "--format", "raw", "--rate", str(args.rate), "-o", raw]
    if args.native:
        spy.append("--native")
    with RedisServer() as redis, PostgresServer(synchronous_commit=True) as pg:
        dsn = pg.create_database("cairn_profile")
        server = CairnProcess("--postgres-dsn", dsn, "--redis-url", redis.url, "--log-level", "WARNING",
                             *args.server_arg, command=[*spy, "--", sys.executable, "-m", "cairn_server.cli"])
        with server:
            bench = [sys.executable, "-m", "cairn_server.cli", "bench", "--target", server.target, "--quiet",
                     "--duration", str(args.duration), "--concurrency", str(args.concurrency),
                     *WORKLOADS[args.workload]]
            print("$ " + " ".join(bench[2:]), flush=True)
            subprocess.run(bench, check=False)
            # SIGTERM the server itself (py-spy's child) so it exits and py-spy writes its samples
            children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
            for child in children:
                os.kill(int(child), signal.SIGTERM)
            deadline = time.monotonic() + 60
            while server.running and time.monotonic() < deadline:
                time.sleep(0.2)
    print()
    print(summarize(raw, args.top))
    if not args.keep:
        os.unlink(raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
