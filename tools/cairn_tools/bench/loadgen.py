"""The load generator of one client process: grpc.aio channels, raw multicallables, worker coroutines.

One LoadRunner runs in one process (one event loop). `concurrency` workers each keep one call in flight (unary
ops) or one SaveStream with up to `stream_window` saves in flight; they are spread round-robin over
`connections` channels (separate TCP connections: each channel gets a local subchannel pool). Requests are
pre-encoded bytes (see wire.py); only small responses are parsed (SaveResponse, SaveStreamResponse,
BatchLoadResponse for its per-item errors); Load and List responses are counted, not decoded.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import gc
import json
import random
import resource
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import grpc

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn_client.transport import StateWire
from cairn_client.errors import DataLoss
from cairn_client import uuid7

from . import wire
from .hist import Histogram

SAVE, LOAD, LIST, BATCH_LOAD, SAVE_STREAM, PUT_WRITES = (
    "save", "load", "list", "batch_load", "save_stream", "put_writes"
)
OPERATIONS = (SAVE, LOAD, LIST, BATCH_LOAD, PUT_WRITES, SAVE_STREAM)
MAX_SAMPLES = 2_000_000  # per process, for --plot
LATE_NS = 1_000_000  # --rate: an op whose worker was busy until this long after it was due counts as late
MAX_ERROR_KEYS = 50

# ghz (Go) spells status codes as codes.Code.String() does.
_CODE_NAMES = [
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "Internal", "Unavailable", "DataLoss", "Unauthenticated",
]


def code_name(code: grpc.StatusCode | int | None) -> str:
    if code is None:
        return "Unknown"
    value = code if isinstance(code, int) else code.value[0]
    return _CODE_NAMES[value] if 0 <= value < len(_CODE_NAMES) else f"Code({value})"


class BenchError(Exception):
    """A run could not start or finish (cannot connect, prefill failed, ...): message for the user."""


@dataclass
class Plan:
    """Everything one client process needs; picklable (sent to --procs children)."""

    target: str
    mix: list[tuple[str, int]]
    threads: list[str]
    heads: list[str]
    states: list[bytes]
    state_type: str = "json"
    token: str | None = None
    tls: bool = False
    tls_ca: bytes | None = None
    tls_server_name: str | None = None
    concurrency: int = 32
    connections: int = 1
    duration: float | None = 10.0
    requests: int | None = None
    warmup: float = 1.0
    seed: int = 42
    proc_index: int = 0
    worker_offset: int = 0
    total_workers: int = 32
    stream_window: int = 32
    batch_size: int = 10
    list_page_size: int = 10
    list_include_state: bool = False
    timeout: float = 30.0
    record_samples: bool = False
    compress_states: bool = False  # zstd on the wire both ways (STATE_ENCODING_ZSTD), compressed per request
    rate: float | None = None  # this process's ops/s, open loop (--rate); None = each worker back to back


@dataclass
class OpStats:
    hist: Histogram = field(default_factory=Histogram)
    count: int = 0
    errors: int = 0
    status: dict[str, int] = field(default_factory=dict)
    error_dist: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    state_bytes: int = 0  # raw state bytes of successful saves that reported a stored size
    stored_bytes: int = 0
    items: int = 0  # BatchLoad: loads answered
    item_errors: int = 0

    def ok(self, ns: int) -> None:
        self.hist.record(ns)
        self.count += 1
        self.status["OK"] = self.status.get("OK", 0) + 1

    def fail(self, ns: int, code: str, message: str) -> None:
        self.hist.record(ns)
        self.count += 1
        self.errors += 1
        self.status[code] = self.status.get(code, 0) + 1
        self.add_error(message)

    def add_error(self, message: str) -> None:
        if message not in self.error_dist and len(self.error_dist) >= MAX_ERROR_KEYS:
            message = "(other errors)"
        self.error_dist[message] = self.error_dist.get(message, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "hist"}
        d["hist"] = self.hist.encode()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpStats:
        s = cls(**{k: v for k, v in d.items() if k != "hist"})
        s.hist = Histogram.decode(d["hist"])
        return s

    def merge(self, o: OpStats) -> None:
        self.hist.merge(o.hist)
        for name in ("count", "errors", "bytes_sent", "bytes_received", "state_bytes", "stored_bytes", "items",
                     "item_errors"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        for mine, theirs in ((self.status, o.status), (self.error_dist, o.error_dist)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v


def _rpc_error_text(err: grpc.aio.AioRpcError) -> tuple[str, str]:
    """(status code name, error text) of a failed call; the text names the ErrorInfo reason when there is one."""
    code = code_name(err.code())
    reason = ""
    try:
        from grpc_status import rpc_status

        status = rpc_status.from_call(err)  # type: ignore[arg-type]
        if status is not None:
            from google.rpc import error_details_pb2

            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
    except Exception:  # noqa: BLE001 - the error text is best-effort
        pass
    if reason:
        return code, f"rpc error: code = {code} reason = {reason}"
    return code, f"rpc error: code = {code} desc = {(err.details() or '')[:160]}"


def _item_error_text(e: pb.ItemError) -> tuple[str, str]:
    code = code_name(e.code)
    return code, f"item error: code = {code} reason = {e.reason or '-'}"


MAX_MESSAGE_BYTES = 256 << 20


def channel_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel, even with equal arguments
        ("grpc.primary_user_agent", "cairn-bench"),
    ]


def open_channel(plan: Plan) -> grpc.aio.Channel:
    options = channel_options()
    if plan.tls or plan.tls_ca:
        if plan.tls_server_name:
            options.append(("grpc.ssl_target_name_override", plan.tls_server_name))
        creds = grpc.ssl_channel_credentials(root_certificates=plan.tls_ca)
        return grpc.aio.secure_channel(plan.target, creds, options)
    return grpc.aio.insecure_channel(plan.target, options)


class _Calls:
    """The multicallables of one channel."""

    def __init__(self, ch: grpc.aio.Channel) -> None:
        m = wire.SERVICE
        self.channel = ch
        self.save = ch.unary_unary(m + "Save", request_serializer=None, response_deserializer=pb.SaveResponse.FromString)
        self.load = ch.unary_unary(m + "Load", request_serializer=None, response_deserializer=None)
        self.list = ch.unary_unary(m + "List", request_serializer=None, response_deserializer=None)
        self.batch_load = ch.unary_unary(
            m + "BatchLoad", request_serializer=None, response_deserializer=pb.BatchLoadResponse.FromString
        )
        self.put_writes = ch.unary_unary(m + "PutWrites", request_serializer=None, response_deserializer=None)
        self.save_stream = ch.stream_stream(
            m + "SaveStream", request_serializer=None, response_deserializer=pb.SaveStreamResponse.FromString
        )


async def connect(plan: Plan, count: int, timeout: float = 15.0) -> list[_Calls]:
    channels = [open_channel(plan) for _ in range(max(1, count))]
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), timeout)
    except asyncio.TimeoutError:
        for ch in channels:
            await ch.close()
        raise BenchError(f"cannot connect to {plan.target} within {timeout:.0f} s") from None
    return [_Calls(ch) for ch in channels]


def metadata_of(plan: Plan) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {plan.token}"),) if plan.token else None


def state_tails(plan: Plan, with_state: bool = True) -> list[bytes]:
    """Each state's Checkpoint tail (see wire.py); without the state field when states are compressed per call."""
    return [
        wire.checkpoint_tail(
            s if with_state else b"",
            state_type=plan.state_type,
            metadata={"source": "loop", "step": i, "bench": True},
            node_name="agent",
            next_nodes=["tools"],
        )
        for i, s in enumerate(plan.states)
    ]


def task_writes(plan: Plan) -> list[bytes]:
    """Per state, what one agent task writes (PutWrites.writes): its new message (the state's last one, re-encoded;
    a 1 KB slice for states that are not agent states) and a small routing write, as LangGraph's nodes do."""
    out = []
    for s in plan.states:
        try:
            message = json.dumps(json.loads(s)["messages"][-1], separators=(",", ":")).encode()
        except (ValueError, KeyError, IndexError, TypeError):
            message = s[:1024]
        route = wire.write_field(1, "branch:to:agent", "json", b"null")
        out.append(wire.write_field(0, "messages", "json", message) + route)
    return out


_NOT_ACCEPTED = (
    "FailedPrecondition",
    "the server does not list STATE_ENCODING_ZSTD in SaveResponse.accepted_state_encodings; drop --compress-states",
)


class _Zstd:
    """--compress-states: what a client that compresses does on every call (nothing is compressed ahead)."""

    def __init__(self, plan: Plan) -> None:
        import zstandard

        self.states = plan.states
        self.rests = [t + wire.field_varint(14, pb.STATE_ENCODING_ZSTD) for t in state_tails(plan, False)]
        self.compressor = zstandard.ZstdCompressor(level=3)

    def tail(self, si: int) -> bytes:
        return wire.field_bytes(5, self.compressor.compress(self.states[si])) + self.rests[si]

    def read(self, checkpoints: Any) -> None:
        for c in checkpoints:
            if c.state_encoding == pb.STATE_ENCODING_ZSTD:
                decompress_state(c)


# What the Python client does with a returned state (frame checks included), with this channel's size limit.
_CLIENT_WIRE = StateWire(True, max_state_bytes=MAX_MESSAGE_BYTES)


def decompress_state(c: pb.Checkpoint) -> bytes:
    """A returned zstd state, checked by the Python client's own StateWire.state: the frame must declare
    state_size_bytes, since zstd allocates what a frame declares (a server under test must not make the load
    generator run out of memory). Raises BadFrame."""
    try:
        return _CLIENT_WIRE.state(c)
    except DataLoss as exc:
        raise BadFrame(str(exc)) from None


class BadFrame(Exception):
    """A server answered with a zstd state that is not what it says (counted as DATA_LOSS)."""


async def prefill(plan: Plan, per_thread: int, concurrency: int = 32) -> list[str]:
    """Save `per_thread` checkpoints to every thread (unary Save); returns each thread's head id."""
    heads = list(plan.heads) or [""] * len(plan.threads)
    if per_thread <= 0 or not plan.threads:
        return heads
    calls = await connect(plan, 1)
    md = metadata_of(plan)
    tails = state_tails(plan)
    fields = [wire.field_str(1, t) for t in plan.threads]
    todo = collections.deque((i, k) for k in range(per_thread) for i in range(len(plan.threads)))
    busy: set[int] = set()

    async def worker() -> None:
        while todo:
            i, k = todo.popleft()
            if i in busy:  # keep one writer per thread so parents chain in order
                todo.append((i, k))
                await asyncio.sleep(0)
                continue
            busy.add(i)
            cid = uuid7()
            req = wire.save_request(fields[i], cid, heads[i], tails[(i + k) % len(tails)])
            try:
                await calls[0].save(req, metadata=md, timeout=plan.timeout)
            except grpc.aio.AioRpcError as err:
                code, text = _rpc_error_text(err)
                raise BenchError(f"prefill Save to {plan.target} failed: {text} ({err.details()})") from None
            finally:
                busy.discard(i)
            heads[i] = cid

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(plan.threads))))))
    finally:
        await calls[0].channel.close()
    return heads


class LoadRunner:
    """Runs one process's share of the load; result() is a picklable dict (see merge in report.py)."""

    def __init__(self, plan: Plan, shared_counters: Any = None, barrier: Any = None) -> None:
        self.plan = plan
        self.ops = [op for op, w in plan.mix if w > 0]
        weights = [w for _, w in plan.mix if w > 0]
        total = float(sum(weights))
        acc, self.cum = 0.0, []
        for w in weights:
            acc += w / total
            self.cum.append(acc)
        self.cum[-1] = 1.0
        self.stats = {op: OpStats() for op in self.ops}
        self.measuring = False
        self.stopping = False
        self.issued = 0
        self.limit = plan.requests
        self.tails = state_tails(plan)
        self.state_lens = [len(s) for s in plan.states]
        self.thread_fields = [wire.field_str(1, t) for t in plan.threads]
        self.parents = list(plan.heads) or [""] * len(plan.threads)
        self.zstd = _Zstd(plan) if plan.compress_states else None
        accept = plan.compress_states
        self.load_reqs = [wire.load_request(t, accept_zstd=accept) for t in plan.threads]
        self.list_reqs = [
            wire.list_request(t, plan.list_page_size, plan.list_include_state, accept_zstd=accept)
            for t in plan.threads
        ]
        self.writes = task_writes(plan) if PUT_WRITES in self.ops else []
        self.md = metadata_of(plan)
        self.shared = shared_counters
        self.barrier = barrier
        self.samples_t = array("d") if plan.record_samples else None
        self.late_t = array("d")  # --rate with samples: when each late op started (s since measuring began)
        self.samples_ns = array("q") if plan.record_samples else None
        self.samples_op = array("B") if plan.record_samples else None
        self.samples_code = array("B") if plan.record_samples else None  # gRPC status code, 0 = OK
        self.t0_ns = 0
        self.start_wall = self.end_wall = 0.0
        self.rusage0: Any = None
        self.cpu_user = self.cpu_sys = 0.0
        # --rate: op k is due at sched0 + k * interval; workers take the next slot in turn
        self.interval_ns = int(1e9 / plan.rate) if plan.rate else 0
        self.sched0_ns = 0
        self.next_slot = 0
        self.late = 0  # measured ops that started more than LATE_NS after they were due
        self.max_lag_ns = 0

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _sample(self, op_index: int, end_ns: int, ns: int, code: int = 0) -> None:
        if self.samples_t is not None and self.measuring and len(self.samples_t) < MAX_SAMPLES:
            self.samples_t.append((end_ns - self.t0_ns) / 1e9)
            self.samples_ns.append(ns)  # type: ignore[union-attr]
            self.samples_op.append(op_index)  # type: ignore[union-attr]
            self.samples_code.append(code)  # type: ignore[union-attr]

    def _take(self) -> bool:
        """May a worker issue one more op?"""
        if self.stopping:
            return False
        if self.limit is not None and self.measuring:
            if self.issued >= self.limit:
                return False
            self.issued += 1
        return True

    async def _due(self) -> int | None:
        """--rate: waits for this op's turn and returns the time its latency counts from (None without
        --rate). A worker still busy when its op fell due counts from the due time, so queueing behind a slow
        server shows (no coordinated omission); one that slept until then counts from when it woke, since the
        event loop's timer slack (up to ~1 ms) is the client's, not the server's."""
        if not self.interval_ns:
            return None
        due = self.sched0_ns + self.next_slot * self.interval_ns
        self.next_slot += 1
        now = time.perf_counter_ns()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
            return time.perf_counter_ns()
        if self.measuring:
            lag = now - due
            if lag > LATE_NS:
                self.late += 1
                if self.samples_t is not None and len(self.late_t) < MAX_SAMPLES:
                    self.late_t.append((now - self.t0_ns) / 1e9)
            self.max_lag_ns = max(self.max_lag_ns, lag)
        return due

    def begin_measure(self) -> None:
        self.stats = {op: OpStats() for op in self.ops}
        self.t0_ns = time.perf_counter_ns()
        self.start_wall = time.time()
        self.rusage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.late = self.max_lag_ns = 0
        del self.late_t[:]
        self.measuring = True

    def end_measure(self) -> None:
        self.end_wall = time.time()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_user = r1.ru_utime - self.rusage0.ru_utime
        self.cpu_sys = r1.ru_stime - self.rusage0.ru_stime

    def _thread_for_save(self, rnd: random.Random, gw: int) -> int:
        """Each worker saves to its own threads (one writer per thread, as graph runtimes do) when there are
        enough threads; otherwise any thread."""
        n, total = len(self.plan.threads), self.plan.total_workers
        if n >= total:
            owned = (n - gw + total - 1) // total
            return gw + total * rnd.randrange(owned)
        return rnd.randrange(n)

    # -- workers -------------------------------------------------------------------------------------

    def _tail(self, si: int) -> bytes:
        """State `si`'s Checkpoint tail; compressed now, as a client would, with --compress-states."""
        return self.tails[si] if self.zstd is None else self.zstd.tail(si)

    def _refused_zstd(self, resp: pb.SaveResponse) -> bool:
        """A server that does not list zstd stored the frame as the state: the save counts as an error."""
        return self.zstd is not None and not resp.accepted_state_encodings

    async def _unary_worker(self, w: int, calls: _Calls) -> None:
        plan = self.plan
        gw = plan.worker_offset + w
        rnd = random.Random(plan.seed * 1_000_003 + gw)
        ops, cum = self.ops, self.cum
        idx = {op: i for i, op in enumerate(ops)}
        timeout, md = plan.timeout, self.md
        nthreads, ntails = len(plan.threads), len(self.tails)
        perf = time.perf_counter_ns
        paced = bool(self.interval_ns)
        while True:
            due = await self._due() if paced else None
            if not self._take():  # after the wait: the run may have ended, or the warm-up, meanwhile
                break
            op = ops[bisect.bisect_left(cum, rnd.random())] if len(ops) > 1 else ops[0]
            stats = self.stats  # ops issued during the warm-up land in the warm-up's (discarded) stats
            code = 0  # gRPC status of the call, for --details
            if op == SAVE:
                ti = self._thread_for_save(rnd, gw)
                si = rnd.randrange(ntails)
                cid = uuid7()
                t0 = due or perf()
                req = wire.save_request(self.thread_fields[ti], cid, self.parents[ti], self._tail(si))
                try:
                    resp = await calls.save(req, metadata=md, timeout=timeout)
                except grpc.aio.AioRpcError as err:
                    t1 = perf()
                    st = stats[op]
                    st.fail(t1 - t0, *_rpc_error_text(err))
                    code = err.code().value[0]
                else:
                    t1 = perf()
                    st = stats[op]
                    if self._refused_zstd(resp):
                        st.fail(t1 - t0, *_NOT_ACCEPTED)
                        code = grpc.StatusCode.FAILED_PRECONDITION.value[0]
                    else:
                        st.ok(t1 - t0)
                        self.parents[ti] = cid
                        if resp.stored_size_bytes:
                            st.state_bytes += self.state_lens[si]
                            st.stored_bytes += resp.stored_size_bytes
                st.bytes_sent += len(req)
            elif op == BATCH_LOAD:
                req = wire.batch_load_request(
                    [self.load_reqs[rnd.randrange(nthreads)] for _ in range(plan.batch_size)]
                )
                t0 = due or perf()
                try:
                    resp = await calls.batch_load(req, metadata=md, timeout=timeout)
                except grpc.aio.AioRpcError as err:
                    t1 = perf()
                    st = stats[op]
                    st.fail(t1 - t0, *_rpc_error_text(err))
                    code = err.code().value[0]
                else:
                    t1 = perf()
                    st = stats[op]
                    st.ok(t1 - t0)
                    st.items += len(resp.results)
                    st.bytes_received += resp.ByteSize()
                    for r in resp.results:
                        if r.HasField("error"):
                            st.item_errors += 1
                            st.add_error(_item_error_text(r.error)[1])
                st.bytes_sent += len(req)
            else:
                ti = rnd.randrange(nthreads)
                if op == LOAD:
                    req, call = self.load_reqs[ti], calls.load
                elif op == LIST:
                    req, call = self.list_reqs[ti], calls.list
                else:  # PUT_WRITES: a new task's writes against the thread's latest checkpoint
                    req = wire.put_writes_request(
                        self.thread_fields[ti], self.parents[ti], uuid7(), "~__pregel_pull, agent",
                        self.writes[rnd.randrange(len(self.writes))],
                    )
                    call = calls.put_writes
                t0 = due or perf()
                try:
                    raw = await call(req, metadata=md, timeout=timeout)
                    if self.zstd is not None:  # a client that asked for zstd decompresses what it got
                        if op == LOAD:
                            self.zstd.read((pb.LoadResponse.FromString(raw).checkpoint,))
                        elif op == LIST and plan.list_include_state:
                            self.zstd.read(pb.ListResponse.FromString(raw).checkpoints)
                except grpc.aio.AioRpcError as err:
                    t1 = perf()
                    st = stats[op]
                    st.fail(t1 - t0, *_rpc_error_text(err))
                    code = err.code().value[0]
                except BadFrame as exc:
                    t1 = perf()
                    st = stats[op]
                    st.fail(t1 - t0, code_name(grpc.StatusCode.DATA_LOSS), str(exc))
                    code = grpc.StatusCode.DATA_LOSS.value[0]
                else:
                    t1 = perf()
                    st = stats[op]
                    st.ok(t1 - t0)
                    st.bytes_received += len(raw)
                st.bytes_sent += len(req)
            if stats is self.stats:
                self._sample(idx[op], t1, t1 - t0, code)

    async def _stream_worker(self, w: int, calls: _Calls) -> None:
        """One SaveStream at a time, up to stream_window saves in flight; a failed stream is reopened."""
        plan = self.plan
        gw = plan.worker_offset + w
        rnd = random.Random(plan.seed * 1_000_003 + gw)
        ntails = len(self.tails)
        perf = time.perf_counter_ns
        while not self.stopping:
            call = calls.save_stream(metadata=self.md)
            window = asyncio.Semaphore(plan.stream_window)
            pending: collections.deque[tuple[int, int, str, int, OpStats]] = collections.deque()

            async def reader() -> None:
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        return
                    t0, ti, cid, si, st = pending.popleft()
                    t1 = perf()
                    code = 0
                    if resp.HasField("save") and self._refused_zstd(resp.save):
                        st.fail(t1 - t0, *_NOT_ACCEPTED)
                        code = grpc.StatusCode.FAILED_PRECONDITION.value[0]
                    elif resp.HasField("save"):
                        st.ok(t1 - t0)
                        if resp.save.stored_size_bytes:
                            st.state_bytes += self.state_lens[si]
                            st.stored_bytes += resp.save.stored_size_bytes
                    else:
                        st.fail(t1 - t0, *_item_error_text(resp.error))
                        code = int(getattr(resp.error, "code", 2)) or 2
                    if st is self.stats[SAVE_STREAM]:
                        self._sample(0, t1, t1 - t0, code)
                    window.release()

            read_task = asyncio.ensure_future(reader())
            try:
                while True:
                    await window.acquire()
                    if not self._take():
                        break
                    ti = self._thread_for_save(rnd, gw)
                    si = rnd.randrange(ntails)
                    cid = uuid7()
                    t0 = perf()
                    req = wire.save_stream_request(
                        wire.save_request(self.thread_fields[ti], cid, self.parents[ti], self._tail(si))
                    )
                    self.parents[ti] = cid
                    st = self.stats[SAVE_STREAM]
                    pending.append((t0, ti, cid, si, st))
                    st.bytes_sent += len(req)
                    await call.write(req)
                    if read_task.done():
                        break
                if not read_task.done():
                    await call.done_writing()
                await read_task
                t1 = perf()
                while pending:  # the server closed the stream without answering these
                    t0, _ti, _cid, _si, st = pending.popleft()
                    st.fail(t1 - t0, "Unknown", "stream ended before answering every save")
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as err:
                if not isinstance(err, grpc.aio.AioRpcError):
                    try:
                        await read_task
                    except grpc.aio.AioRpcError as inner:
                        err = inner
                    else:
                        raise
                read_task.cancel()
                code, text = _rpc_error_text(err)
                t1 = perf()
                while pending:
                    t0, _ti, _cid, _si, st = pending.popleft()
                    st.fail(t1 - t0, code, text)
                await asyncio.sleep(0.05)
                continue
            if self.stopping or (self.limit is not None and self.issued >= self.limit):
                return

    # -- the run -------------------------------------------------------------------------------------

    async def _progress_pump(self) -> None:
        """Publish this process's counters for the parent's progress line (--procs)."""
        i = self.plan.proc_index
        while True:
            self.shared[2 * i] = sum(s.count for s in self.stats.values()) if self.measuring else 0
            self.shared[2 * i + 1] = sum(s.errors for s in self.stats.values()) if self.measuring else 0
            await asyncio.sleep(0.2)

    async def run(self, progress: Any = None) -> dict[str, Any]:
        plan = self.plan
        calls = await connect(plan, plan.connections)
        gc.freeze()  # the states and prebuilt requests live all run: full collections need not walk them (stalls)
        try:
            if self.barrier is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.barrier.wait)
            pump = asyncio.ensure_future(self._progress_pump()) if self.shared is not None else None
            worker = self._stream_worker if SAVE_STREAM in self.ops else self._unary_worker
            self.sched0_ns = time.perf_counter_ns()
            tasks = [asyncio.ensure_future(worker(w, calls[w % len(calls)])) for w in range(plan.concurrency)]
            shown = asyncio.ensure_future(progress(self)) if progress else None
            try:
                if plan.warmup > 0:
                    await self._wait(tasks, plan.warmup)
                self.begin_measure()
                if plan.duration is not None:
                    await self._wait(tasks, plan.duration)
                    self.stopping = True
                await self._wait(tasks, None)
                self.end_measure()
            finally:
                self.stopping = True
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for extra in (pump, shown):
                    if extra is not None:
                        extra.cancel()
        finally:
            for c in calls:
                await c.channel.close()
        return self.result()

    @staticmethod
    async def _wait(tasks: list[asyncio.Future], seconds: float | None) -> None:
        """Sleep `seconds` (or until every worker ended), re-raising a worker's crash at once."""
        done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]

    def result(self) -> dict[str, Any]:
        return {
            "ops": {op: s.to_dict() for op, s in self.stats.items()},
            "op_order": self.ops,
            "start": self.start_wall,
            "end": self.end_wall,
            "cpu_user": self.cpu_user,
            "cpu_sys": self.cpu_sys,
            "rate": self.plan.rate,
            "late": self.late,
            "max_lag_ns": self.max_lag_ns,
            "late_t": self.late_t.tobytes(),
            "samples": (
                (self.samples_t.tobytes(), self.samples_ns.tobytes(), self.samples_op.tobytes(),  # type: ignore[union-attr]
                 self.samples_code.tobytes())  # type: ignore[union-attr]
                if self.samples_t is not None
                else None
            ),
        }


def child_main(plan: Plan, shared: Any, barrier: Any, results: Any) -> None:
    """Entry point of a --procs child process (spawned, so grpc starts fresh here)."""
    try:
        out = asyncio.run(LoadRunner(plan, shared, barrier).run())
        results.put((plan.proc_index, out, None))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        results.put((plan.proc_index, None, f"{type(exc).__name__}: {exc}"))
        if not isinstance(exc, (BenchError, Exception)):
            raise
    sys.stdout.flush()
