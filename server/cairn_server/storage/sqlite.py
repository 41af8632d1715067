"""SQLite cold store: the embedded default, one file, no server to run.

sqlite3 is blocking, so every call runs on one dedicated thread (SQLite
serialises writers anyway); the event loop awaits it. WAL with
synchronous=FULL: an acknowledged save survives a crash of the process or host.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar

from cairn.errors import CairnError, TargetNotEmpty, Unavailable
from .records import (
    ListQuery,
    RetentionCursor,
    SaveItem,
    SaveOutcome,
    SaveStatus,
    StoredCheckpoint,
    StoredWrite,
    ThreadSummary,
    WritesItem,
)
from .rows import checkpoint_from_row, within_budget, write_from_row
from .failures import missing_checkpoint, write_conflict
from .prune import outside_head_chains
from .freshness import ThreadVersion, VersionKey
from .jsonmatch import json_contains
from .sqlite_migrations import apply_migrations
from .runs_sqlite import fence, migrate_runs

T = TypeVar("T")

# Ordered list: index + 1 is the schema version (PRAGMA user_version).
MIGRATIONS = [
    """
    CREATE TABLE cairn_threads (
        tenant TEXT NOT NULL, thread_id TEXT NOT NULL, namespace TEXT NOT NULL,
        last_sequence INTEGER NOT NULL, updated_us INTEGER NOT NULL,
        PRIMARY KEY (tenant, thread_id, namespace)
    );
    CREATE TABLE cairn_checkpoints (
        row_id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL, thread_id TEXT NOT NULL, namespace TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT NOT NULL, sequence INTEGER NOT NULL, created_us INTEGER NOT NULL,
        state_type TEXT NOT NULL, node_name TEXT NOT NULL, next_nodes TEXT NOT NULL, metadata TEXT NOT NULL,
        codec INTEGER NOT NULL, raw_size INTEGER NOT NULL, checksum INTEGER NOT NULL, content_hash BLOB NOT NULL,
        state BLOB NOT NULL,
        UNIQUE (tenant, thread_id, namespace, checkpoint_id)
    );
    CREATE INDEX cairn_checkpoints_thread_row ON cairn_checkpoints (tenant, thread_id, row_id DESC);
    CREATE TABLE cairn_writes (
        tenant TEXT NOT NULL, thread_id TEXT NOT NULL, namespace TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL, idx INTEGER NOT NULL, task_path TEXT NOT NULL, channel TEXT NOT NULL,
        value_type TEXT NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread_id, namespace, checkpoint_id, task_id, idx),
        FOREIGN KEY (tenant, thread_id, namespace, checkpoint_id)
            REFERENCES cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id) ON DELETE CASCADE
    );
    """,
    """
    CREATE TABLE cairn_dictionaries (
        dict_id INTEGER PRIMARY KEY, created_us INTEGER NOT NULL, samples INTEGER NOT NULL, data BLOB NOT NULL
    );
    """,
    # DeleteRuns finds a run's checkpoints by this index instead of testing every row's metadata in Python.
    """
    CREATE INDEX cairn_checkpoints_run ON cairn_checkpoints (tenant, json_extract(metadata, '$.run_id'));
    """,
    # List across threads walks a tenant's checkpoints newest first and stops at its page, instead of sorting all
    # of them, so a page costs the same however many the tenant has. Unlike Postgres without statistics,
    # SQLite still answers an exact lookup from the unique index (EXPLAIN QUERY PLAN).
    """
    CREATE INDEX cairn_checkpoints_tenant_row ON cairn_checkpoints (tenant, row_id);
    """,
    # Freshness (freshness.py): every change of a thread stamps its row here with a new number from one counter,
    # in the change's own transaction (SQLite runs one writer at a time). Rows outlive Clear.
    """
    CREATE TABLE cairn_versions (
        tenant TEXT NOT NULL, thread_id TEXT NOT NULL, version INTEGER NOT NULL, clobbered INTEGER NOT NULL,
        PRIMARY KEY (tenant, thread_id)
    );
    CREATE TABLE cairn_version_counter (n INTEGER NOT NULL);
    INSERT INTO cairn_version_counter VALUES (0);
    """,
    # The fingerprint of each encryption key id a server was given (a server given another key under a known id
    # refuses to start), and corrupt checkpoints moved aside by QuarantineCheckpoint (kept, never deleted).
    """
    CREATE TABLE cairn_keys (key_id TEXT PRIMARY KEY, fingerprint BLOB NOT NULL, created_us INTEGER NOT NULL);
    CREATE TABLE cairn_quarantine (
        quarantine_id INTEGER PRIMARY KEY AUTOINCREMENT, quarantined_us INTEGER NOT NULL, reason TEXT NOT NULL,
        tenant TEXT NOT NULL, thread_id TEXT NOT NULL, namespace TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT NOT NULL, sequence INTEGER NOT NULL, created_us INTEGER NOT NULL,
        state_type TEXT NOT NULL, node_name TEXT NOT NULL, next_nodes TEXT NOT NULL, metadata TEXT NOT NULL,
        codec INTEGER NOT NULL, raw_size INTEGER NOT NULL, checksum INTEGER NOT NULL, content_hash BLOB NOT NULL,
        state BLOB NOT NULL
    );
    """,
    # A thread's head is its namespace's highest per-thread sequence (as on Postgres, where row_id is a global
    # sequence a partitioned or distributed database does not order); cairn_retention holds the retention
    # runner's lease and cursors (retention.py).
    """
    CREATE INDEX cairn_checkpoints_head ON cairn_checkpoints (tenant, thread_id, namespace, sequence DESC);
    CREATE INDEX cairn_versions_version ON cairn_versions (version);
    CREATE TABLE cairn_retention (
        job TEXT PRIMARY KEY, holder TEXT NOT NULL DEFAULT '', expires_us INTEGER NOT NULL DEFAULT 0,
        version_cursor INTEGER NOT NULL DEFAULT 0, tenant_cursor TEXT NOT NULL DEFAULT '',
        thread_cursor TEXT NOT NULL DEFAULT ''
    );
    """,
]

# Of checkpoints `c`: created before the cutoff (a parameter) and not their namespace's head (retention by age).
_EXPIRED = (
    "c.created_us < ? AND c.sequence < (SELECT max(h.sequence) FROM cairn_checkpoints h "
    "WHERE h.tenant = c.tenant AND h.thread_id = c.thread_id AND h.namespace = c.namespace)"
)

_QUARANTINED = (
    "tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, sequence, created_us, state_type, node_name, "
    "next_nodes, metadata, codec, raw_size, checksum, content_hash, state"
)
_COLS = (
    "row_id, tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, sequence, created_us, "
    "state_type, node_name, next_nodes, metadata, codec, raw_size, checksum, content_hash, "
    "length(state) AS stored_bytes"
)


def _us_now() -> int:
    return time.time_ns() // 1000


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc)


def _row_to_checkpoint(r: Any, with_state: bool) -> StoredCheckpoint:
    return checkpoint_from_row(r, with_state, _dt(r["created_us"]), json.loads(r["next_nodes"]))


def _sqlite_json_contains(doc: str, flt: str) -> int:
    return 1 if json_contains(json.loads(doc), json.loads(flt)) else 0


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_JSON_TYPE = {True: "'true'", False: "'false'", None: "'null'"}


def _contains_sql(column: str, filter_json: str, params: list[Any] | dict[str, Any]) -> str:
    """SQL for `column @> filter` (Postgres containment, as json_contains): one json_type/json_extract test per
    object key and scalar, which SQLite runs in C, instead of a Python call per row. A list, or a key a JSON path
    would need to quote, adds json_contains on the rows the other tests let through. Adds its parameters to
    `params` (qmark or named style). Paths are written out (plain keys only, so they need no quoting), which
    lets an index on the same expression serve them: {"run_id": ...} uses cairn_checkpoints_run."""
    def param(value: Any) -> str:
        if isinstance(params, list):
            params.append(value)
            return "?"
        name = f"contains{len(params)}"
        params[name] = value
        return ":" + name

    terms: list[str] = []
    exact = True

    def walk(path: str, value: Any) -> None:
        nonlocal exact
        kind = f"json_type({column}, '{path}')" if path != "$" else ""
        if isinstance(value, dict):
            if kind:
                terms.append(f"{kind} = 'object'")
            for key, item in value.items():
                if _PLAIN_KEY.match(key):
                    walk(f"{path}.{key}", item)
                else:
                    exact = False
        elif isinstance(value, list):
            terms.append(f"{kind} = 'array'")
            exact = False
        elif value is None or isinstance(value, bool):
            terms.append(f"{kind} = {_JSON_TYPE[value]}")
        else:  # a number compares as a number (1 = 1.0, as jsonb), a string exactly
            types = "IN ('integer', 'real')" if isinstance(value, (int, float)) else "= 'text'"
            terms.append(f"{kind} {types} AND json_extract({column}, '{path}') = {param(value)}")

    flt = json.loads(filter_json)
    if not isinstance(flt, dict):  # no key to test (metadata is always an object): json_contains decides
        return f"json_contains({column}, {param(filter_json)})"
    walk("$", flt)
    if not exact:
        terms.append(f"json_contains({column}, {param(filter_json)})")
    return "(" + " AND ".join(terms) + ")" if terms else "1"


def _enable_wal(db: sqlite3.Connection, patience_seconds: float = 5.0) -> None:
    """Switch the file to WAL. On a new file that `--workers N` processes open together, the switch can answer
    "database is locked" at once, without the busy handler, while another process holds the file: try again."""
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteColdStore:
    """ColdStore on a SQLite file."""

    name = "sqlite"
    max_inflight = 1  # one writer thread: everything queued behind it commits together

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-sqlite")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: str, migrate: bool = True) -> SqliteColdStore:
        store = cls(path)
        await store._run(store._connect, migrate)
        return store

    def _connect(self, migrate: bool) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        _enable_wal(db)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.create_function("json_contains", 2, _sqlite_json_contains, deterministic=True)
        self._db = db
        if migrate:
            self._migrate()

    def _migrate(self) -> None:
        db = self._conn
        apply_migrations(
            db, MIGRATIONS, lambda db: db.execute("PRAGMA user_version").fetchone()[0],
            lambda db, number: db.execute(f"PRAGMA user_version = {number}"),
        )
        migrate_runs(db)

    @property
    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "store is closed"
        return self._db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error: retryable
            raise Unavailable(f"SQLite store {self.path} failed: {exc}") from exc

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- writes -------------------------------------------------------------

    @staticmethod
    def _bump(db: sqlite3.Connection, tenant: str, thread_id: str, clobber: bool) -> int:
        """Stamp a change of the thread (freshness.py); `clobber` for every change but inserting new checkpoints."""
        version = db.execute("UPDATE cairn_version_counter SET n = n + 1 RETURNING n").fetchone()[0]
        db.execute(
            "INSERT INTO cairn_versions VALUES (?, ?, ?, ?) ON CONFLICT (tenant, thread_id) DO UPDATE SET "
            "version = excluded.version, clobbered = CASE WHEN ? THEN excluded.version ELSE clobbered END",
            (tenant, thread_id, version, version if clobber else 0, clobber),
        )
        return int(version)

    @staticmethod
    def _version(db: sqlite3.Connection, tenant: str, thread_id: str) -> int:
        row = db.execute(
            "SELECT version FROM cairn_versions WHERE tenant=? AND thread_id=?", (tenant, thread_id)
        ).fetchone()
        return int(row[0]) if row else 0

    async def save(self, items: list[SaveItem]) -> list[SaveOutcome]:
        return await self._run(self._tx, lambda db: [self._fenced(db, item) or self._save_one(db, item)
                                                     for item in items])

    @staticmethod
    def _fenced(db: sqlite3.Connection, item: SaveItem) -> SaveOutcome | None:
        """A save under a run lease that is no longer current is refused, checked in the save's transaction."""
        if item.lease is None:
            return None
        err = fence(db, item.checkpoint.tenant, item.lease, item.checkpoint.thread_id)
        return None if err is None else SaveOutcome(SaveStatus.FENCED, error=err)

    @staticmethod
    def _head(db: sqlite3.Connection, tenant: str, thread_id: str, namespace: str) -> str:
        row = db.execute(
            "SELECT checkpoint_id FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? "
            "ORDER BY sequence DESC LIMIT 1",
            (tenant, thread_id, namespace),
        ).fetchone()
        return row[0] if row else ""

    def _save_one(self, db: sqlite3.Connection, item: SaveItem) -> SaveOutcome:
        cp = item.checkpoint
        key = (cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id)
        existing = db.execute(
            "SELECT sequence, created_us, content_hash FROM cairn_checkpoints "
            "WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=?",
            key,
        ).fetchone()
        if existing is not None:
            seq, created = existing["sequence"], _dt(existing["created_us"])
            if bytes(existing["content_hash"]) == cp.content_hash:
                return SaveOutcome(SaveStatus.EXISTS, seq, created, version=self._version(db, cp.tenant, cp.thread_id))
            if not item.replace_existing:
                return SaveOutcome(SaveStatus.CONFLICT, seq, created)
            db.execute(
                "UPDATE cairn_checkpoints SET parent_checkpoint_id=?, state_type=?, node_name=?, next_nodes=?, "
                "metadata=?, codec=?, raw_size=?, checksum=?, content_hash=?, state=? "
                "WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=?",
                (
                    cp.parent_checkpoint_id, cp.state_type, cp.node_name, json.dumps(cp.next_nodes),
                    cp.metadata_json, cp.codec, cp.raw_size, cp.checksum, cp.content_hash, cp.state, *key,
                ),
            )
            return SaveOutcome(SaveStatus.REPLACED, seq, created, version=self._bump(db, cp.tenant, cp.thread_id, True))
        if item.expected_head_id is not None or item.expect_empty:
            head = self._head(db, cp.tenant, cp.thread_id, cp.namespace)
            wanted = "" if item.expect_empty else item.expected_head_id
            if head != wanted:
                return SaveOutcome(SaveStatus.HEAD_MOVED, current_head_id=head)
        now = _us_now()
        seq = db.execute(
            "INSERT INTO cairn_threads (tenant, thread_id, namespace, last_sequence, updated_us) VALUES (?,?,?,1,?) "
            "ON CONFLICT (tenant, thread_id, namespace) DO UPDATE SET last_sequence = last_sequence + 1, "
            "updated_us = excluded.updated_us RETURNING last_sequence",
            (cp.tenant, cp.thread_id, cp.namespace, now),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, "
            "sequence, created_us, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum, "
            "content_hash, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                *key, cp.parent_checkpoint_id, seq, now, cp.state_type, cp.node_name, json.dumps(cp.next_nodes),
                cp.metadata_json, cp.codec, cp.raw_size, cp.checksum, cp.content_hash, cp.state,
            ),
        )
        return SaveOutcome(SaveStatus.INSERTED, seq, _dt(now), version=self._bump(db, cp.tenant, cp.thread_id, False))

    async def put_writes_many(self, items: list[WritesItem]) -> list[int | CairnError]:
        """One transaction (one fsync) for the batch; a savepoint per item, so an item that fails stores nothing
        and the others still commit."""
        def work(db: sqlite3.Connection) -> list[int | CairnError]:
            out: list[int | CairnError] = []
            for item in items:
                db.execute("SAVEPOINT item")
                try:
                    out.append(self._put_writes(db, item))
                except CairnError as err:
                    db.execute("ROLLBACK TO item")
                    out.append(err)
                db.execute("RELEASE item")
            return out

        return await self._run(self._tx, work)

    @staticmethod
    def _put_writes(db: sqlite3.Connection, item: WritesItem) -> int:
        tenant, thread_id, namespace, checkpoint_id = item.tenant, item.thread_id, item.namespace, item.checkpoint_id
        replace, writes = item.replace, item.writes
        if item.lease is not None and (refused := fence(db, tenant, item.lease, thread_id)) is not None:
            raise refused
        if not db.execute(
            "SELECT 1 FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=?",
            (tenant, thread_id, namespace, checkpoint_id),
        ).fetchone():
            raise missing_checkpoint(thread_id, namespace, checkpoint_id)
        written = 0
        for w in writes:
            key = (tenant, thread_id, namespace, checkpoint_id, w.task_id, w.idx)
            old = db.execute(
                "SELECT channel, value_type, value, task_path FROM cairn_writes WHERE tenant=? AND thread_id=? "
                "AND namespace=? AND checkpoint_id=? AND task_id=? AND idx=?",
                key,
            ).fetchone()
            if old is not None:
                same = (old[0], old[1], bytes(old[2])) == (w.channel, w.value_type, w.value)
                if same:
                    continue
                if not replace:
                    raise write_conflict(w)
                db.execute(
                    "UPDATE cairn_writes SET channel=?, value_type=?, value=?, task_path=? WHERE tenant=? "
                    "AND thread_id=? AND namespace=? AND checkpoint_id=? AND task_id=? AND idx=?",
                    (w.channel, w.value_type, w.value, w.task_path, *key),
                )
            else:
                db.execute(
                    "INSERT INTO cairn_writes (tenant, thread_id, namespace, checkpoint_id, task_id, idx, "
                    "task_path, channel, value_type, value) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (*key, w.task_path, w.channel, w.value_type, w.value),
                )
            written += 1
        if written:
            SqliteColdStore._bump(db, tenant, thread_id, True)
        return written

    async def delete(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "DELETE FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=?",
                (tenant, thread_id, namespace, checkpoint_id),
            )
            if cur.rowcount == 0:
                return False
            self._bump(db, tenant, thread_id, True)
            return True

        return await self._run(self._tx, work)

    async def clear(self, tenant: str, thread_id: str) -> int:
        def work(db: sqlite3.Connection) -> int:
            n = db.execute(
                "DELETE FROM cairn_checkpoints WHERE tenant=? AND thread_id=?", (tenant, thread_id)
            ).rowcount
            db.execute("DELETE FROM cairn_threads WHERE tenant=? AND thread_id=?", (tenant, thread_id))
            self._bump(db, tenant, thread_id, True)
            return n

        return await self._run(self._tx, work)

    async def copy_thread(self, tenant: str, source: str, target: str, reseal: Any = None) -> int:
        def work(db: sqlite3.Connection) -> int:
            if db.execute(
                "SELECT 1 FROM cairn_checkpoints WHERE tenant=? AND thread_id=? LIMIT 1", (tenant, target)
            ).fetchone():
                raise TargetNotEmpty(
                    f"target thread {target!r} already has checkpoints; clear it first or copy into a new thread id"
                )
            n = db.execute(
                "INSERT INTO cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, "
                "sequence, created_us, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum, "
                "content_hash, state) SELECT tenant, ?, namespace, checkpoint_id, parent_checkpoint_id, sequence, "
                "created_us, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum, content_hash, "
                "state FROM cairn_checkpoints WHERE tenant=? AND thread_id=? ORDER BY row_id",
                (target, tenant, source),
            ).rowcount
            db.execute(
                "INSERT INTO cairn_writes SELECT tenant, ?, namespace, checkpoint_id, task_id, idx, task_path, "
                "channel, value_type, value FROM cairn_writes WHERE tenant=? AND thread_id=?",
                (target, tenant, source),
            )
            # A target emptied by Delete keeps its heads' last sequences: the next save must still go past the
            # copied head's.
            db.execute(
                "INSERT INTO cairn_threads SELECT tenant, ?, namespace, last_sequence, ? FROM cairn_threads "
                "WHERE tenant=? AND thread_id=? ON CONFLICT (tenant, thread_id, namespace) DO UPDATE SET "
                "last_sequence = max(last_sequence, excluded.last_sequence), updated_us = excluded.updated_us",
                (target, _us_now(), tenant, source),
            )
            if reseal is not None:
                for r in db.execute("SELECT row_id, namespace, checkpoint_id, codec, state FROM cairn_checkpoints "
                                    "WHERE tenant=? AND thread_id=?", (tenant, target)).fetchall():
                    db.execute("UPDATE cairn_checkpoints SET state=? WHERE row_id=?",
                               (reseal(r[1], r[2], r[3], bytes(r[4])), r[0]))
                for w in db.execute("SELECT rowid, namespace, checkpoint_id, task_id, idx, value FROM cairn_writes "
                                    "WHERE tenant=? AND thread_id=?", (tenant, target)).fetchall():
                    db.execute("UPDATE cairn_writes SET value=? WHERE rowid=?",
                               (reseal(w[1], w[2], None, bytes(w[5]), (w[3], w[4])), w[0]))
            self._bump(db, tenant, target, True)
            return n

        return await self._run(self._tx, work)

    async def prune(self, tenant: str, thread_ids: list[str], keep: int | None) -> int:
        def work(db: sqlite3.Connection) -> int:
            removed = 0
            for thread_id in thread_ids:
                if keep is None:
                    removed += db.execute(
                        "DELETE FROM cairn_checkpoints WHERE tenant=? AND thread_id=?", (tenant, thread_id)
                    ).rowcount
                    db.execute("DELETE FROM cairn_threads WHERE tenant=? AND thread_id=?", (tenant, thread_id))
                    self._bump(db, tenant, thread_id, True)
                    continue
                rows = db.execute(
                    "SELECT row_id, namespace, checkpoint_id, parent_checkpoint_id FROM cairn_checkpoints "
                    "WHERE tenant=? AND thread_id=? ORDER BY namespace, sequence DESC",
                    (tenant, thread_id),
                ).fetchall()
                doomed = [r for r in outside_head_chains(rows, keep)]
                deleted = sum(db.execute("DELETE FROM cairn_checkpoints WHERE row_id=?", (row_id,)).rowcount
                              for row_id in doomed)
                if deleted:
                    self._bump(db, tenant, thread_id, True)
                removed += deleted
            return removed

        return await self._run(self._tx, work)

    async def delete_runs(self, tenant: str, run_ids: list[str]) -> tuple[int, set[str]]:
        def work(db: sqlite3.Connection) -> tuple[int, set[str]]:
            threads: set[str] = set()
            removed = 0
            for run_id in run_ids:
                args: list[Any] = [tenant]
                matches = _contains_sql("metadata", json.dumps({"run_id": run_id}), args)
                rows = db.execute(
                    f"SELECT row_id, thread_id FROM cairn_checkpoints WHERE tenant=? AND {matches}", args
                ).fetchall()
                for r in rows:
                    db.execute("DELETE FROM cairn_checkpoints WHERE row_id=?", (r[0],))
                    threads.add(r[1])
                removed += len(rows)
            for thread_id in threads:
                self._bump(db, tenant, thread_id, True)
            return removed, threads

        return await self._run(self._tx, work)

    # -- retention (retention.py): the same lease and cursors as on Postgres --------------------------------

    async def retention_lease(self, job: str, holder: str, ttl_seconds: float) -> RetentionCursor | None:
        now = _us_now()

        def work(db: sqlite3.Connection) -> RetentionCursor | None:
            db.execute("INSERT INTO cairn_retention (job) VALUES (?) ON CONFLICT DO NOTHING", (job,))
            row = db.execute(
                "UPDATE cairn_retention SET holder = ?, expires_us = ? "
                "WHERE job = ? AND (holder = ? OR expires_us < ?) "
                "RETURNING version_cursor, tenant_cursor, thread_cursor",
                (holder, now + int(ttl_seconds * 1e6), job, holder, now),
            ).fetchone()
            return None if row is None else RetentionCursor(row[0], (row[1], row[2]))

        return await self._run(self._tx, work)

    async def retention_advance(self, job: str, holder: str, cursor: RetentionCursor, ttl_seconds: float) -> bool:
        now = _us_now()

        def work(db: sqlite3.Connection) -> bool:
            return db.execute(
                "UPDATE cairn_retention SET version_cursor = ?, tenant_cursor = ?, thread_cursor = ?, expires_us = ? "
                "WHERE job = ? AND holder = ? AND expires_us >= ?",
                (cursor.version, *cursor.thread, now + int(ttl_seconds * 1e6), job, holder, now),
            ).rowcount == 1

        return await self._run(self._tx, work)

    async def retention_release(self, job: str, holder: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE cairn_retention SET expires_us = 0 WHERE job = ? AND holder = ?", (job, holder))

        await self._run(self._tx, work)

    async def threads_changed(self, after_version: int, max_per_head: int, limit: int
                              ) -> tuple[int, list[tuple[str, str]]]:
        def work() -> tuple[int, list[tuple[str, str]]]:
            changed = self._conn.execute(
                "SELECT tenant, thread_id, version FROM cairn_versions WHERE version > ? ORDER BY version LIMIT ?",
                (after_version, limit),
            ).fetchall()
            if not changed:
                return after_version, []
            over = [
                (tenant, thread_id) for tenant, thread_id, _ in changed
                if self._conn.execute(
                    "SELECT 1 FROM cairn_checkpoints WHERE tenant = ? AND thread_id = ? GROUP BY namespace "
                    "HAVING count(*) > ? LIMIT 1", (tenant, thread_id, max_per_head),
                ).fetchone()
            ]
            return changed[-1][2], over

        return await self._run(work)

    async def threads_after(self, after: tuple[str, str], cutoff: datetime, limit: int
                            ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
        cutoff_us = int(cutoff.timestamp() * 1e6)

        def work() -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
            batch = self._conn.execute(
                "SELECT tenant, thread_id FROM cairn_versions WHERE (tenant, thread_id) > (?, ?) "
                "ORDER BY tenant, thread_id LIMIT ?", (*after, limit),
            ).fetchall()
            if not batch:
                return None, []
            old = [
                (tenant, thread_id) for tenant, thread_id in batch
                if self._conn.execute(
                    f"SELECT 1 FROM cairn_checkpoints c WHERE c.tenant = ? AND c.thread_id = ? AND {_EXPIRED} LIMIT 1",
                    (tenant, thread_id, cutoff_us),
                ).fetchone()
            ]
            return (batch[-1][0], batch[-1][1]), old

        return await self._run(work)

    async def delete_older_than(self, tenant: str, thread_id: str, cutoff: datetime) -> int:
        cutoff_us = int(cutoff.timestamp() * 1e6)

        def work(db: sqlite3.Connection) -> int:
            removed = db.execute(
                f"DELETE FROM cairn_checkpoints AS c WHERE c.tenant = ? AND c.thread_id = ? AND {_EXPIRED}",
                (tenant, thread_id, cutoff_us),
            ).rowcount
            if removed:
                self._bump(db, tenant, thread_id, True)
            return removed

        return await self._run(self._tx, work)

    # -- reads --------------------------------------------------------------

    async def versions(self, keys: list[VersionKey]) -> list[ThreadVersion]:
        def work() -> list[ThreadVersion]:
            db = self._conn
            out = []
            for tenant, thread_id, namespace, want_head in keys:
                row = db.execute(
                    "SELECT version, clobbered FROM cairn_versions WHERE tenant=? AND thread_id=?", (tenant, thread_id)
                ).fetchone()
                head = (self._head(db, tenant, thread_id, namespace) or None) if want_head else None
                out.append(ThreadVersion(row[0], row[1], head) if row else ThreadVersion(0, 0, head))
            return out

        return await self._run(work)

    async def load(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[StoredCheckpoint, list[StoredWrite]] | None:
        def work() -> tuple[StoredCheckpoint, list[StoredWrite]] | None:
            db = self._conn
            if checkpoint_id:
                row = db.execute(
                    f"SELECT {_COLS}, state FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? "
                    "AND checkpoint_id=?",
                    (tenant, thread_id, namespace, checkpoint_id),
                ).fetchone()
            else:
                row = db.execute(
                    f"SELECT {_COLS}, state FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? "
                    "ORDER BY sequence DESC LIMIT 1",
                    (tenant, thread_id, namespace),
                ).fetchone()
            if row is None:
                return None
            cp = _row_to_checkpoint(row, with_state=True)
            writes = [
                write_from_row(w)
                for w in db.execute(
                    "SELECT * FROM cairn_writes WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=? "
                    "ORDER BY task_path, task_id, idx",
                    (tenant, thread_id, namespace, cp.checkpoint_id),
                )
            ]
            return cp, writes

        return await self._run(work)

    async def dictionaries(self) -> list[tuple[int, bytes]]:
        def work() -> list[tuple[int, bytes]]:
            rows = self._conn.execute("SELECT dict_id, data FROM cairn_dictionaries ORDER BY created_us, dict_id")
            return [(r[0], bytes(r[1])) for r in rows]

        return await self._run(work)

    async def add_dictionary(self, dict_id: int, data: bytes, samples: int) -> None:
        def work() -> None:
            with self._conn:
                self._conn.execute(
                    "INSERT INTO cairn_dictionaries (dict_id, created_us, samples, data) VALUES (?, ?, ?, ?)",
                    (dict_id, _us_now(), samples, data),
                )

        await self._run(work)

    async def recent_states(self, limit: int) -> list[StoredCheckpoint]:
        def work() -> list[StoredCheckpoint]:
            rows = self._conn.execute(
                f"SELECT {_COLS}, state FROM cairn_checkpoints ORDER BY row_id DESC LIMIT ?", (limit,)
            )
            return [_row_to_checkpoint(r, True) for r in rows]

        return await self._run(work)

    async def row_id_of(self, tenant: str, thread_id: str, namespace: str | None, checkpoint_id: str) -> int | None:
        def work() -> int | None:
            sql = "SELECT max(row_id) FROM cairn_checkpoints WHERE tenant=? AND checkpoint_id=?"
            args: list[Any] = [tenant, checkpoint_id]
            if thread_id:
                sql += " AND thread_id=?"
                args.append(thread_id)
            if namespace is not None:
                sql += " AND namespace=?"
                args.append(namespace)
            return self._conn.execute(sql, args).fetchone()[0]

        return await self._run(work)

    async def list_checkpoints(self, query: ListQuery) -> tuple[list[StoredCheckpoint], list[StoredWrite]]:
        def work() -> tuple[list[StoredCheckpoint], list[StoredWrite]]:
            db = self._conn
            budgeted = query.include_state and query.max_bytes > 0  # states fetched below, within the budget
            cols = _COLS + (", state" if query.include_state and not budgeted else "")
            sql = f"SELECT {cols} FROM cairn_checkpoints WHERE tenant=?"
            args: list[Any] = [query.tenant]
            if query.thread_id:
                sql += " AND thread_id=?"
                args.append(query.thread_id)
            if query.namespace is not None:
                sql += " AND namespace=?"
                args.append(query.namespace)
            for bound in (query.before_row_id, query.after_row_id):
                if bound is not None:
                    sql += " AND row_id<?"
                    args.append(bound)
            if query.metadata_filter_json is not None:
                sql += " AND " + _contains_sql("metadata", query.metadata_filter_json, args)
            sql += " ORDER BY row_id DESC LIMIT ?"
            args.append(query.limit)
            cps = [_row_to_checkpoint(r, query.include_state and not budgeted) for r in db.execute(sql, args)]
            if budgeted:
                kept = within_budget(cps, query.max_bytes)
                for cp in cps[:kept]:
                    found = db.execute("SELECT state FROM cairn_checkpoints WHERE row_id=?", (cp.row_id,)).fetchone()
                    if found is None:  # deleted meanwhile: the page ends before it
                        cp.state_omitted = True
                        break
                    cp.state = bytes(found[0])
                for cp in cps[kept:]:
                    cp.state_omitted = True
            writes: list[StoredWrite] = []
            if query.include_writes:
                for cp in cps:
                    if cp.state_omitted:
                        break
                    writes.extend(
                        write_from_row(w)
                        for w in db.execute(
                            "SELECT * FROM cairn_writes WHERE tenant=? AND thread_id=? AND namespace=? "
                            "AND checkpoint_id=? ORDER BY task_path, task_id, idx",
                            (cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id),
                        )
                    )
            return cps, writes

        return await self._run(work)

    async def list_threads(
        self, tenant: str, limit: int, after: tuple[datetime, str] | None, metadata_filter_json: str | None
    ) -> list[ThreadSummary]:
        def work() -> list[ThreadSummary]:
            # Threads newest first, looked up a chunk at a time (head, filter, count in one statement per chunk):
            # a page costs one lookup, and a filter that matches few threads does not cost two queries for
            # every thread it skips. Threads whose checkpoints were all deleted have no head and drop out.
            db = self._conn
            au = int(after[0].timestamp() * 1e6) if after is not None else None
            threads = db.execute(
                "SELECT thread_id, max(updated_us) AS u FROM cairn_threads WHERE tenant = :tenant GROUP BY thread_id "
                "HAVING :au IS NULL OR u < :au OR (u = :au AND thread_id > :after_id) ORDER BY u DESC, thread_id",
                {"tenant": tenant, "au": au, "after_id": after[1] if after else ""},
            )
            out: list[ThreadSummary] = []
            params: dict[str, Any] = {"tenant": tenant}
            matches = "1" if metadata_filter_json is None else _contains_sql("h.metadata", metadata_filter_json, params)
            while len(out) < limit and (chunk := threads.fetchmany(max(limit, 64))):
                params["ids"] = json.dumps([thread_id for thread_id, _ in chunk])
                heads = {row[0]: row[1:] for row in db.execute(
                    """
                    SELECT t.value, h.checkpoint_id, h.metadata, h.node_name, h.next_nodes,
                           (SELECT count(*) FROM cairn_checkpoints c WHERE c.tenant = :tenant AND c.thread_id = t.value)
                    FROM json_each(:ids) t
                    JOIN cairn_checkpoints h ON h.row_id = (
                        SELECT row_id FROM cairn_checkpoints c WHERE c.tenant = :tenant AND c.thread_id = t.value
                        ORDER BY (c.namespace = '') DESC, c.sequence DESC, c.created_us DESC LIMIT 1)
                    WHERE """ + matches,
                    params,
                )}
                for thread_id, updated in chunk:
                    if thread_id not in heads:
                        continue
                    head_id, metadata, node_name, next_nodes, count = heads[thread_id]
                    out.append(ThreadSummary(
                        thread_id=thread_id,
                        checkpoint_count=count,
                        head_checkpoint_id=head_id,
                        head_metadata_json=metadata,
                        updated_at=_dt(updated),
                        head_node_name=node_name,
                        head_next_nodes=json.loads(next_nodes),
                    ))
                    if len(out) >= limit:
                        break
            return out

        return await self._run(work)

    # -- operations: health probe, key registry, quarantine -------------------

    async def ping(self) -> None:
        await self._run(lambda: self._conn.execute("SELECT 1").fetchone())

    async def key_fingerprints(self, fingerprints: dict[str, bytes]) -> dict[str, bytes]:
        """Record the fingerprints of key ids seen for the first time; return every recorded one."""
        def work(db: sqlite3.Connection) -> dict[str, bytes]:
            db.executemany(
                "INSERT INTO cairn_keys (key_id, fingerprint, created_us) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                [(kid, fp, _us_now()) for kid, fp in fingerprints.items()],
            )
            return {r[0]: bytes(r[1]) for r in db.execute("SELECT key_id, fingerprint FROM cairn_keys")}

        return await self._run(self._tx, work)

    async def quarantine(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str,
                         reason: str) -> bool:
        """Move one checkpoint (its pending writes go with it) into cairn_quarantine; False if absent."""
        key = (tenant, thread_id, namespace, checkpoint_id)

        def work(db: sqlite3.Connection) -> bool:
            moved = db.execute(
                f"INSERT INTO cairn_quarantine (quarantined_us, reason, {_QUARANTINED}) SELECT ?, ?, {_QUARANTINED} "
                "FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=?",
                (_us_now(), reason, *key),
            ).rowcount
            db.execute(
                "DELETE FROM cairn_checkpoints WHERE tenant=? AND thread_id=? AND namespace=? AND checkpoint_id=?", key
            )
            if moved == 0:
                return False
            self._bump(db, tenant, thread_id, True)
            return True

        return await self._run(self._tx, work)

    async def quarantined(self, limit: int) -> list[dict[str, Any]]:
        """The newest quarantined checkpoints, without their states."""
        def work() -> list[dict[str, Any]]:
            rows = self._conn.execute(
                "SELECT quarantined_us, reason, tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, "
                "raw_size, length(state) AS stored_bytes FROM cairn_quarantine ORDER BY quarantine_id DESC LIMIT ?",
                (limit,),
            )
            return [{**dict(r), "quarantined_at": _dt(r["quarantined_us"]).isoformat()} for r in rows]

        return await self._run(work)

    async def aclose(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)
