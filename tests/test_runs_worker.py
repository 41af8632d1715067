"""Durable runs end to end, with real worker processes (tests/runs_worker.py) on SQLite and on Postgres:
kill -9 inside a node, a SIGSTOPped zombie, cancel, execution timeout, retries, node timeout, and a soak with
workers killed at random.

No sleeps stand in for events: a worker prints a line when it reaches the point the test acts on.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cairn_client import CheckpointClient, RetryPolicy
from cairn_client.graph.worker import wait_for

WORKER = Path(__file__).with_name("runs_worker.py")
NODES = ["ingest", "charge", "enrich", "publish"]
LEASE = 2.0  # seconds: short, so recoveries happen within the test
WAIT = 1.0  # each claim's long-poll


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def srv(request: pytest.FixtureRequest, server_factory):  # type: ignore[no-untyped-def]
    return server_factory(request.param)


@pytest.fixture
def c(srv) -> Iterator[CheckpointClient]:  # type: ignore[no-untyped-def]
    with CheckpointClient(srv.target) as client:
        yield client


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


class Proc:
    """A worker process; lines() reads its stdout."""

    def __init__(self, target: str, queue: str, log: Path, *extra: str) -> None:
        self.p = subprocess.Popen(
            [sys.executable, str(WORKER), "--target", target, "--queue", queue, "--log", str(log),
             "--lease", str(LEASE), "--wait", str(WAIT), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def until(self, prefix: str) -> list[str]:
        assert self.p.stdout is not None
        while True:
            line = self.p.stdout.readline()
            if not line:
                self.p.wait()
                err = self.p.stderr.read() if self.p.stderr else ""
                pytest.fail(f"worker ended (rc {self.p.returncode}) before printing {prefix!r}:\n{err}")
            if line.startswith(prefix):
                return line.split()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def close(self) -> None:
        self.kill()
        self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            if f is not None:
                f.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        if p.p.poll() is None:
            os.kill(p.p.pid, signal.SIGCONT)
        p.close()


def spawn(procs: list[Proc], srv, queue: str, log: Path, *extra: str) -> Proc:  # type: ignore[no-untyped-def]
    p = Proc(srv.target, queue, log, *extra)
    procs.append(p)
    return p


def log_lines(log: Path, kind: str, run_id: str) -> list[list[str]]:
    if not log.exists():
        return []
    return [ln.split() for ln in log.read_text().splitlines() if ln.startswith(kind + " ") and ln.split()[1] == run_id]


def assert_linear(c: CheckpointClient, thread: str) -> int:
    """The thread's checkpoints form one chain (each the parent of the next, no forks); returns its length."""
    cps = list(c.iter_checkpoints(thread))[::-1]  # oldest first
    parents = [cp.parent_checkpoint_id for cp in cps]
    assert parents == [""] + [cp.checkpoint_id for cp in cps[:-1]], f"history of {thread} is not linear"
    assert len(set(parents)) == len(parents)
    return len(cps)


def normal(output: dict) -> dict:
    """The output without the activity call's token (each call of the side effect makes a new one)."""
    return {**output, "receipt": output["receipt"].rsplit("-", 1)[0]}


def reference(c: CheckpointClient, procs: list[Proc], srv, tmp_path: Path) -> tuple[dict, int]:  # type: ignore[no-untyped-def]
    """An uninterrupted run's output and history length."""
    q, thread = f"ref-{uuid.uuid4().hex[:8]}", f"ref-{uuid.uuid4()}"
    run = c.start_run(thread, {"order": "o-1"}, queue=q)
    spawn(procs, srv, q, tmp_path / "ref.log", "--max-runs", "1")
    done = wait_for(c, run.run_id, timeout_seconds=60)
    assert done.status == "COMPLETED"
    return normal(done.output_json()), assert_linear(c, thread)


def test_kill_inside_a_node_another_worker_finishes_the_run(c, srv, queue, procs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    want, length = reference(c, procs, srv, tmp_path)
    log, thread = tmp_path / "w.log", f"t-{uuid.uuid4()}"
    run = c.start_run(thread, {"order": "o-1"}, queue=queue)
    a = spawn(procs, srv, queue, log, "--mode", "crash", "--point-in", "charge")
    a.until("POINT crash charge")  # inside `charge`, after its activity was recorded
    b = spawn(procs, srv, queue, log)
    a.kill()
    killed_at = datetime.now(timezone.utc)
    done = wait_for(c, run.run_id, timeout_seconds=60)
    assert done.status == "COMPLETED", done
    assert normal(done.output_json()) == want  # the same final state as an uninterrupted run
    assert assert_linear(c, thread) == length
    [first, second] = done.attempts
    assert first.error is not None and first.error.reason == "LEASE_EXPIRED" and second.recovered
    assert second.started_at is not None and first.started_at is not None
    # Taken over within the lease plus the claim's re-check, measured from the kill (+1.5 s for a loaded box).
    assert (second.started_at - killed_at).total_seconds() <= LEASE + 0.2 + 1.5
    nodes = Counter(line[2] for line in log_lines(log, "NODE", run.run_id))
    assert nodes == Counter(NODES), nodes  # `ingest` (committed before the crash) did not run again
    [call] = log_lines(log, "ACT", run.run_id)  # the activity recorded before the crash was not called again
    assert done.output_json()["receipt"].endswith(call[3]) and call[4] == str(a.p.pid)
    b.close()


def test_zombie_past_its_lease_gets_lease_lost_and_writes_nothing(c, srv, queue, procs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    want, length = reference(c, procs, srv, tmp_path)
    log, thread = tmp_path / "w.log", f"t-{uuid.uuid4()}"
    run = c.start_run(thread, {"order": "o-1"}, queue=queue)
    zombie = spawn(procs, srv, queue, log, "--mode", "pause", "--point-in", "enrich", "--heartbeat", "600",
                   "--max-runs", "1")
    zombie.until("POINT pause enrich")
    zombie.kill(signal.SIGSTOP)  # paused inside `enrich`, past its lease from now on
    spawn(procs, srv, queue, log)
    done = wait_for(c, run.run_id, timeout_seconds=60)
    assert done.status == "COMPLETED" and normal(done.output_json()) == want
    zombie.kill(signal.SIGCONT)
    _, run_id, status, reason = zombie.until("DONE")
    assert (run_id, status, reason) == (run.run_id, "COMPLETED", "LEASE_LOST")  # its next save was refused
    assert zombie.p.wait(timeout=30) == 0
    assert assert_linear(c, thread) == length  # nothing of the zombie's was stored


def test_cancel_of_a_running_run_is_seen_within_one_heartbeat(c, srv, queue, procs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log, thread = tmp_path / "w.log", f"t-{uuid.uuid4()}"
    heartbeat = 0.5
    run = c.start_run(thread, {"order": "o-1"}, queue=queue)
    w = spawn(procs, srv, queue, log, "--mode", "hang", "--point-in", "enrich", "--heartbeat", str(heartbeat),
              "--max-runs", "1")
    w.until("POINT hang enrich")
    before = assert_linear(c, thread)
    asked = time.monotonic()
    assert c.cancel_run(run.run_id).cancel_requested
    while (now := c.get_run(run.run_id)).status != "CANCELLED":
        assert time.monotonic() - asked < 30
        time.sleep(0.02)
    seen = time.monotonic() - asked
    assert seen <= heartbeat + 1.0, seen  # one heartbeat interval (+1 s for a loaded box)
    assert w.until("DONE")[2:] == ["CANCELLED", "RUN_CANCELLED"]
    assert now.attempts[-1].status == "CANCELLED"
    assert assert_linear(c, thread) == before  # the cancelled node's step stored nothing
    assert [ln[2] for ln in log_lines(log, "NODE", run.run_id)] == ["ingest", "charge"]


def test_execution_timeout_fails_the_run(c, srv, queue, procs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = c.start_run(f"t-{uuid.uuid4()}", {"order": "o"}, queue=queue, execution_timeout_seconds=1.5)
    w = spawn(procs, srv, queue, tmp_path / "w.log", "--mode", "hang", "--point-in", "enrich", "--heartbeat", "0.3",
              "--max-runs", "1")
    assert w.until("DONE")[2:] == ["FAILED", "RUN_TIMED_OUT"]
    got = c.get_run(run.run_id)
    assert got.status == "FAILED" and got.error is not None and got.error.reason == "EXECUTION_TIMEOUT"


def test_retries_with_backoff_then_failed_with_the_last_error(c, srv, queue, procs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "w.log"
    run = c.start_run(f"t-{uuid.uuid4()}", {"order": "o"}, queue=queue,
                      retry=RetryPolicy(max_attempts=3, initial_backoff_seconds=0.4, backoff_coefficient=2.0))
    spawn(procs, srv, queue, log, "--fail-in", "enrich", "--fail-times", "99")
    done = wait_for(c, run.run_id, timeout_seconds=60)
    assert done.status == "FAILED" and done.failed_attempt_count == 3
    assert done.error is not None and (done.error.type, done.error.message) == ("OSError", "enrich failed on attempt 3")
    assert done.error.retryable
    gaps = [(b.started_at - a.ended_at).total_seconds() for a, b in zip(done.attempts, done.attempts[1:])]  # type: ignore[operator]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.8, gaps  # the backoff, doubling
    # ingest and charge were checkpointed by the first attempt: the retries resumed after them
    nodes = Counter(line[2] for line in log_lines(log, "NODE", run.run_id))
    assert nodes == Counter({"ingest": 1, "charge": 1})
    assert len(log_lines(log, "ACT", run.run_id)) == 1


def test_node_timeout_is_retryable_and_the_retry_completes(c, srv, queue, procs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = c.start_run(f"t-{uuid.uuid4()}", {"order": "o"}, queue=queue,
                      retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.1))
    spawn(procs, srv, queue, tmp_path / "w.log", "--mode", "block", "--point-in", "enrich", "--block-seconds", "3",
          "--node-timeout", "0.5")
    done = wait_for(c, run.run_id, timeout_seconds=60)
    assert done.status == "COMPLETED", done
    first = done.attempts[0]
    assert first.error is not None and first.error.type == "NodeTimeout" and first.error.retryable


def soak(srv, c: CheckpointClient, tmp_path: Path, runs: int, workers: int, kill_every: float) -> dict:  # type: ignore[no-untyped-def]
    """`runs` runs through `workers` worker processes; one random worker is SIGKILLed (and replaced) every
    `kill_every` seconds. Returns the figures; asserts every run COMPLETED, linear, activities once."""
    queue, log = f"soak-{uuid.uuid4().hex[:8]}", tmp_path / "soak.log"
    started = time.monotonic()
    ids = {c.start_run(f"soak-{uuid.uuid4()}", {"order": f"o-{i}"}, queue=queue).run_id: i for i in range(runs)}
    pool: list[Proc] = [Proc(srv.target, queue, log, "--node-sleep", "0.02") for _ in range(workers)]
    killed: dict[str, float] = {}  # pid -> when it was SIGKILLed (epoch seconds)
    kills, rng = 0, random.Random(26)
    try:
        next_kill = time.monotonic() + kill_every
        while True:
            page = c.list_runs(queue=queue, status=["PENDING", "RUNNING"], page_size=1)
            if not page.runs:
                break
            assert time.monotonic() - started < 60 + runs * 2, "soak did not finish"
            # The first kill comes as soon as work is under way: a fast box can finish the CI-sized soak before
            # the first `kill_every` has passed, and a soak without a kill proves nothing.
            first = kills == 0 and bool(c.list_runs(queue=queue, status=["RUNNING"], page_size=1).runs)
            if first or time.monotonic() >= next_kill:
                victim = pool.pop(rng.randrange(len(pool)))
                victim.kill()
                killed[str(victim.p.pid)] = time.time()
                victim.close()
                kills += 1
                pool.append(Proc(srv.target, queue, log, "--node-sleep", "0.02"))
                next_kill = time.monotonic() + kill_every
            time.sleep(0.1)
    finally:
        for p in pool:
            p.close()
    elapsed = time.monotonic() - started
    acts: dict[str, list[list[str]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        if line.startswith("ACT "):
            acts[line.split()[1]].append(line.split())
    recoveries = []
    for run_id in ids:
        run = c.get_run(run_id)
        assert run.status == "COMPLETED", run
        assert_linear(c, run.thread_id)
        receipt = run.output_json()["receipt"]
        calls = acts[run_id]
        # The recorded activity's call is the last one; any earlier call came from a worker killed before its
        # record was stored (the only way a side effect runs twice).
        assert calls and receipt.endswith(calls[-1][3]), (run_id, calls, receipt)
        assert all(call[4] in killed for call in calls[:-1]), (run_id, calls, killed)
        for prev, nxt in zip(run.attempts, run.attempts[1:]):
            pid = prev.worker_id.split(":")[1]
            if nxt.recovered and pid in killed and nxt.started_at is not None:
                recoveries.append(nxt.started_at.timestamp() - killed[pid])  # kill -> claimed by another worker
    recoveries.sort()

    def pct(q: float) -> float | None:
        return round(recoveries[min(len(recoveries) - 1, int(q * len(recoveries)))], 2) if recoveries else None

    return {"runs": runs, "kills": kills, "seconds": round(elapsed, 1), "runs_per_s": round(runs / elapsed, 1),
            "lease_s": LEASE, "recoveries": len(recoveries), "recovery_p50_s": pct(0.5), "recovery_p99_s": pct(0.99),
            "recovery_max_s": round(recoveries[-1], 2) if recoveries else None,
            "double_calls": sum(len(v) - 1 for v in acts.values())}


def test_soak_small(srv, c, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The CI-sized soak (`make soak-runs` runs 1,000)."""
    runs = int(os.environ.get("CAIRN_SOAK_RUNS", "60"))
    figures = soak(srv, c, tmp_path, runs=runs, workers=4, kill_every=float(os.environ.get("CAIRN_SOAK_KILL_S", "2")))
    print(f"\nsoak {srv.kind}: {figures}")
    assert figures["kills"] >= 1
