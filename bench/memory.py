"""Memory under attack: what a hostile client makes `cairn serve --max-state-bytes 1048576` hold.

Starts Redis, Postgres and a Cairn server on them (from this tree, or `--tree` another one, e.g. a `git worktree` of an
older commit), seeds one thread with a ~1 MiB head and `--list-states` more ~1 MiB checkpoints, then runs
each attack of issue 27 while sampling the server's RSS every 20 ms and while another client saves and loads
a small checkpoint every 50 ms (it must go on being answered):

    batch_load   BatchLoad asking `--batch` (1000) times for the 1 MiB head, `--concurrent` calls at once
    list         List(include_state=true, page_size=1000) across every thread, `--concurrent` at once
    stream       one SaveStream of `--stream-items` 1 MiB saves from a client that never reads an answer
    two_streams  two such streams at once

    python bench/memory.py                       # this tree, the issue's sizes
    git worktree add /tmp/base a0148c4 && python bench/memory.py --tree /tmp/base --concurrent 1

Prints one line per attack: RSS idle and peak (MiB), how the calls ended, and the other client's failures.
tests/test_memory.py runs the same attacks, smaller, and asserts the bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisServer

MIB = 1 << 20
STATE_BYTES = MIB - 4096  # a state just under the 1 MiB limit


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def big_state(i: int) -> bytes:
    """~1 MiB that zstd cannot shrink much (os.urandom), so the stored rows are as large as the states."""
    return os.urandom(STATE_BYTES)


def channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 1 << 30),
                                                  ("grpc.max_receive_message_length", 1 << 30)])


@dataclass
class Outcome:
    """What one attack did to the server."""

    name: str
    idle_mib: float
    peak_mib: float
    codes: Counter[str] = field(default_factory=Counter)
    probe_failures: list[str] = field(default_factory=list)
    probe_max_ms: float = 0.0
    probes: int = 0

    @property
    def above_idle_mib(self) -> float:
        return self.peak_mib - self.idle_mib

    def line(self) -> str:
        codes = ", ".join(f"{k} x{v}" for k, v in sorted(self.codes.items()))
        return (f"{self.name:>12}  RSS idle {self.idle_mib:7.0f} MiB  peak {self.peak_mib:7.0f} MiB "
                f"(+{self.above_idle_mib:6.0f})  calls: {codes}  other client: {self.probes} calls, "
                f"{len(self.probe_failures)} failed, slowest {self.probe_max_ms:.0f} ms")


class Sampler:
    """The server's peak RSS, and a second client's small saves and loads, while an attack runs."""

    def __init__(self, pid: int, target: str) -> None:
        self.pid, self.target = pid, target
        self.peak = 0.0
        self.failures: list[str] = []
        self.max_ms = 0.0
        self.probes = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rss), threading.Thread(target=self._probe)]

    def __enter__(self) -> Sampler:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _rss(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def _probe(self) -> None:
        stub = pb_grpc.CheckpointStoreStub(channel(self.target))
        thread = f"probe-{uuid.uuid4()}"
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, state=b'{"n":1}')), timeout=5)
                stub.Load(pb.LoadRequest(thread_id=thread), timeout=5)
            except grpc.RpcError as err:
                self.failures.append(f"{err.code().name}: {err.details()}")
            self.probes += 1
            self.max_ms = max(self.max_ms, 1000 * (time.monotonic() - started))
            time.sleep(0.05)


def _code(call: Callable[[], object]) -> str:
    try:
        call()
        return "OK"
    except grpc.RpcError as err:
        return err.code().name


def attack(name: str, server: CairnProcess, calls: list[Callable[[], object]], idle: float) -> Outcome:
    """Run `calls` at once against the server; its peak RSS and a second client's fate meanwhile. `idle` is
    the server's RSS before anything was stored."""
    out = Outcome(name, idle, idle)
    with Sampler(server.pid, server.target) as sampler, ThreadPoolExecutor(len(calls)) as pool:  # type: ignore[arg-type]
        for code in pool.map(_code, calls):
            out.codes[code] += 1
    out.peak_mib = max(sampler.peak, idle)
    out.probe_failures, out.probe_max_ms, out.probes = sampler.failures, sampler.max_ms, sampler.probes
    return out


def stream_requests(thread: str, items: int) -> Iterator[pb.SaveStreamRequest]:
    state = big_state(0)
    for i in range(items):
        yield pb.SaveStreamRequest(save=pb.SaveRequest(
            checkpoint=pb.Checkpoint(thread_id=thread, checkpoint_id=f"s{i:06d}", state=state)))


def unread_stream(target: str, items: int, timeout: float) -> Callable[[], object]:
    """A SaveStream of `items` 1 MiB saves whose answers are never read (the call ends at its deadline)."""
    def call() -> object:
        stub = pb_grpc.CheckpointStoreStub(channel(target))
        responses = stub.SaveStream(stream_requests(f"stream-{uuid.uuid4()}", items), timeout=timeout)
        deadline = time.monotonic() + timeout
        # Never read an answer; wait until the call ends (the server failed it, or its deadline passed).
        while responses.is_active() and time.monotonic() < deadline:
            time.sleep(0.1)
        if responses.code() != grpc.StatusCode.OK:
            raise _Ended(responses)
        return None
    return call


class _Ended(grpc.RpcError):
    def __init__(self, call: grpc.Call) -> None:
        self._call = call

    def code(self) -> grpc.StatusCode:
        return self._call.code()  # type: ignore[no-any-return]

    def details(self) -> str:
        return self._call.details() or ""  # type: ignore[no-any-return]


def seed(target: str, list_states: int) -> str:
    """One thread whose head is ~1 MiB, and `list_states` more ~1 MiB checkpoints; returns the thread id."""
    stub = pb_grpc.CheckpointStoreStub(channel(target))
    thread = f"big-{uuid.uuid4()}"
    for i in range(list_states):
        stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=f"{thread}-list", state=big_state(i))))
    stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, state=big_state(0))))
    return thread


def run_attacks(server: CairnProcess, *, batch: int, concurrent: int, list_states: int, stream_items: int,
                stream_timeout: float, only: tuple[str, ...] = ()) -> list[Outcome]:
    """Every attack, one after the other, against a started server (--max-state-bytes 1 MiB)."""
    target = server.target
    idle = rss_mib(server.pid)  # type: ignore[arg-type]
    thread = seed(target, list_states)
    stub = pb_grpc.CheckpointStoreStub(channel(target))
    attacks: dict[str, list[Callable[[], object]]] = {
        "batch_load": [
            lambda: stub.BatchLoad(pb.BatchLoadRequest(loads=[pb.LoadRequest(thread_id=thread)] * batch), timeout=120)
        ] * concurrent,
        "list": [
            lambda: stub.List(pb.ListRequest(include_state=True, page_size=1000), timeout=120)
        ] * concurrent,
        "stream": [unread_stream(target, stream_items, stream_timeout)],
        "two_streams": [unread_stream(target, stream_items, stream_timeout) for _ in range(2)],
    }
    return [attack(name, server, calls, idle) for name, calls in attacks.items() if not only or name in only]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", type=Path, default=ROOT, help="source tree of the server (default: this one)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--concurrent", type=int, default=3)
    p.add_argument("--list-states", type=int, default=40)
    p.add_argument("--stream-items", type=int, default=2000)
    p.add_argument("--stream-timeout", type=float, default=60.0)
    p.add_argument("--only", action="append", default=[], help="run only these attacks (repeatable)")
    p.add_argument("--no-redis", action="store_true", help="Postgres alone (the in-process hot cache)")
    p.add_argument("--server-arg", action="append", default=[], help="extra `cairn serve` flag")
    args = p.parse_args()
    env = {"PYTHONPATH": ":".join(f"{args.tree}/{d}" for d in ("server", "client_py", "api_py", "tools", ""))}
    with PostgresServer() as pg, contextlib.ExitStack() as stack:
        dsn = pg.create_database("memory")
        tiers = ["--postgres-dsn", dsn]
        if not args.no_redis:
            tiers += ["--redis-url", stack.enter_context(RedisServer()).url]
        with CairnProcess(*tiers, "--max-state-bytes", str(MIB), "--log-level", "WARNING",
                         *args.server_arg, env=env) as server:
            for out in run_attacks(server, batch=args.batch, concurrent=args.concurrent,
                                   list_states=args.list_states, stream_items=args.stream_items,
                                   stream_timeout=args.stream_timeout, only=tuple(args.only)):
                print(out.line(), flush=True)
                for failure in sorted(set(out.probe_failures))[:3]:
                    print(f"{'':>14}other client: {failure[:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
