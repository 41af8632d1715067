"""Durable runs over the wire, on the embedded default (SQLite) and on Postgres (with and without Redis in front):
start, claim (oldest first, long-poll, epochs), heartbeat, fencing of Save / SaveStream / PutWrites, complete,
interrupt, fail with retries and backoff, execution timeout, cancel, history with AIP-158 pages, error reasons.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn_client import (
    AlreadyExists,
    AsyncCheckpointClient,
    CheckpointClient,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RetryPolicy,
    RunStopped,
)

RUN_BACKENDS = ["embedded", "postgres", "redis+postgres+near"]


@pytest.fixture(scope="module", params=RUN_BACKENDS)
def runs_server(request: pytest.FixtureRequest, server_factory):  # type: ignore[no-untyped-def]
    return server_factory(request.param)


@pytest.fixture
def c(runs_server) -> Iterator[CheckpointClient]:  # type: ignore[no-untyped-def]
    with CheckpointClient(runs_server.target) as client:
        yield client


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def tid() -> str:
    return f"t-{uuid.uuid4()}"


def test_start_claim_complete(c: CheckpointClient, queue: str) -> None:
    thread = tid()
    run = c.start_run(thread, {"x": 1}, queue=queue, metadata={"who": "test"})
    assert run.status == "PENDING" and run.input_json() == {"x": 1} and run.metadata == {"who": "test"}
    claim = c.claim_run(queue, "w1")
    assert claim is not None and claim.run.run_id == run.run_id and not claim.recovered
    assert claim.lease.epoch == 1 and claim.run.status == "RUNNING" and claim.run.worker_id == "w1"
    assert c.claim_run(queue, "w2") is None  # held, lease not expired
    saved = c.save(thread, {"v": 1}, run_lease=claim.lease, expect_empty=True)
    c.put_writes(thread, saved.checkpoint_id, "task", [("ch", 1)], run_lease=claim.lease)
    lease = c.heartbeat(claim.lease, lease_seconds=5)
    assert lease.epoch == 1 and lease.expires_at is not None
    done = c.complete_run(claim.lease, {"answer": 42}, checkpoint_id=saved.checkpoint_id)
    assert done.status == "COMPLETED" and done.output_json() == {"answer": 42}
    assert done.checkpoint_id == saved.checkpoint_id and done.ended_at is not None
    got = c.get_run(run.run_id)
    assert [(a.number, a.worker_id, a.status) for a in got.attempts] == [(1, "w1", "COMPLETED")]
    with pytest.raises(RunStopped) as stopped:  # the run ended: its lease fences nothing any more
        c.save(thread, {"v": 2}, run_lease=claim.lease)
    assert stopped.value.reason == "LEASE_LOST"


def test_start_is_idempotent_and_one_active_run_per_thread(c: CheckpointClient, queue: str) -> None:
    thread, run_id = tid(), f"r-{uuid.uuid4()}"
    first = c.start_run(thread, {"a": 1}, queue=queue, run_id=run_id)
    again = c.start_run(thread, {"a": 1}, queue=queue, run_id=run_id)
    assert again.run_id == first.run_id and again.created_at == first.created_at
    with pytest.raises(AlreadyExists) as conflict:
        c.start_run(thread, {"a": 2}, queue=queue, run_id=run_id)
    assert conflict.value.reason == "RUN_ID_CONFLICT"
    with pytest.raises(FailedPrecondition) as busy:
        c.start_run(thread, {"b": 1}, queue=queue)
    assert busy.value.reason == "THREAD_BUSY" and busy.value.metadata["run_id"] == run_id
    c.cancel_run(run_id)
    c.start_run(thread, {"b": 1}, queue=queue)  # the thread is free again


def test_claims_oldest_first_and_long_polls(c: CheckpointClient, queue: str) -> None:
    ids = [c.start_run(tid(), queue=queue).run_id for _ in range(3)]
    got = [c.claim_run(queue, "w").run.run_id for _ in range(3)]  # type: ignore[union-attr]
    assert got == ids
    started = time.monotonic()
    assert c.claim_run(queue, "w", wait_seconds=0.5) is None
    assert time.monotonic() - started >= 0.45

    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(c.claim_run(queue, "w", wait_seconds=20)))
    waiter.start()
    time.sleep(0.3)
    late = c.start_run(tid(), queue=queue)
    waiter.join(25)
    assert result and result[0] is not None and result[0].run.run_id == late.run_id  # type: ignore[attr-defined]


def test_abandoned_run_is_reclaimed_with_a_higher_epoch_and_old_lease_is_fenced(
    c: CheckpointClient, queue: str
) -> None:
    thread = tid()
    run = c.start_run(thread, queue=queue)
    first = c.claim_run(queue, "w1", lease_seconds=1)
    assert first is not None
    saved = c.save(thread, {"step": 1}, run_lease=first.lease, expect_empty=True)
    second = c.claim_run(queue, "w2", wait_seconds=5)  # waits out the 1 s lease
    assert second is not None and second.run.run_id == run.run_id and second.recovered
    assert second.lease.epoch == 2 and second.run.recovery_count == 1
    for call in (
        lambda: c.save(thread, {"step": 2}, run_lease=first.lease, expected_head_id=saved.checkpoint_id),
        lambda: c.put_writes(thread, saved.checkpoint_id, "t", [("c", 1)], run_lease=first.lease),
        lambda: c.heartbeat(first.lease),
        lambda: c.complete_run(first.lease),
        lambda: c.fail_run(first.lease, OSError("x"), retryable=True),
    ):
        with pytest.raises(RunStopped) as refused:
            call()
        assert refused.value.reason == "LEASE_LOST"
        assert refused.value.metadata["current_epoch"] == "2" and refused.value.metadata["epoch"] == "1"
    assert c.load(thread).checkpoint_id == saved.checkpoint_id  # nothing the zombie sent was stored
    results = list(c.save_stream([
        pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, state=b"{}", state_type="json"),
                       run_lease=first.lease.to_proto()),
        pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread, state=b"{}", state_type="json",
                                                parent_checkpoint_id=saved.checkpoint_id),
                       run_lease=second.lease.to_proto()),
    ]))
    assert isinstance(results[0], RunStopped) and results[0].reason == "LEASE_LOST"
    assert not isinstance(results[1], Exception)
    got = c.get_run(run.run_id)
    assert [(a.number, a.status, a.recovered) for a in got.attempts] == [(1, "FAILED", False), (2, "RUNNING", True)]
    assert got.attempts[0].error is not None and got.attempts[0].error.reason == "LEASE_EXPIRED"


def test_lease_names_its_thread(c: CheckpointClient, queue: str) -> None:
    c.start_run(tid(), queue=queue)
    claim = c.claim_run(queue, "w")
    assert claim is not None
    with pytest.raises(InvalidArgument) as wrong:
        c.save(tid(), {}, run_lease=claim.lease)
    assert wrong.value.field == "run_lease"
    with pytest.raises(NotFound) as missing:
        c.heartbeat(type(claim.lease)("no-such-run", 1, "x"))
    assert missing.value.reason == "RUN_NOT_FOUND"


def test_retry_with_backoff_then_failed_with_last_error(c: CheckpointClient, queue: str) -> None:
    run = c.start_run(tid(), queue=queue, retry=RetryPolicy(max_attempts=3, initial_backoff_seconds=0.3,
                                                              backoff_coefficient=2.0))
    failed_at = []
    for attempt in range(1, 4):
        claim = c.claim_run(queue, "w", wait_seconds=10)
        assert claim is not None and claim.lease.epoch == attempt
        if failed_at:  # not claimed before its backoff: 0.3 s, then 0.6 s
            assert time.monotonic() - failed_at[-1] >= 0.3 * 2 ** (attempt - 2) - 0.05
        after = c.fail_run(claim.lease, TimeoutError(f"slow {attempt}"), retryable=True)
        failed_at.append(time.monotonic())
        assert after.status == ("PENDING" if attempt < 3 else "FAILED")
    final = c.get_run(run.run_id)
    assert final.status == "FAILED" and final.failed_attempt_count == 3
    assert final.error is not None and (final.error.type, final.error.message) == ("TimeoutError", "slow 3")
    assert [a.status for a in final.attempts] == ["FAILED"] * 3


def test_non_retryable_error_fails_at_once(c: CheckpointClient, queue: str) -> None:
    run = c.start_run(tid(), queue=queue, retry=RetryPolicy(max_attempts=5))
    claim = c.claim_run(queue, "w")
    assert claim is not None
    assert c.fail_run(claim.lease, ValueError("bad input"), retryable=False).status == "FAILED"
    assert c.get_run(run.run_id).error.type == "ValueError"  # type: ignore[union-attr]


def test_execution_timeout(c: CheckpointClient, queue: str) -> None:
    thread = tid()
    run = c.start_run(thread, queue=queue, execution_timeout_seconds=1.0)
    claim = c.claim_run(queue, "w")
    assert claim is not None
    time.sleep(1.1)
    with pytest.raises(RunStopped) as refused:
        c.save(thread, {}, run_lease=claim.lease)
    assert refused.value.reason == "RUN_TIMED_OUT"
    got = c.get_run(run.run_id)
    assert got.status == "FAILED" and got.error is not None and got.error.reason == "EXECUTION_TIMEOUT"
    with pytest.raises(NotFound):
        c.load(thread)


def test_cancel_pending_running_and_finished(c: CheckpointClient, queue: str) -> None:
    pending = c.start_run(tid(), queue=queue)
    assert c.cancel_run(pending.run_id).status == "CANCELLED"
    assert c.cancel_run(pending.run_id).status == "CANCELLED"  # idempotent
    thread = tid()
    running = c.start_run(thread, queue=queue)
    claim = c.claim_run(queue, "w")
    assert claim is not None and claim.run.run_id == running.run_id
    asked = c.cancel_run(running.run_id)
    assert asked.status == "RUNNING" and asked.cancel_requested
    with pytest.raises(RunStopped) as refused:
        c.heartbeat(claim.lease)
    assert refused.value.reason == "RUN_CANCELLED"
    got = c.get_run(running.run_id)
    assert got.status == "CANCELLED" and got.attempts[-1].status == "CANCELLED"
    done = c.start_run(tid(), queue=queue)
    claim = c.claim_run(queue, "w")
    assert claim is not None
    c.complete_run(claim.lease)
    with pytest.raises(FailedPrecondition) as finished:
        c.cancel_run(done.run_id)
    assert finished.value.reason == "RUN_FINISHED"


def test_cancel_seen_by_a_fenced_save_ends_the_run(c: CheckpointClient, queue: str) -> None:
    thread = tid()
    run = c.start_run(thread, queue=queue)
    claim = c.claim_run(queue, "w")
    assert claim is not None
    c.cancel_run(run.run_id)
    with pytest.raises(RunStopped) as refused:
        c.save(thread, {}, run_lease=claim.lease)
    assert refused.value.reason == "RUN_CANCELLED"
    assert c.get_run(run.run_id).status == "CANCELLED"


def test_interrupt_then_a_new_run_resumes_the_thread(c: CheckpointClient, queue: str) -> None:
    thread = tid()
    c.start_run(thread, queue=queue)
    claim = c.claim_run(queue, "w")
    assert claim is not None
    paused = c.complete_run(claim.lease, {"question": "approve?"}, interrupted=True)
    assert paused.status == "INTERRUPTED"
    nxt = c.start_run(thread, {"resume": True}, queue=queue)  # an interrupted run does not hold the thread
    assert nxt.status == "PENDING"


def test_list_runs_filters_and_pages(c: CheckpointClient, queue: str) -> None:
    thread = tid()
    ids = []
    for i in range(5):
        run = c.start_run(f"{thread}-{i}", queue=queue, metadata={"i": i})
        ids.append(run.run_id)
    c.cancel_run(ids[0])
    pages, token = [], ""
    while True:
        page = c.list_runs(queue=queue, page_size=2, page_token=token)
        pages.append([r.run_id for r in page.runs])
        token = page.next_page_token
        if not token:
            break
    assert [r for p in pages for r in p] == ids[::-1] and len(pages) == 3
    assert [r.run_id for r in c.iter_runs(queue=queue, status="CANCELLED")] == [ids[0]]
    assert [r.run_id for r in c.iter_runs(queue=queue, status=["PENDING"])] == ids[:0:-1]
    assert [r.run_id for r in c.iter_runs(thread_id=f"{thread}-3")] == [ids[3]]
    with pytest.raises(InvalidArgument):
        c.list_runs(queue=queue, page_size=2, page_token=c.list_runs(queue="other", page_size=1).next_page_token
                    or "bogus")


def test_bad_requests_name_their_field(c: CheckpointClient, queue: str) -> None:
    for call, field in (
        (lambda: c.start_run("", queue=queue), "thread_id"),
        (lambda: c.start_run(tid(), queue=""), "queue"),
        (lambda: c.start_run(tid(), queue=queue, retry=RetryPolicy(max_attempts=1000)), "retry_policy.max_attempts"),
        (lambda: c.start_run(tid(), queue=queue, execution_timeout_seconds=-1), "execution_timeout_ms"),
        (lambda: c.claim_run(queue, ""), "worker_id"),
        (lambda: c.claim_run(queue, "w", lease_seconds=0.5), "lease_duration_ms"),
    ):
        with pytest.raises(InvalidArgument) as bad:
            call()
        assert bad.value.field == field


def test_raw_status_details_carry_the_reason(runs_server, queue: str) -> None:  # type: ignore[no-untyped-def]
    from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
    from grpc_status import rpc_status

    with grpc.insecure_channel(runs_server.target) as channel:
        stub = pb_grpc.CheckpointStoreStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetRun(pb.GetRunRequest(run_id="nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        status = rpc_status.from_call(err.value)
        assert status is not None and "RUN_NOT_FOUND" in str(status.details[0].value)


async def test_async_client_mirrors_the_sync_one(runs_server, queue: str) -> None:  # type: ignore[no-untyped-def]
    async with AsyncCheckpointClient(runs_server.target) as ac:
        thread = tid()
        run = await ac.start_run(thread, {"a": 1}, queue=queue)
        claim = await ac.claim_run(queue, "aw", wait_seconds=1)
        assert claim is not None and claim.run.run_id == run.run_id
        await ac.save(thread, {"s": 1}, run_lease=claim.lease, expect_empty=True)
        await ac.heartbeat(claim.lease)
        assert (await ac.complete_run(claim.lease)).status == "COMPLETED"
        assert [r.run_id async for r in ac.iter_runs(queue=queue)] == [run.run_id]
        assert (await ac.get_run(run.run_id)).status == "COMPLETED"


def test_concurrent_claimers_never_share_a_run(c: CheckpointClient, runs_server, queue: str) -> None:  # type: ignore[no-untyped-def]
    ids = {c.start_run(tid(), queue=queue).run_id for _ in range(120)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        with CheckpointClient(runs_server.target) as mine:
            while (got := mine.claim_run(queue, f"w{n}")) is not None:
                with lock:
                    claimed.append(got.run.run_id)
                mine.complete_run(got.lease)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(claimed) == sorted(ids)  # every run claimed exactly once
    assert all(r.status == "COMPLETED" and r.attempt_count == 1 for r in c.iter_runs(queue=queue))


def test_run_metrics_are_exported(server_factory, queue: str) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    from tests.harness import free_port

    port = free_port()
    srv = server_factory("embedded", metrics_listen=f"127.0.0.1:{port}")
    with CheckpointClient(srv.target) as c:
        done = c.start_run(tid(), queue=queue)
        claim = c.claim_run(queue, "w")
        assert claim is not None and claim.run.run_id == done.run_id
        c.complete_run(claim.lease)
        cancelled = c.start_run(tid(), queue=queue)
        c.cancel_run(cancelled.run_id)
        c.start_run(tid(), queue=queue)  # stays pending: queue depth 1
        deadline = time.monotonic() + 15
        while True:  # the queue depth is refreshed every few seconds
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if f'cairn_run_queue_depth{{queue="{queue}"}} 1.0' in text or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    for line in ('cairn_runs_total{event="started"} 1.0', 'cairn_runs_total{event="completed"} 1.0',
                 'cairn_runs_total{event="cancelled"} 1.0', "cairn_run_claim_latency_seconds_count 1.0",
                 "cairn_run_duration_seconds_count 1.0", f'cairn_run_queue_depth{{queue="{queue}"}} 1.0'):
        assert line in text, line


def test_server_ends_runs_no_worker_will_claim(c: CheckpointClient, queue: str) -> None:
    """Cancel and execution timeout take effect without any worker polling the queue (the server sweeps)."""
    timed = c.start_run(tid(), queue=queue, execution_timeout_seconds=1.0)
    claim = c.claim_run(queue, "dead-worker", lease_seconds=1)  # then never heartbeats again
    assert claim is not None and claim.run.run_id == timed.run_id
    cancelled = c.start_run(tid(), queue=queue)
    claim = c.claim_run(queue, "dead-worker", lease_seconds=1)
    assert claim is not None and claim.run.run_id == cancelled.run_id
    assert c.cancel_run(cancelled.run_id).status == "RUNNING"  # held: the cancel waits for its worker
    deadline = time.monotonic() + 20
    while {c.get_run(r.run_id).status for r in (timed, cancelled)} != {"FAILED", "CANCELLED"}:
        assert time.monotonic() < deadline, [c.get_run(r.run_id) for r in (timed, cancelled)]
        time.sleep(0.2)
    got = c.get_run(timed.run_id)
    assert got.error is not None and got.error.reason == "EXECUTION_TIMEOUT"
    assert got.attempts[-1].error is not None and got.attempts[-1].error.reason == "LEASE_EXPIRED"
    assert c.get_run(cancelled.run_id).attempts[-1].status == "CANCELLED"
