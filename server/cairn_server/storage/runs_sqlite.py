"""Durable runs on the SQLite cold store (the embedded default).

Runs share the cold store's connection and its one writer thread, so every
run transition, claim and fenced write is serialised with the saves (BEGIN
IMMEDIATE): a fenced save reads the run row in the transaction that writes the
checkpoint, and no claim can come between the check and the commit.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cairn.errors import CairnError, RunIdConflict, RunNotFound, FailedPrecondition
from .sqlite_migrations import apply_migrations
from .runs_base import (
    ACTIVE,
    ATTEMPT_COLUMNS,
    ATTEMPTS_SHOWN,
    PENDING,
    RUN_COLUMNS,
    RUNNING,
    AttemptRow,
    Change,
    Lease,
    RunQuery,
    RunRow,
    claim,
    lease_error,
    sweep,
)

if TYPE_CHECKING:
    from .sqlite import SqliteColdStore

# The runs schema has its own version (table cairn_runs_schema), apart from the checkpoint schema's
# PRAGMA user_version, so the two evolve independently. Ordered: index + 1 is the version. Append only.
RUNS_MIGRATIONS = [
    """
    CREATE TABLE cairn_runs (
        tenant TEXT NOT NULL, run_id TEXT NOT NULL, thread_id TEXT NOT NULL, queue TEXT NOT NULL,
        status TEXT NOT NULL, input BLOB NOT NULL, input_type TEXT NOT NULL, metadata_json TEXT NOT NULL,
        max_attempts INTEGER NOT NULL, initial_backoff_ms INTEGER NOT NULL, backoff_coefficient REAL NOT NULL,
        max_backoff_ms INTEGER NOT NULL, max_recoveries INTEGER NOT NULL, execution_timeout_ms INTEGER NOT NULL,
        request_hash BLOB NOT NULL, created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL,
        not_before_us INTEGER NOT NULL, started_us INTEGER, ended_us INTEGER, attempt_count INTEGER NOT NULL,
        failed_attempt_count INTEGER NOT NULL, recovery_count INTEGER NOT NULL, cancel_requested INTEGER NOT NULL,
        worker_id TEXT NOT NULL, epoch INTEGER NOT NULL, token TEXT NOT NULL, lease_ms INTEGER NOT NULL,
        lease_expires_us INTEGER NOT NULL, deadline_us INTEGER, error_reason TEXT NOT NULL,
        error_type TEXT NOT NULL, error_message TEXT NOT NULL, error_retryable INTEGER NOT NULL,
        output BLOB NOT NULL, output_type TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
        PRIMARY KEY (tenant, run_id)
    );
    CREATE UNIQUE INDEX cairn_runs_active_thread ON cairn_runs (tenant, thread_id)
        WHERE status IN ('PENDING', 'RUNNING');
    CREATE INDEX cairn_runs_claim ON cairn_runs (tenant, queue, status, created_us);
    CREATE INDEX cairn_runs_created ON cairn_runs (tenant, created_us, run_id);
    CREATE TABLE cairn_run_attempts (
        tenant TEXT NOT NULL, run_id TEXT NOT NULL, number INTEGER NOT NULL, worker_id TEXT NOT NULL,
        started_us INTEGER NOT NULL, recovered INTEGER NOT NULL, status TEXT NOT NULL, ended_us INTEGER,
        error_reason TEXT NOT NULL, error_type TEXT NOT NULL, error_message TEXT NOT NULL,
        error_retryable INTEGER NOT NULL,
        PRIMARY KEY (tenant, run_id, number)
    );
    """,
]

_CLAIM_SCAN = 16  # candidates looked at per claim (ended ones, e.g. cancelled while abandoned, are skipped)
_BOOLS = ("cancel_requested", "error_retryable")


def migrate_runs(db: sqlite3.Connection) -> None:
    """Apply the runs migrations not yet applied (called by SqliteColdStore._migrate, on its thread)."""
    db.execute("CREATE TABLE IF NOT EXISTS cairn_runs_schema (version INTEGER NOT NULL)")
    apply_migrations(
        db, RUNS_MIGRATIONS,
        lambda db: db.execute("SELECT coalesce(max(version), 0) FROM cairn_runs_schema").fetchone()[0],
        lambda db, number: db.execute("INSERT INTO cairn_runs_schema (version) VALUES (?)", (number,)),
    )


def _now_us() -> int:
    return time.time_ns() // 1000


def _run(r: sqlite3.Row) -> RunRow:
    values = {name: r[name] for name in RUN_COLUMNS}
    for name in _BOOLS:
        values[name] = bool(values[name])
    values["input"], values["output"], values["request_hash"] = (
        bytes(values["input"]), bytes(values["output"]), bytes(values["request_hash"])
    )
    return RunRow(**values)


def _attempt(r: sqlite3.Row) -> AttemptRow:
    values = {name: r[name] for name in ATTEMPT_COLUMNS}
    values["recovered"], values["error_retryable"] = bool(values["recovered"]), bool(values["error_retryable"])
    return AttemptRow(**values)


def _select(db: sqlite3.Connection, tenant: str, run_id: str) -> RunRow | None:
    r = db.execute("SELECT * FROM cairn_runs WHERE tenant=? AND run_id=?", (tenant, run_id)).fetchone()
    return None if r is None else _run(r)


def fence(db: sqlite3.Connection, tenant: str, lease: Lease, thread_id: str) -> CairnError | None:
    """Why a write under `lease` to `thread_id` may not commit, or None; run inside the write's transaction."""
    return lease_error(_select(db, tenant, lease.run_id), lease, _now_us(), thread_id=thread_id)


_UPDATE = "UPDATE cairn_runs SET " + ", ".join(f"{c}=?" for c in RUN_COLUMNS[2:]) + " WHERE tenant=? AND run_id=?"
_INSERT = f"INSERT INTO cairn_runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
_INSERT_ATTEMPT = (
    f"INSERT INTO cairn_run_attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})"
)
_CLOSE_ATTEMPT = (
    "UPDATE cairn_run_attempts SET status=?, ended_us=?, error_reason=?, error_type=?, error_message=?, "
    "error_retryable=? WHERE tenant=? AND run_id=? AND number=? AND ended_us IS NULL"
)


def _apply(db: sqlite3.Connection, change: Change) -> None:
    run = change.run
    if change.write:
        db.execute(_UPDATE, [getattr(run, c) for c in RUN_COLUMNS[2:]] + [run.tenant, run.run_id])
    a = change.closed_attempt
    if a is not None:
        db.execute(_CLOSE_ATTEMPT, (a.status, a.ended_us, a.error_reason, a.error_type, a.error_message,
                                    a.error_retryable, a.tenant, a.run_id, a.number))
    if change.new_attempt is not None:
        db.execute(_INSERT_ATTEMPT, [getattr(change.new_attempt, c) for c in ATTEMPT_COLUMNS])


class SqliteRuns:
    """RunStore on the SQLite cold store's connection."""

    def __init__(self, cold: SqliteColdStore) -> None:
        self.cold = cold

    async def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return await self.cold._run(self.cold._tx, fn)

    async def start(self, row: RunRow) -> tuple[RunRow, bool]:
        def work(db: sqlite3.Connection) -> tuple[RunRow, bool]:
            existing = _select(db, row.tenant, row.run_id)
            if existing is not None:
                if existing.request_hash != row.request_hash:
                    raise RunIdConflict(
                        f"run {row.run_id!r} already exists with a different request; use a new run id, or "
                        "resend exactly the same StartRun to get the stored run", run_id=row.run_id,
                    )
                return existing, True
            busy = db.execute(
                f"SELECT run_id FROM cairn_runs WHERE tenant=? AND thread_id=? AND status IN {ACTIVE!r}",
                (row.tenant, row.thread_id),
            ).fetchone()
            if busy is not None:
                raise thread_busy(row.thread_id, busy[0])
            db.execute(_INSERT, [getattr(row, c) for c in RUN_COLUMNS])
            return row, False

        return await self._tx(work)  # type: ignore[no-any-return]

    async def claim(self, tenant: str, queue: str, worker_id: str, lease_ms: int) -> list[Change]:
        def work(db: sqlite3.Connection) -> list[Change]:
            now = _now_us()
            rows = db.execute(
                "SELECT * FROM cairn_runs WHERE tenant=? AND queue=? AND ((status=? AND not_before_us<=?) OR "
                "(status=? AND lease_expires_us<=?)) ORDER BY created_us, run_id LIMIT ?",
                (tenant, queue, PENDING, now, RUNNING, now, _CLAIM_SCAN),
            ).fetchall()
            changes: list[Change] = []
            for r in rows:
                change = claim(_run(r), worker_id, lease_ms, now)
                _apply(db, change)
                changes.append(change)
                if change.claimed:
                    break
            return changes

        return await self._tx(work)  # type: ignore[no-any-return]

    async def transition(self, tenant: str, run_id: str, step: Any) -> Change:
        def work(db: sqlite3.Connection) -> Change:
            row = _select(db, tenant, run_id)
            if row is None:
                raise RunNotFound(run_id)
            change: Change = step(row, _now_us())
            _apply(db, change)
            return change

        return await self._tx(work)  # type: ignore[no-any-return]

    async def get(self, tenant: str, run_id: str) -> tuple[RunRow, list[AttemptRow]] | None:
        def work() -> tuple[RunRow, list[AttemptRow]] | None:
            db = self.cold._conn
            row = _select(db, tenant, run_id)
            if row is None:
                return None
            attempts = db.execute(
                "SELECT * FROM cairn_run_attempts WHERE tenant=? AND run_id=? ORDER BY number DESC LIMIT ?",
                (tenant, run_id, ATTEMPTS_SHOWN),
            ).fetchall()
            return row, [_attempt(a) for a in reversed(attempts)]

        return await self.cold._run(work)

    async def list(self, query: RunQuery) -> list[RunRow]:
        def work() -> list[RunRow]:
            sql = "SELECT * FROM cairn_runs WHERE tenant=?"
            args: list[Any] = [query.tenant]
            if query.statuses:
                sql += f" AND status IN ({', '.join('?' * len(query.statuses))})"
                args += query.statuses
            for column, value in (("queue", query.queue), ("thread_id", query.thread_id)):
                if value:
                    sql += f" AND {column}=?"
                    args.append(value)
            if query.created_after_us is not None:
                sql += " AND created_us>=?"
                args.append(query.created_after_us)
            if query.created_before_us is not None:
                sql += " AND created_us<?"
                args.append(query.created_before_us)
            if query.after is not None:
                sql += " AND (created_us<? OR (created_us=? AND run_id<?))"
                args += [query.after[0], query.after[0], query.after[1]]
            sql += " ORDER BY created_us DESC, run_id DESC LIMIT ?"
            args.append(query.limit)
            return [_run(r) for r in self.cold._conn.execute(sql, args)]

        return await self.cold._run(work)

    async def sweep(self, limit: int) -> list[Change]:
        def work(db: sqlite3.Connection) -> list[Change]:
            now = _now_us()
            rows = db.execute(f"SELECT * FROM cairn_runs WHERE {_SWEEPABLE} LIMIT :limit",
                              {"now": now, "limit": limit}).fetchall()
            changes = [sweep(_run(r), now) for r in rows]
            for change in changes:
                _apply(db, change)
            return [c for c in changes if c.write]

        return await self._tx(work)  # type: ignore[no-any-return]

    async def queue_depths(self) -> dict[str, int]:
        def work() -> dict[str, int]:
            now = _now_us()
            rows = self.cold._conn.execute(
                "SELECT queue, count(*) FROM cairn_runs WHERE (status=? AND not_before_us<=?) OR "
                "(status=? AND lease_expires_us<=?) GROUP BY queue",
                (PENDING, now, RUNNING, now),
            ).fetchall()
            return {r[0]: r[1] for r in rows}

        return await self.cold._run(work)


_SWEEPABLE = (
    "(status='PENDING' AND deadline_us IS NOT NULL AND deadline_us <= :now) OR (status='RUNNING' AND "
    "lease_expires_us <= :now AND (cancel_requested OR (deadline_us IS NOT NULL AND deadline_us <= :now)))"
)


def thread_busy(thread_id: str, run_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"thread {thread_id!r} already has an active run {run_id!r} (PENDING or RUNNING); wait for it to end or "
        "cancel it before starting another on the same thread",
        reason="THREAD_BUSY", run_id=run_id,
    )
