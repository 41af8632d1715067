"""Random checkpoint-store operations over a few small groups of threads, each invocation and completion
recorded for tests/harness/history.py. Runs in client processes started by tests/harness/coherence.py.

Every op goes to one of the servers, picked at random, so a change made through one server is read through
another. Copies stay inside a group of threads (the checker's partitions); ids are UUIDv7 picked by the client,
so each save is recognisable wherever it shows up. A SaveBatch call carries saves to 2-4 threads of one group;
each is an op of its own. Outcomes:

  ok                              the call returned
  fail  NOT_FOUND, ABORTED        definite: nothing changed (HEAD_MOVED carries the current head)
  info  UNAVAILABLE, DEADLINE_EXCEEDED, anything else   may or may not have taken effect
  fail  {"sent": False}           UNAVAILABLE before the call left the client: nothing happened

Calls are single attempts: the client's automatic retry of UNAVAILABLE is turned off, because a retried save
can land twice around a concurrent clear (inserted, cleared, inserted again), which no single op explains.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_client import CairnError, CheckpointClient, Conflict, NotFound, uuid7
from cairn_client._shared import DEFAULT_MAX_MESSAGE_BYTES, save_request
from cairn_client.errors import from_item_error, from_rpc_error

from .history import Op, Recorder

__all__ = ["DEFAULT_WEIGHTS", "WorkloadSpec", "SingleAttemptClient", "run_clients", "final_reads", "thread_groups"]


class SingleAttemptClient(CheckpointClient):
    """CheckpointClient without automatic retries and with fast reconnects after a server restart."""

    def __init__(self, target: str, *, timeout_seconds: float = 2.0) -> None:
        super().__init__(target, timeout_seconds=timeout_seconds)
        self._channel.close()
        self._channel = grpc.insecure_channel(target, [
            ("grpc.enable_retries", 0),
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
        ])
        self._stub = pb_grpc.CheckpointStoreStub(self._channel)


# gRPC's message when a call fails because no connection to any server exists: the call was never sent.
_NOT_SENT = "failed to connect to all addresses"


def thread_groups(prefix: str, groups: int, per_group: int) -> list[list[str]]:
    return [[f"{prefix}-g{g}-t{i}" for i in range(per_group)] for g in range(groups)]


# relative frequency of each op; "save_cas" saves with expected_head_id = the last head this process saw
DEFAULT_WEIGHTS = {
    "save": 22, "save_cas": 10, "save_empty": 3, "load": 22, "load_id": 10, "list": 12,
    "delete": 8, "clear": 3, "copy": 3, "put_writes": 6, "save_batch": 6,
}


@dataclass
class WorkloadSpec:
    """What one client process does."""

    name: str
    targets: list[str]
    groups: list[list[str]]
    clients: int = 4
    deadline: float = 0.0  # time.monotonic() at which to stop
    max_ops: int = 100_000  # per client thread, a bound besides the deadline
    timeout_seconds: float = 2.0
    seed: int = 0
    out_path: str = ""
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))


class _Knowledge:
    """What a client process learned about each thread: ids it saw acknowledged or returned, and heads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, list[str]] = {}
        self.known: dict[str, list[str]] = {}
        self.head: dict[str, str] = {}

    def remember(self, thread: str, cids: Sequence[str], acked: bool = False) -> None:
        with self.lock:
            for store in ((self.known, self.acked) if acked else (self.known,)):
                lst = store.setdefault(thread, [])
                lst.extend(c for c in cids if c not in lst)
                del lst[:-40]  # bounded: recent ids are the interesting ones


def _write_state(rng: random.Random) -> bytes:
    return json.dumps({"n": rng.random(), "pad": "x" * rng.randint(0, 300)}).encode()


def _one(c: CheckpointClient, rec: Recorder, who: str, kind: str, rng: random.Random, group: list[str],
         k: _Knowledge) -> None:
    thread = rng.choice(group)
    with k.lock:
        acked = list(k.acked.get(thread, ()))
        known = list(k.known.get(thread, ()))
        head = k.head.get(thread, "")
    if kind in ("delete", "put_writes", "load_id") and not known:
        kind = "save"
    if kind == "copy" and len(group) < 2:
        kind = "list"
    if kind == "save" and len(acked) > 25:
        kind = "clear"  # keep threads short: lists fit one page, model states stay small
    op: Op
    try:
        if kind.startswith("save"):
            cid = uuid7()
            expected = (head or (rng.choice(known) if known else None)) if kind == "save_cas" else None
            empty = kind == "save_empty"
            op = rec.invoke(who, "save", thread, cid=cid, expected_head=expected, expect_empty=empty)
            try:
                c.save(thread, _write_state(rng), state_type="json", checkpoint_id=cid,
                       expected_head_id=expected, expect_empty=empty)
            except Conflict as e:
                if e.reason != "HEAD_MOVED" or not (expected or empty):
                    raise  # not a compare-and-set answer: recorded below as unexpected
                rec.fail(op, f"ABORTED {e.reason}", current_head=e.current_head_id)
                with k.lock:
                    k.head[thread] = e.current_head_id
                return
            rec.ok(op)
            k.remember(thread, [cid], acked=True)
            with k.lock:
                k.head[thread] = cid
        elif kind in ("load", "load_id"):
            cid = rng.choice(known) if kind == "load_id" else None
            op = rec.invoke(who, "load", thread, cid=cid)
            cp = c.load(thread, checkpoint_id=cid)
            rec.ok(op, cid=cp.checkpoint_id, writes=sorted({w.task_id for w in cp.pending_writes}))
            if cid is None:
                with k.lock:
                    k.head[thread] = cp.checkpoint_id
        elif kind == "list":
            op = rec.invoke(who, "list", thread)
            page = c.list(thread, page_size=100)
            cids = [cp.checkpoint_id for cp in page.checkpoints if cp.namespace == ""]
            rec.ok(op, cids=cids, truncated=bool(page.next_page_token))
            k.remember(thread, cids)
        elif kind == "delete":
            cid = rng.choice(acked or known)
            op = rec.invoke(who, "delete", thread, cid=cid)
            c.delete(thread, cid)
            rec.ok(op)
        elif kind == "clear":
            op = rec.invoke(who, "clear", thread)
            c.clear(thread)
            rec.ok(op)
            with k.lock:
                k.acked[thread] = []
                k.head[thread] = ""
        elif kind == "copy":
            target = rng.choice([t for t in group if t != thread])
            op = rec.invoke(who, "copy", target, source=thread)
            c.copy_thread(thread, target)
            rec.ok(op)
        elif kind == "put_writes":
            cid = rng.choice(known)
            task = uuid.uuid4().hex
            op = rec.invoke(who, "put_writes", thread, cid=cid, task=task)
            c.put_writes(thread, cid, task, [("messages", {"task": task})])
            rec.ok(op)
        else:
            raise ValueError(f"unknown op {kind!r}")
    except Exception as e:  # noqa: BLE001 - each kind of failure is recorded for what it says of the op
        _settle_error(rec, op, e)
        if isinstance(e, CairnError) and e.code == grpc.StatusCode.UNAVAILABLE and e.message.startswith(_NOT_SENT):
            time.sleep(0.05)  # the server is down: do not spin on it


def _settle_error(rec: Recorder, op: Op, e: Exception) -> None:
    """Record what a failed call says of `op`: a definite failure, or an outcome left unknown."""
    if isinstance(e, NotFound):
        if op.kind in ("load", "put_writes"):
            rec.fail(op, f"NOT_FOUND {e.message[:80]}")
        else:
            rec.info(op, f"unexpected NOT_FOUND {e.message[:100]}")
    elif isinstance(e, Conflict):
        if op.kind == "copy" and e.reason == "TARGET_NOT_EMPTY":
            rec.fail(op, f"ABORTED {e.reason}")
        else:
            rec.info(op, f"unexpected ABORTED {e.reason} {e.message[:100]}")
    elif isinstance(e, CairnError):
        if e.code == grpc.StatusCode.UNAVAILABLE and e.message.startswith(_NOT_SENT):
            rec.unsent(op, f"{e.code.name} {e.message[:120]}")
        elif e.code == grpc.StatusCode.UNAVAILABLE:
            # the server answered, or its connection dropped because it died: it is done with the call,
            # except that Postgres may still commit what was already sent (the second's margin)
            rec.info(op, f"{e.code.name} {e.message[:120]}", effect_by=time.monotonic() + 1.0)
        else:
            rec.info(op, f"{e.code.name} {e.message[:120]}")
    else:  # anything else leaves the outcome unknown; the report shows it
        rec.info(op, f"client error {e!r}"[:160])


def _save_batch(c: CheckpointClient, rec: Recorder, who: str, rng: random.Random, group: list[str],
                k: _Knowledge) -> None:
    """One SaveBatch call of 2-4 saves to distinct threads of the group, some compare-and-set: each save is an
    op of its own, invoked and completed together."""
    threads = rng.sample(group, min(len(group), rng.randint(2, 4)))
    ops: list[Op] = []
    requests: list[pb.SaveRequest] = []
    for thread in threads:
        with k.lock:
            head, known = k.head.get(thread, ""), list(k.known.get(thread, ()))
        cid = uuid7()
        expected = (head or (rng.choice(known) if known else None)) if rng.random() < 0.3 else None
        ops.append(rec.invoke(who, "save", thread, cid=cid, expected_head=expected, expect_empty=False, batch=True))
        requests.append(save_request(thread, _write_state(rng), state_type="json", checkpoint_id=cid,
                                     expected_head_id=expected))
    try:
        response = c._stub.SaveBatch(pb.SaveBatchRequest(saves=requests), timeout=c.timeout_seconds)
    except grpc.RpcError as err:
        for op in ops:
            _settle_error(rec, op, from_rpc_error(err))
        if err.code() == grpc.StatusCode.UNAVAILABLE and (err.details() or "").startswith(_NOT_SENT):
            time.sleep(0.05)  # the server is down: do not spin on it
        return
    for op, thread, result in zip(ops, threads, response.results, strict=True):
        if result.HasField("save"):
            rec.ok(op)
            k.remember(thread, [op.args["cid"]], acked=True)
            with k.lock:
                k.head[thread] = op.args["cid"]
            continue
        e = from_item_error(result.error)
        if isinstance(e, Conflict) and e.reason == "HEAD_MOVED" and op.args.get("expected_head"):
            rec.fail(op, f"ABORTED {e.reason}", current_head=e.current_head_id)
            with k.lock:
                k.head[thread] = e.current_head_id
        else:
            _settle_error(rec, op, e)


def _client_loop(spec: WorkloadSpec, n: int, rec: Recorder, k: _Knowledge) -> None:
    rng = random.Random(f"{spec.seed}-{spec.name}-{n}")
    kinds, weights = zip(*spec.weights.items())
    clients = [SingleAttemptClient(t, timeout_seconds=spec.timeout_seconds) for t in spec.targets]
    try:
        for _ in range(spec.max_ops):
            if time.monotonic() >= spec.deadline:
                break
            i = rng.randrange(len(clients))
            kind = rng.choices(kinds, weights)[0]
            if kind == "save_batch":
                _save_batch(clients[i], rec, f"{spec.name}.{n}@s{i}", rng, rng.choice(spec.groups), k)
            else:
                _one(clients[i], rec, f"{spec.name}.{n}@s{i}", kind, rng, rng.choice(spec.groups), k)
    finally:
        for c in clients:
            c.close()


def run_clients(spec: WorkloadSpec) -> str:
    """Run `spec.clients` client threads until the deadline; write the history to spec.out_path (JSON lines).
    The entry point of a client process."""
    rec = Recorder()
    k = _Knowledge()
    threads = [threading.Thread(target=_client_loop, args=(spec, n, rec, k), daemon=True)
               for n in range(spec.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, spec.deadline - time.monotonic()) + 4 * spec.timeout_seconds + 30)
    rec.dump(spec.out_path)
    return spec.out_path


def final_reads(targets: Sequence[str], groups: Sequence[Sequence[str]], rec: Recorder, *,
                rounds: int = 2, timeout_seconds: float = 5.0) -> None:
    """After the faults: List and Load the head of every thread through every server, `rounds` times. These
    reads find acknowledged saves that were lost and deleted checkpoints still served."""
    clients = [SingleAttemptClient(t, timeout_seconds=timeout_seconds) for t in targets]
    rng = random.Random(0)
    try:
        for _ in range(rounds):
            for group in groups:
                for thread in group:
                    for i, c in enumerate(clients):
                        _one(c, rec, f"final@s{i}", "list", rng, [thread], _Knowledge())
                        _one(c, rec, f"final@s{i}", "load", rng, [thread], _Knowledge())
    finally:
        for c in clients:
            c.close()


def _main(argv: Sequence[str]) -> int:
    """`python -m tests.harness.workload SPEC.json`: run one client process."""
    with open(argv[0]) as f:
        spec = WorkloadSpec(**json.load(f))
    run_clients(spec)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
