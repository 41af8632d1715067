"""Issue 25: fresh reads you can prove. Several client processes run random operations against two
`cairn serve` processes (default flags: near cache on, 50 ms leases) sharing one Redis and one Postgres,
while a server is killed (-9) and restarted, paused (SIGSTOP) for longer than a lease, cut from Redis by a
TCP proxy (also cut, then killed, then healed), Redis is restarted from an older RDB snapshot and Postgres
is restarted. Every thread's history must be linearizable (tests/harness/history.py): no stale read, nothing
deleted or cleared coming back, nothing acknowledged lost.

The long run is `make coherence` (COHERENCE_SECONDS=600); this is the short one.
"""

from __future__ import annotations

import pytest

from tests.harness.coherence import RunConfig, run
from tests.harness.faults import FAULT_KINDS

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(170)
def test_histories_under_faults_are_linearizable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = RunConfig(seconds=24, client_processes=2, clients_per_process=4, groups=8,
                    quiet_seconds=(0.4, 0.8), workdir=str(tmp_path))
    report = run(cfg)
    text = report.text()
    (tmp_path / "report.txt").write_text(text)
    print(text)
    # the run exercised what it claims to: every fault, and enough acknowledged traffic around them
    assert {f.kind for f in report.faults} == set(FAULT_KINDS), text
    assert sum(by.get("ok", 0) for by in report.counts.values()) > 500, text
    assert report.result.valid is True, text
    assert report.result.anomalies == [], text


@pytest.mark.timeout(170)
def test_histories_stay_linearizable_while_redis_evicts_entries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 32: Cairn is correct under `maxmemory` with any eviction policy, since an evicted entry is only a
    miss. Redis runs at a maxmemory barely above its own footprint with allkeys-lru, so fills evict entries all
    the time, under the same faults."""
    cfg = RunConfig(seconds=16, client_processes=2, clients_per_process=4, groups=8, quiet_seconds=(0.4, 0.8),
                    workdir=str(tmp_path),
                    redis_args=("--maxmemory", "1200kb", "--maxmemory-policy", "allkeys-lru"))
    report = run(cfg)
    text = report.text()
    (tmp_path / "report.txt").write_text(text)
    print(text)
    assert report.evicted_keys > 100, text
    assert sum(by.get("ok", 0) for by in report.counts.values()) > 300, text
    assert report.result.valid is True, text
    assert report.result.anomalies == [], text
