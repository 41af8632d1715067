"""Near cache: decoded checkpoints and rendered List pages kept in the server process, in front of the hot cache.

A hot-cache hit still costs a round trip to Redis, a checksum and a decompression; a near hit costs a dict
lookup, and the service memoizes its rendered response on the entry. It is bounded by the bytes it holds (LRU).

Every value carries the stamp it was current at (freshness.py); `get` hands back a checkpoint only if the stamp
is at least the `clobbered` version the caller just read from the cold store, and `get_page` a page only if its
stamp is the thread's `version`. So a value kept here can be stale without harm: it is never served then. A put
therefore needs no ordering against changes, and `forget` only frees memory early.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

ThreadKey = tuple[str, str]  # (tenant, thread_id)
_Key = tuple[str, str, str, Any]  # (tenant, thread_id, namespace, checkpoint_id) or (.., _PAGE, page key)

_PAGE = "\x00page"  # in the namespace slot: namespaces never contain control characters


class NearCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[_Key, tuple[Any, int, int]] = OrderedDict()  # -> (value, bytes, stamp)
        self._threads: dict[ThreadKey, set[_Key]] = {}

    def get(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str, clobbered: int) -> Any | None:
        """The checkpoint kept under a stamp of at least `clobbered`, if any; an older one is dropped."""
        return self._get((tenant, thread_id, namespace, checkpoint_id), lambda stamp: stamp >= clobbered)

    def put(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str, value: Any, size: int,
            stamp: int) -> None:
        """Keep a checkpoint current at version `stamp`, unless a newer copy is kept already."""
        key = (tenant, thread_id, namespace, checkpoint_id)
        found = self._entries.get(key)
        if found is None or found[2] < stamp:
            self._keep(key, value, size, stamp)

    def get_page(self, tenant: str, thread_id: str, page: Any, version: int) -> Any | None:
        """The List page rendered while the thread was at `version`, if any; another is dropped."""
        return self._get((tenant, thread_id, _PAGE, page), lambda stamp: stamp == version)

    def put_page(self, tenant: str, thread_id: str, page: Any, value: Any, size: int, stamp: int) -> None:
        """Keep a List page rendered from a cold read that began at the thread's version `stamp`."""
        self._keep((tenant, thread_id, _PAGE, page), value, size, stamp)

    def forget(self, tenant: str, thread_id: str) -> None:
        """Drop what is kept of the thread (it changed here, so none of it would be served again)."""
        for key in list(self._threads.get((tenant, thread_id), ())):
            self._evict(key)

    def _get(self, key: _Key, servable: Any) -> Any | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if not servable(found[2]):
            self._evict(key)
            return None
        self._entries.move_to_end(key)
        return found[0]

    def _keep(self, key: _Key, value: Any, size: int, stamp: int) -> None:
        if size > self.max_bytes // 8:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._entries[key] = (value, size, stamp)
        self.size += size
        self._threads.setdefault((key[0], key[1]), set()).add(key)
        while self.size > self.max_bytes:
            self._evict(next(iter(self._entries)))

    def _evict(self, key: _Key) -> None:
        self.size -= self._entries.pop(key)[1]
        thread = (key[0], key[1])
        keys = self._threads.get(thread)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._threads[thread]

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._threads.clear()
        self.size = 0
