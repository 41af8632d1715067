"""Applying the embedded SQLite store's migrations, safely when several processes open one new file at once."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence


def apply_migrations(
    db: sqlite3.Connection, scripts: Sequence[str], read_version: Callable[[sqlite3.Connection], int],
    record_version: Callable[[sqlite3.Connection, int], None],
) -> None:
    """Apply `scripts[version:]`, one transaction each.

    Each step reads the version under the write lock it applies under: `--workers N` processes start together
    on one new file, and a version read before the lock would have two of them run the same script."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = read_version(db)
            if version >= len(scripts):
                db.execute("COMMIT")
                return
            for statement in scripts[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            record_version(db, version + 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
