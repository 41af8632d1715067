"""Durable runs on the Postgres cold store.

Claiming is a Postgres job queue: the oldest claimable rows of the queue are
locked with FOR UPDATE SKIP LOCKED, so concurrent claimers never wait on each
other or take the same run. A fenced save or PutWrites locks its run rows FOR
SHARE in the write's own transaction, before the write: a claim (which
updates the row) cannot commit between the check and the write, and a write
cannot commit under a lease a committed claim has superseded.

"Now" is the database's clock (clock_timestamp()), so server processes on
several hosts agree on when a lease expired.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from cairn.errors import CairnError, RunIdConflict, RunNotFound
from .records import SaveItem, SaveOutcome, SaveStatus, WritesItem
from .runs_base import (
    ATTEMPT_COLUMNS,
    ATTEMPTS_SHOWN,
    RUN_COLUMNS,
    AttemptRow,
    Change,
    Lease,
    RunQuery,
    RunRow,
    claim,
    lease_error,
    sweep,
)
from .runs_sqlite import thread_busy

if TYPE_CHECKING:
    from .postgres import PostgresColdStore

# Own version table (cairn_runs_schema), apart from the checkpoint schema's. Ordered: index + 1 is the
# version. Never edit a released entry; append.
RUNS_MIGRATIONS = [
    """
    CREATE TABLE cairn_runs (
        tenant text NOT NULL, run_id text NOT NULL, thread_id text NOT NULL, queue text NOT NULL,
        status text NOT NULL, input bytea NOT NULL, input_type text NOT NULL, metadata_json text NOT NULL,
        max_attempts integer NOT NULL, initial_backoff_ms bigint NOT NULL, backoff_coefficient double precision NOT NULL,
        max_backoff_ms bigint NOT NULL, max_recoveries integer NOT NULL, execution_timeout_ms bigint NOT NULL,
        request_hash bytea NOT NULL, created_us bigint NOT NULL, updated_us bigint NOT NULL,
        not_before_us bigint NOT NULL, started_us bigint, ended_us bigint, attempt_count integer NOT NULL,
        failed_attempt_count integer NOT NULL, recovery_count integer NOT NULL, cancel_requested boolean NOT NULL,
        worker_id text NOT NULL, epoch bigint NOT NULL, token text NOT NULL, lease_ms bigint NOT NULL,
        lease_expires_us bigint NOT NULL, deadline_us bigint, error_reason text NOT NULL,
        error_type text NOT NULL, error_message text NOT NULL, error_retryable boolean NOT NULL,
        output bytea NOT NULL, output_type text NOT NULL, checkpoint_id text NOT NULL,
        PRIMARY KEY (tenant, run_id)
    );
    CREATE UNIQUE INDEX cairn_runs_active_thread ON cairn_runs (tenant, thread_id)
        WHERE status IN ('PENDING', 'RUNNING');
    CREATE INDEX cairn_runs_claim ON cairn_runs (tenant, queue, created_us, run_id)
        WHERE status IN ('PENDING', 'RUNNING');
    CREATE INDEX cairn_runs_created ON cairn_runs (tenant, created_us, run_id);
    CREATE TABLE cairn_run_attempts (
        tenant text NOT NULL, run_id text NOT NULL, number integer NOT NULL, worker_id text NOT NULL,
        started_us bigint NOT NULL, recovered boolean NOT NULL, status text NOT NULL, ended_us bigint,
        error_reason text NOT NULL, error_type text NOT NULL, error_message text NOT NULL,
        error_retryable boolean NOT NULL,
        PRIMARY KEY (tenant, run_id, number)
    );
    """,
]

NOW_US = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
_CLAIM_SCAN = 16


async def migrate_runs(conn: asyncpg.Connection) -> None:
    """Apply the runs migrations not yet applied (called inside PostgresColdStore.migrate's transaction, which
    holds the migration advisory lock)."""
    await conn.execute("CREATE TABLE IF NOT EXISTS cairn_runs_schema (version integer NOT NULL)")
    version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM cairn_runs_schema")
    for number, script in enumerate(RUNS_MIGRATIONS[version:], start=version + 1):
        await conn.execute(script)
        await conn.execute("INSERT INTO cairn_runs_schema (version) VALUES ($1)", number)


def _run(r: Any) -> RunRow:
    return RunRow(**{name: r[name] for name in RUN_COLUMNS})


def _attempt(r: Any) -> AttemptRow:
    return AttemptRow(**{name: r[name] for name in ATTEMPT_COLUMNS})


_UPDATE = (
    "UPDATE cairn_runs SET "
    + ", ".join(f"{c}=${i}" for i, c in enumerate(RUN_COLUMNS[2:], start=1))
    + f" WHERE tenant=${len(RUN_COLUMNS) - 1} AND run_id=${len(RUN_COLUMNS)}"
)
_INSERT = (
    f"INSERT INTO cairn_runs ({', '.join(RUN_COLUMNS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(RUN_COLUMNS) + 1))}) ON CONFLICT (tenant, run_id) DO NOTHING"
)
_INSERT_ATTEMPT = (
    f"INSERT INTO cairn_run_attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(ATTEMPT_COLUMNS) + 1))})"
)
_CLOSE_ATTEMPT = (
    "UPDATE cairn_run_attempts SET status=$1, ended_us=$2, error_reason=$3, error_type=$4, error_message=$5, "
    "error_retryable=$6 WHERE tenant=$7 AND run_id=$8 AND number=$9 AND ended_us IS NULL"
)


async def _apply(conn: asyncpg.Connection, change: Change) -> None:
    run = change.run
    if change.write:
        await conn.execute(_UPDATE, *[getattr(run, c) for c in RUN_COLUMNS[2:]], run.tenant, run.run_id)
    a = change.closed_attempt
    if a is not None:
        await conn.execute(_CLOSE_ATTEMPT, a.status, a.ended_us, a.error_reason, a.error_type, a.error_message,
                           a.error_retryable, a.tenant, a.run_id, a.number)
    if change.new_attempt is not None:
        await conn.execute(_INSERT_ATTEMPT, *[getattr(change.new_attempt, c) for c in ATTEMPT_COLUMNS])


async def _fence_many(conn: asyncpg.Connection, checks: list[tuple[str, Lease, str] | None]) -> list[CairnError | None]:
    """Lock (FOR SHARE, in key order) and check the runs of the leased writes; None where a write may commit."""
    keys = sorted({(tenant, lease.run_id) for tenant, lease, _ in filter(None, checks)})
    rows = await conn.fetch(
        f"SELECT r.*, {NOW_US} AS db_now FROM cairn_runs r JOIN unnest($1::text[], $2::text[]) k(t, id) "
        "ON r.tenant = k.t AND r.run_id = k.id ORDER BY r.tenant, r.run_id FOR SHARE OF r",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    found = {(r["tenant"], r["run_id"]): r for r in rows}
    out: list[CairnError | None] = []
    for check in checks:
        if check is None:
            out.append(None)
            continue
        tenant, lease, thread_id = check
        r = found.get((tenant, lease.run_id))
        now = r["db_now"] if r is not None else 0
        out.append(lease_error(None if r is None else _run(r), lease, now, thread_id=thread_id))
    return out


async def fenced_save(cold: PostgresColdStore, items: list[SaveItem]) -> list[SaveOutcome]:
    """Saves of which some carry a run lease: the leases are checked and the rest saved in one transaction."""
    async with cold._conn() as conn, conn.transaction():
        refused = await _fence_many(conn, [
            (i.checkpoint.tenant, i.lease, i.checkpoint.thread_id) if i.lease is not None else None for i in items
        ])
        kept = [item for item, err in zip(items, refused, strict=True) if err is None]
        outcomes = iter(await cold.save(kept, conn) if kept else [])
        return [next(outcomes) if err is None else SaveOutcome(SaveStatus.FENCED, error=err) for err in refused]


async def fenced_put_writes(cold: PostgresColdStore, items: list[WritesItem]) -> list[int | CairnError]:
    """PutWrites of which some carry a run lease, checked and stored in one transaction."""
    async with cold._conn() as conn, conn.transaction():
        refused = await _fence_many(conn, [
            (i.tenant, i.lease, i.thread_id) if i.lease is not None else None for i in items
        ])
        kept = [item for item, err in zip(items, refused, strict=True) if err is None]
        outcomes = iter(await cold.put_writes_many(kept, conn) if kept else [])
        return [next(outcomes) if err is None else err for err in refused]


@contextlib.asynccontextmanager
async def borrowed(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """A connection the caller already holds (in a transaction), for code written against cold._conn()."""
    yield conn


class PostgresRuns:
    """RunStore on the Postgres cold store's pool."""

    def __init__(self, cold: PostgresColdStore) -> None:
        self.cold = cold

    async def _tx(self, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        async with self.cold._conn() as conn, conn.transaction():
            return await fn(conn)

    async def start(self, row: RunRow) -> tuple[RunRow, bool]:
        async def work(conn: asyncpg.Connection) -> tuple[RunRow, bool]:
            try:
                async with conn.transaction():  # a savepoint: a unique violation leaves the transaction usable
                    if await conn.execute(_INSERT, *[getattr(row, c) for c in RUN_COLUMNS]) == "INSERT 0 1":
                        return row, False
            except asyncpg.UniqueViolationError:  # the thread has an active run (cairn_runs_active_thread)
                pass
            existing = await conn.fetchrow("SELECT * FROM cairn_runs WHERE tenant=$1 AND run_id=$2",
                                           row.tenant, row.run_id)
            if existing is not None:
                if bytes(existing["request_hash"]) != row.request_hash:
                    raise RunIdConflict(
                        f"run {row.run_id!r} already exists with a different request; use a new run id, or "
                        "resend exactly the same StartRun to get the stored run", run_id=row.run_id,
                    )
                return _run(existing), True
            busy = await conn.fetchval(
                "SELECT run_id FROM cairn_runs WHERE tenant=$1 AND thread_id=$2 AND status IN ('PENDING', 'RUNNING')",
                row.tenant, row.thread_id,
            )
            raise thread_busy(row.thread_id, busy or "?")

        return await self._tx(work)  # type: ignore[no-any-return]

    async def claim(self, tenant: str, queue: str, worker_id: str, lease_ms: int) -> list[Change]:
        async def work(conn: asyncpg.Connection) -> list[Change]:
            rows = await conn.fetch(
                f"SELECT *, {NOW_US} AS db_now FROM cairn_runs WHERE tenant=$1 AND queue=$2 AND "
                f"status IN ('PENDING', 'RUNNING') AND ((status='PENDING' AND not_before_us <= {NOW_US}) OR "
                f"(status='RUNNING' AND lease_expires_us <= {NOW_US})) ORDER BY created_us, run_id "
                f"LIMIT {_CLAIM_SCAN} FOR UPDATE SKIP LOCKED",
                tenant, queue,
            )
            changes: list[Change] = []
            for r in rows:
                change = claim(_run(r), worker_id, lease_ms, r["db_now"])
                await _apply(conn, change)
                changes.append(change)
                if change.claimed:
                    break
            return changes

        return await self._tx(work)  # type: ignore[no-any-return]

    async def transition(self, tenant: str, run_id: str, step: Any) -> Change:
        async def work(conn: asyncpg.Connection) -> Change:
            r = await conn.fetchrow(
                f"SELECT *, {NOW_US} AS db_now FROM cairn_runs WHERE tenant=$1 AND run_id=$2 FOR UPDATE",
                tenant, run_id,
            )
            if r is None:
                raise RunNotFound(run_id)
            change: Change = step(_run(r), r["db_now"])
            await _apply(conn, change)
            return change

        return await self._tx(work)  # type: ignore[no-any-return]

    async def now_us(self) -> int:
        async with self.cold._conn() as conn:
            return int(await conn.fetchval(f"SELECT {NOW_US}"))

    async def get(self, tenant: str, run_id: str) -> tuple[RunRow, list[AttemptRow]] | None:
        async with self.cold._conn() as conn:
            r = await conn.fetchrow("SELECT * FROM cairn_runs WHERE tenant=$1 AND run_id=$2", tenant, run_id)
            if r is None:
                return None
            attempts = await conn.fetch(
                "SELECT * FROM cairn_run_attempts WHERE tenant=$1 AND run_id=$2 ORDER BY number DESC LIMIT $3",
                tenant, run_id, ATTEMPTS_SHOWN,
            )
        return _run(r), [_attempt(a) for a in reversed(attempts)]

    async def list(self, query: RunQuery) -> list[RunRow]:
        sql = "SELECT * FROM cairn_runs WHERE tenant=$1"
        args: list[Any] = [query.tenant]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.statuses:
            sql += f" AND status = ANY({arg(query.statuses)}::text[])"
        if query.queue:
            sql += f" AND queue={arg(query.queue)}"
        if query.thread_id:
            sql += f" AND thread_id={arg(query.thread_id)}"
        if query.created_after_us is not None:
            sql += f" AND created_us>={arg(query.created_after_us)}"
        if query.created_before_us is not None:
            sql += f" AND created_us<{arg(query.created_before_us)}"
        if query.after is not None:
            sql += f" AND (created_us, run_id) < ({arg(query.after[0])}, {arg(query.after[1])})"
        sql += f" ORDER BY created_us DESC, run_id DESC LIMIT {arg(query.limit)}"
        async with self.cold._conn() as conn:
            return [_run(r) for r in await conn.fetch(sql, *args)]

    async def sweep(self, limit: int) -> list[Change]:
        async def work(conn: asyncpg.Connection) -> list[Change]:
            rows = await conn.fetch(
                f"SELECT *, {NOW_US} AS db_now FROM cairn_runs WHERE status IN ('PENDING', 'RUNNING') AND "
                f"((status='PENDING' AND deadline_us <= {NOW_US}) OR (status='RUNNING' AND lease_expires_us <= "
                f"{NOW_US} AND (cancel_requested OR deadline_us <= {NOW_US}))) LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            changes = [sweep(_run(r), r["db_now"]) for r in rows]
            for change in changes:
                await _apply(conn, change)
            return [c for c in changes if c.write]

        return await self._tx(work)  # type: ignore[no-any-return]

    async def queue_depths(self) -> dict[str, int]:
        async with self.cold._conn() as conn:
            rows = await conn.fetch(
                f"SELECT queue, count(*) AS n FROM cairn_runs WHERE status IN ('PENDING', 'RUNNING') AND "
                f"((status='PENDING' AND not_before_us <= {NOW_US}) OR "
                f"(status='RUNNING' AND lease_expires_us <= {NOW_US})) GROUP BY queue"
            )
        return {r["queue"]: r["n"] for r in rows}

