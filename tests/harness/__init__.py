"""Test harness: real redis-server / postgres / `cairn serve` processes (no mocks). See processes.py."""

from .processes import (
    CairnServer,
    ExistingPostgres,
    ExistingRedis,
    HarnessError,
    PostgresServer,
    RedisServer,
    existing_or_start_postgres,
    existing_or_start_redis,
    find_pg_bindir,
    free_port,
)

__all__ = [
    "CairnServer",
    "ExistingPostgres",
    "ExistingRedis",
    "HarnessError",
    "PostgresServer",
    "RedisServer",
    "existing_or_start_postgres",
    "existing_or_start_redis",
    "find_pg_bindir",
    "free_port",
]
