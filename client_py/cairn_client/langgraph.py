"""CairnSaver: a LangGraph checkpointer backed by a Cairn server.

    from cairn_client.langgraph import CairnSaver
    graph = builder.compile(checkpointer=CairnSaver("127.0.0.1:50051"))
    graph.invoke({"messages": [...]}, {"configurable": {"thread_id": "t1"}})

How LangGraph's model maps onto Cairn:

* A LangGraph checkpoint is serialized whole with the saver's serde
  (``dumps_typed``; an ``EncryptedSerializer`` works unchanged) and stored as the
  Cairn checkpoint's state, with the serde's type tag ("msgpack",
  "msgpack+aes", ...) as ``state_type``. The checkpoint id, the parent id
  (``config["configurable"]["checkpoint_id"]`` on put) and ``checkpoint_ns``
  (Cairn's namespace) map one to one.
* Metadata is stored as Cairn metadata (a JSON object), so ``list(filter=...)``
  filters on any key on the server by JSON containment. JSON numbers travel as
  doubles; integral values come back as ``int`` (integers beyond 2**53 lose
  precision, as in any JSON store).
* ``put`` upserts (``replace_existing``), as LangGraph expects. Writes go through
  PutWrites; the special channels of ``WRITES_IDX_MAP`` (errors, interrupts, ...)
  use their fixed negative index and replace what is stored, regular writes are
  insert-or-ignore, as in LangGraph's Postgres saver. Pending writes come back in
  LangGraph's order, ``(task_path, task_id, idx)``.
* LangGraph saves checkpoints in the background and may send the writes of a checkpoint before its
  put (see ``_EarlyWrites``); Cairn stores writes only for a stored checkpoint, so the saver holds such
  writes in memory and sends them right after that put.
* Threads cross between LangGraph Python and LangGraph.js: with ``cross_language=True``
  values are written in the encoding both share (``langgraph_json.CrossLanguageSerializer``:
  "json" with LangChain messages as LangChain.js constructor records); the TypeScript
  CairnSaver also reads the default "msgpack" for messages and plain values. Channel versions
  are strings (below), which LangGraph.js's CairnSaver makes too.
* ``delete_thread`` -> Clear, ``delete_for_runs`` -> DeleteRuns, ``copy_thread``
  -> CopyThread, ``prune`` -> Prune (``"keep_latest"`` keeps the newest checkpoint
  of each namespace along the head's parent chain, ``"delete"`` removes all).

The sync methods use a ``CheckpointClient``; the async ones an
``AsyncCheckpointClient`` created lazily for the running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cairn_client.langgraph needs LangGraph: pip install 'cairn-checkpoint[langgraph]' (langgraph, langgraph-checkpoint)"
    ) from exc

from . import _shared as s
from . import recovery
from .aio import AsyncCheckpointClient
from .client import DEFAULT_TIMEOUT_SECONDS, CheckpointClient
from .errors import AlreadyExists, NotFound
from .types import Checkpoint as CairnCheckpoint
from .types import PendingWrite

__all__ = ["CairnSaver"]

_MAX_PAGE = 1000
_F = TypeVar("_F", bound=Callable[..., Any])
_PRUNE_STRATEGIES = {"keep_latest": 1, "delete": None}


def _async_twin_of(sync: Callable[..., Any]) -> Callable[[_F], _F]:
    """Document an async method as its sync twin: the same arguments, result and errors, awaited."""

    def document(fn: _F) -> _F:
        twin = inspect.cleandoc(sync.__doc__ or "")
        fn.__doc__ = f"The async twin of `{sync.__name__}`: the same call, awaited.\n\n{twin}"
        return fn

    return document


class CairnSaver(BaseCheckpointSaver[str]):
    """A LangGraph ``BaseCheckpointSaver`` storing checkpoints in Cairn.

    Args:
        target: "host:port" or "unix:/path" of the Cairn server (or pass ``client=``).
        token: bearer token sent with every call.
        tls: ``cairn_client.TLS`` settings.
        serde: LangGraph serializer (default ``JsonPlusSerializer``; pass an
            ``EncryptedSerializer`` to encrypt checkpoints and writes client-side).
        client: an existing ``CheckpointClient`` to use for the sync methods (not closed by
            ``close()``). The async methods always use a channel of their own, made from
            ``target`` (default: the client's), `token` and `tls`.
        timeout_seconds: per-call deadline.
        page_size: List page size used by ``list``/``alist``.
        compress_states: send and receive checkpoints zstd-compressed (``CheckpointClient(compress_states=)``).
        coalesce: the async methods' ``AsyncCheckpointClient(coalesce=)``: concurrent ``aput``/``aget_tuple`` of
            many graphs on one event loop go together in SaveBatch/BatchLoad calls (default 4; 0: one call each).
        cross_language: write checkpoints and writes in the encoding LangGraph.js reads and writes
            (``CrossLanguageSerializer`` around ``serde``), so LangGraph.js can continue the threads.
        on_corrupt_head: ``"fail"`` (default: a head that fails the server's integrity check is DataLoss) or
            ``"resume_from_ancestor"``: ``get_tuple`` of a thread's head quarantines a corrupt head (the server
            keeps it aside) and returns the newest intact checkpoint beneath it (``cairn_client.recovery``).

    Raises:
        ValueError: neither ``target`` nor ``client`` is given, or ``on_corrupt_head`` is neither value.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        token: str | None = None,
        tls: s.TLS | None = None,
        serde: SerializerProtocol | None = None,
        client: CheckpointClient | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        page_size: int = 100,
        compress_states: bool = False,
        coalesce: int = 4,
        cross_language: bool = False,
        on_corrupt_head: str = recovery.FAIL,
    ) -> None:
        super().__init__(serde=serde)
        self.on_corrupt_head = recovery.check_policy(on_corrupt_head)
        if cross_language:
            from .langgraph_json import CrossLanguageSerializer

            self.serde = CrossLanguageSerializer(self.serde)
        if target is None and client is None:
            raise ValueError("CairnSaver needs a target ('host:port') or a client")
        self.target = target if target is not None else client.target  # type: ignore[union-attr]
        self._client_args: dict[str, Any] = {
            "token": token, "tls": tls, "timeout_seconds": timeout_seconds, "compress_states": compress_states,
        }
        self._owns_client = client is None
        self.client = client if client is not None else CheckpointClient(self.target, **self._client_args)
        self._async_args = {**self._client_args, "coalesce": coalesce}
        self.page_size = max(1, min(page_size, _MAX_PAGE))
        self._aclient: AsyncCheckpointClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._early = _EarlyWrites()
        self._leases: dict[str, Any] = {}  # thread id -> RunLease of the durable run writing it (langgraph_worker)

    def hold_lease(self, thread_id: str, lease: Any) -> None:
        """Fence every later write to `thread_id` with a durable run's lease, until release_lease.

        Args:
            thread_id: the thread the run writes.
            lease: the run's `cairn_client.runs.RunLease`; a write under it raises `RunStopped` once the lease is
                no longer the run's current one (lost, cancelled or timed out), and nothing is stored.
        """
        self._leases[str(thread_id)] = lease

    def release_lease(self, thread_id: str) -> None:
        """Stop fencing the writes to `thread_id` (the run's attempt ended).

        Args:
            thread_id: a thread given to hold_lease; any other is ignored.
        """
        self._leases.pop(str(thread_id), None)

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> CairnSaver:
        """The saver itself; `close()` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """close()."""
        self.close()

    async def __aenter__(self) -> CairnSaver:
        """The saver itself; `aclose()` on exit."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """aclose()."""
        await self.aclose()

    def close(self) -> None:
        """Close the sync channel (when the saver created it)."""
        if self._owns_client:
            self.client.close()

    async def aclose(self) -> None:
        """Close the async channel of the running loop, and the sync one."""
        if self._aclient is not None and self._aclient_loop is asyncio.get_running_loop():
            await self._aclient.aclose()
        self._aclient = self._aclient_loop = None
        self.close()

    def _aio(self) -> AsyncCheckpointClient:
        """The async client of the running event loop (grpc.aio channels belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            self._aclient = AsyncCheckpointClient(self.target, **self._async_args)
            self._aclient_loop = loop
        return self._aclient

    # -- conversions -------------------------------------------------------------------------------

    def _save_fields(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> tuple[str, bytes, dict[str, Any], RunnableConfig]:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        namespace = conf.get("checkpoint_ns", "") or ""
        state_type, state = self.serde.dumps_typed(checkpoint)
        fields = {
            "namespace": namespace,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": conf.get("checkpoint_id") or "",
            "state_type": state_type,
            "metadata": _json_safe(get_serializable_checkpoint_metadata(config, metadata)),
            "replace_existing": True,
            "run_lease": self._leases.get(thread_id),
        }
        next_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": checkpoint["id"]}
        }
        return thread_id, state, fields, next_config

    def _batch(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> _Batch:
        thread_id, namespace, checkpoint_id = self._locate(config)
        items = []
        for idx, (channel, value) in enumerate(writes):
            value_type, raw = self.serde.dumps_typed(value)
            items.append(
                PendingWrite(
                    task_id=task_id, channel=channel, value=raw, value_type=value_type,
                    idx=WRITES_IDX_MAP.get(channel, idx),
                )
            )
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        return _Batch(thread_id, namespace, checkpoint_id or "", task_id, task_path, items, special)

    def _tuple(self, cp: CairnCheckpoint) -> CheckpointTuple:
        checkpoint = self.serde.loads_typed((cp.state_type, cp.state))
        config: RunnableConfig = {
            "configurable": {
                "thread_id": cp.thread_id,
                "checkpoint_ns": cp.namespace,
                "checkpoint_id": cp.checkpoint_id,
            }
        }
        parent: RunnableConfig | None = None
        if cp.parent_checkpoint_id:
            parent = {
                "configurable": {
                    "thread_id": cp.thread_id,
                    "checkpoint_ns": cp.namespace,
                    "checkpoint_id": cp.parent_checkpoint_id,
                }
            }
        writes = sorted(cp.pending_writes, key=lambda w: (w.task_path, w.task_id, w.idx))
        pending = [
            (w.task_id, w.channel, _interrupts_of(w.channel, self.serde.loads_typed((w.value_type, w.value))))
            for w in writes
        ]
        return CheckpointTuple(config, checkpoint, dict(cp.metadata), parent, pending)  # type: ignore[arg-type]

    @staticmethod
    def _locate(config: RunnableConfig) -> tuple[str, str, str | None]:
        conf = config["configurable"]
        return str(conf["thread_id"]), conf.get("checkpoint_ns", "") or "", get_checkpoint_id(config)

    @staticmethod
    def _list_query(
        config: RunnableConfig | None, filter: Mapping[str, Any] | None, limit: int | None, page_size: int
    ) -> tuple[str, dict[str, Any]]:
        thread_id = ""
        query: dict[str, Any] = {"include_state": True, "include_writes": True}
        if config is not None:
            conf = config.get("configurable", {})
            thread_id = str(conf.get("thread_id") or "")
            if conf.get("checkpoint_ns") is not None:  # absent: every namespace, as LangGraph's savers do
                query["namespace"] = conf["checkpoint_ns"]
        if filter:
            query["metadata_filter"] = _json_safe(dict(filter))
        query["page_size"] = min(limit, page_size) if limit is not None and limit > 0 else page_size
        return thread_id, query

    # -- what list/alist share: everything but the calls ------------------------------------------

    def _list_plan(
        self, config: RunnableConfig | None, filter: dict[str, Any] | None, before: RunnableConfig | None,
        limit: int | None,
    ) -> _ListPlan | None:
        """None when nothing is to be listed; else the plan, whose `single` says to look up one checkpoint."""
        if limit is not None and limit <= 0:
            return None
        before_id = get_checkpoint_id(before) if before else None
        if config is not None and get_checkpoint_id(config):
            return _ListPlan(before_id, filter, limit, single=config)
        thread_id, query = self._list_query(config, filter, limit, self.page_size)
        return _ListPlan(before_id, filter, limit, thread_id=thread_id, query=query)

    def _page_tuples(self, plan: _ListPlan, checkpoints: Sequence[CairnCheckpoint]) -> Iterator[CheckpointTuple]:
        """The tuples of one List page that the plan keeps; sets `plan.done` once `limit` is reached."""
        for cp in checkpoints:
            if plan.client_side_before is not None and not cp.checkpoint_id < plan.client_side_before:
                continue
            yield self._tuple(cp)
            plan.seen += 1
            if plan.limit is not None and plan.seen >= plan.limit:
                plan.done = True
                return

    def _writes_args(self, b: _Batch) -> dict[str, Any]:
        return {"namespace": b.namespace, "task_path": b.task_path, "run_lease": self._leases.get(b.thread_id)}

    # -- sync API: the I/O of each method; the async twins below mirror them call for call ---------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint the config names (its `checkpoint_id`, else the thread's head), with its writes.

        Args:
            config: `configurable.thread_id`, optional `checkpoint_ns` and `checkpoint_id`.

        Returns:
            The `CheckpointTuple` (config, checkpoint, metadata, parent config, pending writes), or None when
            there is no such checkpoint.

        Raises:
            KeyError: the config has no `thread_id`.
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        thread_id, namespace, checkpoint_id = self._locate(config)
        if not checkpoint_id:
            head = recovery.load_head(self.client, thread_id, namespace, self.on_corrupt_head)
            return None if head is None else self._tuple(head)
        try:
            cp = self.client.load(thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
        except NotFound:
            return None
        return self._tuple(cp)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, filtered on the server.

        Args:
            config: the thread (and namespace) to list; None lists across all threads. With a `checkpoint_id`,
                only that checkpoint.
            filter: metadata the checkpoints' metadata must contain.
            before: only checkpoints older than this config's checkpoint.
            limit: at most this many.

        Returns:
            An iterator of `CheckpointTuple`, fetching `page_size` at a time.

        Raises:
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        plan = self._list_plan(config, filter, before, limit)
        if plan is None:
            return
        if plan.single is not None:
            tup = self.get_tuple(plan.single)
            if tup is not None and plan.keeps(tup):
                yield tup
            return
        client = self.client
        try:
            page = client.list(plan.thread_id, before=plan.before_id, **plan.query)
            plan.query["before"] = plan.before_id
        except NotFound:  # `before` names no stored checkpoint: compare ids, as LangGraph's SQL savers do
            plan.client_side_before = plan.before_id
            page = client.list(plan.thread_id, **plan.query)
        while True:
            yield from self._page_tuples(plan, page.checkpoints)
            if plan.done or not page.next_page_token:
                return
            page = client.list(plan.thread_id, page_token=page.next_page_token, **plan.query)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint as the head of its thread and namespace (an upsert by checkpoint id).

        Args:
            config: the thread, namespace and the parent checkpoint's id.
            checkpoint: the LangGraph checkpoint, serialized whole with the saver's serde.
            metadata: stored as Cairn metadata, so `list(filter=...)` filters on the server.
            new_versions: unused (Cairn stores the checkpoint whole).

        Returns:
            The config of the stored checkpoint.

        Raises:
            InvalidArgument: an id or the metadata is malformed for Cairn.
            LimitExceeded: the serialized checkpoint is larger than the server accepts.
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        thread_id, state, fields, next_config = self._save_fields(config, checkpoint, metadata)
        self.client.save(thread_id, state, **fields)
        for batch in self._early.saved(_key(next_config)):
            self._send(batch)
        return next_config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes on the config's checkpoint.

        Writes that arrive before their checkpoint (LangGraph puts in the background) are held, bounded, and
        sent as soon as that checkpoint is stored.

        Args:
            config: the checkpoint the writes belong to.
            writes: (channel, value) pairs; values go through the saver's serde.
            task_id: the task that made them.
            task_path: the task's path in the graph.

        Raises:
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        if not writes:
            return
        batch = self._batch(config, writes, task_id, task_path)
        try:
            self._send(batch)
        except NotFound:
            if not self._early.park(batch):
                self._send(batch)

    def _send(self, b: _Batch) -> None:
        args = self._writes_args(b)
        try:
            self.client.put_writes(b.thread_id, b.checkpoint_id, b.task_id, b.items, replace=b.special, **args)
        except AlreadyExists:
            # A regular write is already stored with another value: keep the stored one (insert-or-ignore,
            # as LangGraph's SQL savers do) and still store the writes of this call that are new.
            for item in b.items:
                with contextlib.suppress(AlreadyExists):
                    self.client.put_writes(b.thread_id, b.checkpoint_id, b.task_id, [item], **args)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread, in every namespace (Cairn `Clear`).

        Args:
            thread_id: the thread.

        Raises:
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        self.client.clear(str(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints whose metadata `run_id` is one of `run_ids` (Cairn `DeleteRuns`).

        Args:
            run_ids: the run ids.

        Raises:
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        if run_ids:
            self.client.delete_runs([str(r) for r in run_ids])

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread into an empty one, checkpoint ids, parents and writes included (Cairn `CopyThread`).

        Args:
            source_thread_id: the thread to copy.
            target_thread_id: an empty thread.

        Raises:
            TargetNotEmpty: the target thread is not empty (a Conflict).
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        self.client.copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads (Cairn `Prune`): "keep_latest" keeps each namespace's head, "delete" removes all.

        Args:
            thread_ids: the threads.
            strategy: "keep_latest" or "delete".

        Raises:
            ValueError: an unknown strategy.
            Unavailable: Cairn could not be reached, or its store is down.
            CairnError: any other failure of the call (the root of cairn_client's errors).
        """
        keep = _prune_keep(strategy)
        if thread_ids:
            self.client.prune([str(t) for t in thread_ids], keep_latest=keep)

    # -- async API: the same steps as the sync twin above, through the running loop's client -------

    @_async_twin_of(get_tuple)
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, namespace, checkpoint_id = self._locate(config)
        if not checkpoint_id:
            head = await recovery.aload_head(self._aio(), thread_id, namespace, self.on_corrupt_head)
            return None if head is None else self._tuple(head)
        try:
            cp = await self._aio().load(thread_id, namespace=namespace, checkpoint_id=checkpoint_id)
        except NotFound:
            return None
        return self._tuple(cp)

    @_async_twin_of(list)
    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        plan = self._list_plan(config, filter, before, limit)
        if plan is None:
            return
        if plan.single is not None:
            tup = await self.aget_tuple(plan.single)
            if tup is not None and plan.keeps(tup):
                yield tup
            return
        client = self._aio()
        try:
            page = await client.list(plan.thread_id, before=plan.before_id, **plan.query)
            plan.query["before"] = plan.before_id
        except NotFound:  # as in list()
            plan.client_side_before = plan.before_id
            page = await client.list(plan.thread_id, **plan.query)
        while True:
            for tup in self._page_tuples(plan, page.checkpoints):
                yield tup
            if plan.done or not page.next_page_token:
                return
            page = await client.list(plan.thread_id, page_token=page.next_page_token, **plan.query)

    @_async_twin_of(put)
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, state, fields, next_config = self._save_fields(config, checkpoint, metadata)
        await self._aio().save(thread_id, state, **fields)
        for batch in self._early.saved(_key(next_config)):
            await self._asend(batch)
        return next_config

    @_async_twin_of(put_writes)
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        batch = self._batch(config, writes, task_id, task_path)
        try:
            await self._asend(batch)
        except NotFound:
            if not self._early.park(batch):
                await self._asend(batch)

    async def _asend(self, b: _Batch) -> None:
        client, args = self._aio(), self._writes_args(b)
        try:
            await client.put_writes(b.thread_id, b.checkpoint_id, b.task_id, b.items, replace=b.special, **args)
        except AlreadyExists:  # as in _send()
            for item in b.items:
                with contextlib.suppress(AlreadyExists):
                    await client.put_writes(b.thread_id, b.checkpoint_id, b.task_id, [item], **args)

    @_async_twin_of(delete_thread)
    async def adelete_thread(self, thread_id: str) -> None:
        await self._aio().clear(str(thread_id))

    @_async_twin_of(delete_for_runs)
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            await self._aio().delete_runs([str(r) for r in run_ids])

    @_async_twin_of(copy_thread)
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._aio().copy_thread(str(source_thread_id), str(target_thread_id))

    @_async_twin_of(prune)
    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        keep = _prune_keep(strategy)
        if thread_ids:
            await self._aio().prune([str(t) for t in thread_ids], keep_latest=keep)

    # -- versions ----------------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The channel version after `current`, like LangGraph's own savers: a zero-padded counter plus a random
        suffix, so versions sort as strings.

        Args:
            current: the channel's current version (None for a new channel; an int from an older saver).
            channel: unused (LangGraph's signature).

        Returns:
            The next version, greater than `current` as a string.
        """
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"


_INTERRUPT = "__interrupt__"  # LangGraph's interrupt channel (its constant is private since 1.0)


def _interrupts_of(channel: str, value: Any) -> Any:
    """Interrupts LangGraph.js wrote (plain ``{"value", "id"}`` objects, alone or in a list) as the
    ``Interrupt`` instances LangGraph Python's loop reads from the ``__interrupt__`` channel; any other
    value as it is."""
    if channel != _INTERRUPT:
        return value
    from langgraph.types import Interrupt

    def revive(v: Any) -> Any:
        return Interrupt(value=v["value"], id=v["id"]) if isinstance(v, dict) and set(v) == {"value", "id"} else v

    return [revive(v) for v in value] if isinstance(value, list) else revive(value)


@dataclass
class _ListPlan:
    """One list/alist call: what to ask for, and how far it has got."""

    before_id: str | None
    filter: dict[str, Any] | None
    limit: int | None
    single: RunnableConfig | None = None  # a config with a checkpoint_id: look that one up
    thread_id: str = ""
    query: dict[str, Any] = field(default_factory=dict)
    client_side_before: str | None = None  # `before` named no stored checkpoint: compared by id here
    seen: int = 0
    done: bool = False

    def keeps(self, tup: CheckpointTuple) -> bool:
        """Whether a checkpoint looked up by id passes the filter and `before`."""
        return _matches(tup, self.filter, self.before_id)


class _Batch(NamedTuple):
    """The writes of one put_writes call."""

    thread_id: str
    namespace: str
    checkpoint_id: str
    task_id: str
    task_path: str
    items: list[PendingWrite]
    special: bool  # only WRITES_IDX_MAP channels: replace what is stored


def _key(config: RunnableConfig) -> tuple[str, str, str]:
    conf = config["configurable"]
    return str(conf["thread_id"]), conf.get("checkpoint_ns", "") or "", conf.get("checkpoint_id") or ""


class _EarlyWrites:
    """Writes that arrive before the put of their checkpoint.

    LangGraph saves checkpoints in the background and does not order put_writes after the put of the
    checkpoint they belong to (it even stores delta-channel writes first, on purpose). Cairn accepts writes
    only for a stored checkpoint (NOT_FOUND otherwise), so such writes wait here and are sent right after
    that put. Bounded: the oldest entries are dropped past `max_keys` checkpoints.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._pending: OrderedDict[tuple[str, str, str], list[_Batch]] = OrderedDict()
        self._saved: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._max = max_keys

    def park(self, b: _Batch) -> bool:
        """Keep the batch for later; False when its checkpoint got stored meanwhile (send it now)."""
        key = (b.thread_id, b.namespace, b.checkpoint_id)
        with self._lock:
            if key in self._saved:
                return False
            self._pending.setdefault(key, []).append(b)
            while len(self._pending) > self._max:
                self._pending.popitem(last=False)
            return True

    def saved(self, key: tuple[str, str, str]) -> list[_Batch]:
        """Mark the checkpoint stored; returns the writes that waited for it."""
        with self._lock:
            self._saved[key] = None
            while len(self._saved) > self._max:
                self._saved.popitem(last=False)
            return self._pending.pop(key, [])


def _prune_keep(strategy: str) -> int | None:
    if strategy not in _PRUNE_STRATEGIES:
        raise ValueError(f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'")
    return _PRUNE_STRATEGIES[strategy]


def _json_safe(value: Any) -> Any:
    """Metadata as plain JSON (tuples become lists; other objects their str()), as a JSON store keeps it."""
    return json.loads(json.dumps(value, default=str))


def _contains(doc: Any, pattern: Any) -> bool:
    """JSON containment (Postgres `@>`), the semantics of the server's metadata filter."""
    if isinstance(pattern, dict):
        return isinstance(doc, dict) and all(k in doc and _contains(doc[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(doc, list) and all(any(_contains(d, p) for d in doc) for p in pattern)
    if isinstance(pattern, bool) or isinstance(doc, bool):
        return pattern is doc
    return bool(doc == pattern)


def _matches(tup: CheckpointTuple, filter: Mapping[str, Any] | None, before_id: str | None) -> bool:
    if before_id is not None and not tup.config["configurable"]["checkpoint_id"] < before_id:
        return False
    return not filter or _contains(tup.metadata, _json_safe(dict(filter)))
