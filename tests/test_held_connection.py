"""The Postgres connections held out of the pool (storage/postgres.py HeldConnection: the versions query, the
group commit's saves) go back to the pool once unused for a while, so an idle server keeps no more connections
than it did without them (many idle servers on one Postgres, as in this suite, ran out of its connections)."""

from __future__ import annotations

import asyncio
import zlib

from cairn_server.storage.postgres import HeldConnection, PostgresColdStore
from cairn_server.storage.records import SaveItem, StoredCheckpoint
from tests.conftest import new_database


async def test_held_connections_go_back_to_the_pool_when_idle(postgres_proc, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(HeldConnection, "IDLE_SECONDS", 0.3)
    store = await PostgresColdStore.open(new_database(postgres_proc), pool_size=6)
    try:
        state = b'{"n": 1}'
        cp = StoredCheckpoint("t", "held", "", "c1", "", "json", "", [], "{}", 0, len(state), zlib.crc32(state),
                              b"h" * 16, state, 0)
        await store.save([SaveItem(cp, raw_state=state)])
        await store.versions([("t", "held", "", True)])
        assert store._saves is not None and store._saves.conn is not None and store._versions.conn is not None
        idle_before = store.pool.get_idle_size()
        await asyncio.sleep(0.8)
        assert store._saves.conn is None and store._versions.conn is None
        assert store.pool.get_idle_size() == idle_before + 2
        # used again: taken again, and the saves still work
        await store.save([SaveItem(StoredCheckpoint("t", "held", "", "c2", "c1", "json", "", [], "{}", 0, len(state),
                                                    zlib.crc32(state), b"i" * 16, state, 0), raw_state=state)])
        assert store._saves.conn is not None
    finally:
        await store.aclose()
