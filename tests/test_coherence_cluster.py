"""Issue 28: the coherence run (tests/harness/coherence.py) on a Redis Cluster of 3 masters and 3 replicas.
Two servers, several client processes, while CLUSTER FAILOVER moves masters to their replicas, slots holding
keys migrate (clients meet ASK, then MOVED) and `redis-cli --cluster reshard` moves more, and a master is killed
(-9) until the cluster promotes its replica. Every thread's history
must be linearizable (no stale read, nothing lost), no call may fail for any reason but a transient UNAVAILABLE,
and the servers' caches must have served hits throughout (a killed master's calls fall through to Postgres).

The long run is `make coherence-cluster` (COHERENCE_SECONDS=600); this is the CI-sized one.
"""

from __future__ import annotations

import pytest

from tests.harness.coherence import RunConfig, run
from tests.harness.faults import CLUSTER_FAULT_KINDS

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(170)
def test_histories_on_a_redis_cluster_under_failover_and_reshard_are_linearizable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = RunConfig(seconds=24, client_processes=2, clients_per_process=4, groups=8, redis_cluster=True,
                    faults=CLUSTER_FAULT_KINDS, quiet_seconds=(0.4, 0.8), workdir=str(tmp_path))
    report = run(cfg)
    text = report.text()
    (tmp_path / "report.txt").write_text(text)
    print(text)
    kinds = [f.kind for f in report.faults]
    assert set(kinds) == set(CLUSTER_FAULT_KINDS), text
    assert sum(by.get("ok", 0) for by in report.counts.values()) > 500, text
    # anything indeterminate is a transient UNAVAILABLE (or a deadline around one), never another error
    assert all(reason.startswith(("UNAVAILABLE", "DEADLINE_EXCEEDED")) for reason in report.info_reasons), text
    assert report.result.valid is True, text
    assert report.result.anomalies == [], text
    # the cache was in use across the faults: both servers served hits from the cluster
    assert len(report.cache) == 2 and all(stats["hits"] > 0 for stats in report.cache), text
