"""Postgres failover under load: a primary with a synchronous streaming replica, Cairn on a multi-host DSN with
target_session_attrs=read-write; the primary dies (SIGKILL) mid-load and the replica is promoted.

Measured and printed (pytest -s): the error window (first to last failed call around the failover) and the
acknowledged saves lost, which synchronous replication makes 0. The history checker (tests/harness/checker.py)
checks the whole history, final reads through the promoted replica included: no acknowledged save lost, no
deleted checkpoint served.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from cairn_client import CheckpointClient, NotFound
from tests.harness import CairnProcess, PostgresReplica, PostgresServer
from tests.harness.checker import check
from tests.harness.history import OK, Recorder
from tests.harness.workload import WorkloadSpec, final_reads, run_clients, thread_groups

# Mostly saves (and the reads that would show one lost). Compare-and-set saves only: the workload turns a plain
# save on a long thread into a Clear, and nothing here deletes, so every acknowledged save must still be there.
WEIGHTS = {"save_cas": 55, "load": 20, "load_id": 10, "list": 10, "put_writes": 5}


def multi_host_dsn(user: str, database: str, *hosts: tuple[str, int]) -> str:
    """postgresql://user@h1:p1,h2:p2/db?target_session_attrs=read-write: the first host that accepts writes."""
    netloc = f"{urllib.parse.quote(user)}@" + ",".join(f"{h}:{p}" for h, p in hosts)
    return f"postgresql://{netloc}/{database}?target_session_attrs=read-write"


def test_failover_to_a_synchronous_replica_loses_no_acknowledged_save() -> None:
    with PostgresServer(synchronous_commit=True) as primary, PostgresReplica(primary) as replica:
        replica.start()
        replica.make_synchronous()
        primary.create_database("cairn_ha")
        dsn = multi_host_dsn(primary.user, "cairn_ha", ("127.0.0.1", primary.port), ("127.0.0.1", replica.port))
        with CairnProcess("--postgres-dsn", dsn, "--cold-timeout-seconds", "2", "--log-level", "WARNING") as server, \
                tempfile.TemporaryDirectory(prefix="cairn-ha-") as tmp:
            groups = thread_groups("ha", 24, 2)
            spec = WorkloadSpec(
                name="load", targets=[server.target], groups=groups, clients=6, deadline=time.monotonic() + 12,
                timeout_seconds=3.0, seed=28, out_path=str(Path(tmp) / "history.jsonl"), weights=WEIGHTS,
            )
            load = threading.Thread(target=run_clients, args=(spec,))
            load.start()
            time.sleep(4)
            primary.kill()  # returns once every postgres process of the primary is gone
            killed_at = time.monotonic()
            replica.promote()
            promoted_at = time.monotonic()
            load.join()

            ops = Recorder.load(spec.out_path)
            tail = Recorder()
            final_reads([server.target], groups, tail)
            ops += tail.ops
            for i, op in enumerate(ops):
                op.index = i
            result = check(ops, info_horizon_seconds=30)

            acked = [op for op in ops if op.kind == "save" and op.outcome == OK]
            lost = []
            with CheckpointClient(server.target) as c:
                for op in acked:
                    try:
                        c.load(op.thread, checkpoint_id=op.args["cid"])
                    except NotFound:
                        lost.append(op.args["cid"])
            failed = [op for op in ops if op.error.startswith(("UNAVAILABLE", "DEADLINE_EXCEEDED"))]
            window = (max((op.end or op.start) for op in failed) - min(op.start for op in failed)) if failed else 0.0
            saves_after = [op for op in acked if op.start > killed_at]
            figures = {
                "acknowledged_saves": len(acked),
                "acknowledged_saves_lost": len(lost),
                "failed_calls": len(failed),
                "failed_saves": sum(op.kind == "save" for op in failed),
                "calls": len(ops),
                "error_window_seconds": round(window, 2),
                "promote_seconds": round(promoted_at - killed_at, 2),
                "first_ack_after_kill_seconds": round(min(op.end for op in saves_after) - killed_at, 2)
                if saves_after else None,
                "checker_anomalies": len(result.anomalies),
            }
            print("failover:", json.dumps(figures))
            assert result.valid, result.describe()
            assert lost == []
            assert saves_after, "no save was acknowledged after the promotion"
            assert len(acked) > 100
