"""Cairn's Postgres schema with its per-thread tables hash-partitioned by (tenant, thread_id).

``create_partitioned_schema(dsn)`` applies the store's own migrations (storage/postgres.py MIGRATIONS) with one
change: each table keyed by thread (cairn_threads, cairn_checkpoints, cairn_writes, cairn_versions) is created
``PARTITION BY HASH (tenant, thread_id)`` with ``partitions`` partitions, and the schema version is recorded, so
a server started on the database migrates nothing and runs its functions and queries unchanged. Every primary
key of those tables already begins with (tenant, thread_id), as a partitioned table's must include its key.
"""

from __future__ import annotations

import asyncio
import re
import threading

__all__ = ["PARTITIONED_TABLES", "create_partitioned_schema", "partitioned_migrations"]

PARTITIONED_TABLES = ("cairn_threads", "cairn_checkpoints", "cairn_writes", "cairn_versions")


def partitioned_migrations(partitions: int = 4) -> list[str]:
    """The store's migrations, its per-thread tables partitioned by hash of (tenant, thread_id)."""
    from cairn_server.storage.postgres import MIGRATIONS

    def partition(m: re.Match[str]) -> str:
        table = m.group(2)
        parts = "".join(
            f"\n    CREATE TABLE {table}_p{i} PARTITION OF {table} FOR VALUES WITH (MODULUS {partitions}, "
            f"REMAINDER {i});"
            for i in range(partitions)
        )
        return f"{m.group(1)} PARTITION BY HASH (tenant, thread_id);{parts}"

    pattern = re.compile(r"(CREATE TABLE (%s) \(.*?\n    \));" % "|".join(PARTITIONED_TABLES), re.S)
    out = [pattern.sub(partition, script) for script in MIGRATIONS]
    made = sum(len(pattern.findall(script)) for script in MIGRATIONS)
    if made != len(PARTITIONED_TABLES):
        raise RuntimeError(f"expected to partition {PARTITIONED_TABLES}, found {made} of them in MIGRATIONS")
    return out


def create_partitioned_schema(dsn: str, partitions: int = 4) -> None:
    """Create Cairn's schema in the (empty) database of `dsn`, its per-thread tables hash-partitioned."""
    scripts = partitioned_migrations(partitions)

    async def go() -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute("CREATE TABLE cairn_schema_version (version integer NOT NULL)")
                for number, script in enumerate(scripts, start=1):
                    await conn.execute(script)
                    await conn.execute("INSERT INTO cairn_schema_version (version) VALUES ($1)", number)
        finally:
            await conn.close()

    error: list[BaseException] = []

    def runner() -> None:
        try:
            asyncio.run(go())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=runner)  # own thread: the caller may be inside a running event loop
    t.start()
    t.join()
    if error:
        raise error[0]
