"""Fixtures: real redis-server and postgres processes, and a real `cairn serve` per backend combination.

Servers are subprocesses on ephemeral ports (grpc.aio ties itself to one event
loop per process, and a separate process is what users run anyway). Each
backend combination gets a fresh Postgres database.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn_client import AsyncCheckpointClient, CheckpointClient
from tests.harness import (
    CairnProcess, PgBouncer, RedisCluster, existing_or_start_postgres, existing_or_start_redis,
)
from tests.harness.partitioned import create_partitioned_schema

# Every server keeps a near cache by default; "redis+postgres" turns it off so the Redis path alone is tested too.
BACKENDS = ["embedded", "redis+postgres", "redis+postgres+near", "postgres"]
# Postgres as operators scale it out (the contract suite runs on these too): through pgbouncer in transaction
# mode, and on tables hash-partitioned by thread.
SCALE_OUT_BACKENDS = ["pgbouncer", "postgres-partitioned"]


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[object]:
    with existing_or_start_redis() as redis:
        yield redis


@pytest.fixture(scope="session")
def redis_cluster_proc() -> Iterator[RedisCluster]:
    """A Redis Cluster of 3 masters and 3 replicas (tests/harness/processes.py RedisCluster)."""
    with RedisCluster(masters=3, replicas=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_proc() -> Iterator[object]:
    with existing_or_start_postgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def pgbouncer_proc(postgres_proc: object) -> Iterator[PgBouncer]:
    """A pgbouncer (pool_mode = transaction) in front of the session's Postgres."""
    with PgBouncer(postgres_proc) as bouncer:  # type: ignore[arg-type]
        yield bouncer


def new_database(postgres_proc: object) -> str:
    return postgres_proc.create_database(f"cairn_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]


class Backend:
    """What a started server runs on, for tests that reach into the tiers directly."""

    def __init__(self, kind: str, server: CairnProcess, dsn: str | None, redis_url: str | None, sqlite: str | None):
        self.kind, self.server, self.dsn, self.redis_url, self.sqlite_path = kind, server, dsn, redis_url, sqlite

    @property
    def target(self) -> str:
        return self.server.target


@pytest.fixture(scope="session")
def server_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """make(backend, *extra cairn serve flags, **config) -> a started Backend; all stopped at session end.

    config keys are Config field names (max_state_bytes=1000 -> --max-state-bytes 1000)."""
    started: list[CairnProcess] = []

    def make(kind: str, *extra: str, token: str | None = None, **config: object) -> Backend:
        dsn = redis_url = sqlite = None
        args: list[str] = ["--log-level", "WARNING"]
        if kind == "embedded":
            sqlite = str(tmp_path_factory.mktemp("sqlite") / "cairn.db")
            args += ["--sqlite-path", sqlite]
        elif kind == "pgbouncer":
            dsn = new_database(request.getfixturevalue("postgres_proc"))
            # Transaction pooling: no statement prepared in one transaction is there in the next.
            args += ["--postgres-dsn", request.getfixturevalue("pgbouncer_proc").database_dsn(dsn),
                     "--postgres-statement-cache-size", "0"]
        else:
            dsn = new_database(request.getfixturevalue("postgres_proc"))
            if kind == "postgres-partitioned":
                create_partitioned_schema(dsn)
            args += ["--postgres-dsn", dsn]
            if kind.startswith("redis+postgres"):
                redis_url = request.getfixturevalue("redis_proc").url
                args += ["--redis-url", redis_url]
                # The default keeps a near cache and fills Redis on reads only; the plain Redis backend turns the
                # near cache off and fills Redis on saves too (--cache-fill-on-save), so every path is tested.
                args += ["--near-cache-mb", "64"] if kind.endswith("+near") else ["--near-cache-mb", "0",
                                                                                  "--cache-fill-on-save"]
            elif kind == "redis-cluster+postgres":  # near cache off: every read goes to the cluster
                redis_url = request.getfixturevalue("redis_cluster_proc").url
                args += ["--redis-url", redis_url, "--near-cache-mb", "0", "--cache-fill-on-save"]
        for key, value in config.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        # The harness' readiness probe speaks plaintext gRPC; a TLS-only server is probed by TCP alone.
        server = CairnProcess(*args, *extra, token=token, health_check="tls_cert" not in config)
        server.start()
        started.append(server)
        return Backend(kind, server, dsn, redis_url, sqlite)

    yield make
    for server in started:
        with contextlib.suppress(Exception):
            server.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend_server(request: pytest.FixtureRequest, server_factory) -> Backend:  # type: ignore[no-untyped-def]
    """One shared server per backend combination; tests use fresh thread ids."""
    return server_factory(request.param)


@pytest.fixture(scope="session")
def pg_redis_server(server_factory) -> Backend:  # type: ignore[no-untyped-def]
    """A server on Postgres + Redis, shared by the suites that need the production tiers."""
    return server_factory("redis+postgres")


@pytest.fixture
def client(backend_server: Backend) -> Iterator[CheckpointClient]:
    with CheckpointClient(backend_server.target) as c:
        yield c


@pytest.fixture
async def aclient(backend_server: Backend):  # type: ignore[no-untyped-def]
    async with AsyncCheckpointClient(backend_server.target) as c:
        yield c


@pytest.fixture
def thread_id() -> str:
    return f"t-{uuid.uuid4()}"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory path (unix socket paths are limited to ~100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="cairn-", dir="/tmp") as d:
        yield Path(d)
