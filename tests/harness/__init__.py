"""Test harness: real redis-server / postgres / `cairn serve` processes (no mocks), from cairn_tools.cluster.

Also: proxy.py (a TCP proxy that partitions and heals), faults.py (kill, pause, partition, Redis rollback,
Postgres restart), history.py (recording histories, and the model), checker.py (checking them for linearizability), workload.py and
coherence.py (the coherence run, `make coherence`)."""

from cairn_tools.cluster import (
    CairnProcess,
    CairnServer,
    ExistingPostgres,
    ExistingRedis,
    HarnessError,
    PgBouncer,
    PostgresReplica,
    PostgresServer,
    RedisCluster,
    RedisServer,
    existing_or_start_postgres,
    existing_or_start_redis,
    find_pg_bindir,
    free_port,
)
from .proxy import TcpProxy

__all__ = [
    "CairnProcess",
    "CairnServer",
    "ExistingPostgres",
    "ExistingRedis",
    "HarnessError",
    "PgBouncer",
    "PostgresReplica",
    "PostgresServer",
    "RedisCluster",
    "RedisServer",
    "TcpProxy",
    "existing_or_start_postgres",
    "existing_or_start_redis",
    "find_pg_bindir",
    "free_port",
]
