"""Saving a run's checkpoints and task writes to Cairn, synchronously or in the background, in order.

Every save is a compare-and-set on the thread's head (expected_head_id, or expect_empty for a new
thread), so two workers resuming the same thread cannot fork it: the second one's save fails with
cairn_client.Conflict. Checkpoint ids are made here (UUIDv7), so a save retried by the client after a
lost response is recognised as already stored.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from .. import recovery
from ..client import CheckpointClient
from ..errors import Conflict
from ..ids import uuid7
from ..types import Checkpoint, PendingWrite
from . import state as st

UPDATE = "update"  # channel of a finished task's write: its state update (idx 0)
RESUME = "resume"  # channel of resume values for interrupt(): the k-th at idx -1-k


class Persister:
    """Writes one thread's checkpoints in order. With `background`, calls return at once and a worker
    thread sends them; the first failure is kept, later operations are dropped (they built on it) and
    the error is raised by the next call or by flush()."""

    def __init__(
        self,
        client: CheckpointClient,
        thread_id: str,
        namespace: str,
        *,
        background: bool = False,
        max_checkpoints: int | None = None,
        on_corrupt_head: str = recovery.FAIL,
    ) -> None:
        self.client = client
        self.on_corrupt_head = recovery.check_policy(on_corrupt_head)
        self.thread_id = thread_id
        self.namespace = namespace
        self.max_checkpoints = max_checkpoints
        self.head_id: str | None = None  # the head this writer expects; None = the thread is empty
        self.run_lease: Any = None  # a durable run's RunLease (worker.py): every write is fenced by it
        self.stopped: BaseException | None = None  # set when the run must stop: every later write raises it
        self._background = background
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._worker: threading.Thread | None = None

    # -- reads (always synchronous) ----------------------------------------------------------------

    def load(self, checkpoint_id: str | None = None) -> Checkpoint | None:
        """A checkpoint with its pending writes; the head when no id is given (None: empty thread). A corrupt
        head is DATA_LOSS, or with on_corrupt_head="resume_from_ancestor" quarantined (recovery.py)."""
        if not checkpoint_id:
            return recovery.load_head(self.client, self.thread_id, self.namespace, self.on_corrupt_head)
        return self.client.load(self.thread_id, namespace=self.namespace, checkpoint_id=checkpoint_id)

    # -- writes ------------------------------------------------------------------------------------

    def save(
        self,
        values: dict[str, Any],
        *,
        parent_id: str | None,
        node_name: str,
        next_nodes: list[str],
        metadata: dict[str, Any],
    ) -> str:
        """Queue (or send) a checkpoint that becomes the new head; returns its id."""
        raw = st.dumps(values, "the graph state")
        st.dumps(metadata, "checkpoint metadata")
        checkpoint_id = uuid7()
        expected = self.head_id
        fields = {
            "namespace": self.namespace,
            "checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": parent_id or "",
            "state_type": "json",
            "metadata": metadata,
            "node_name": node_name,
            "next_nodes": next_nodes,
            "expected_head_id": expected,
            "expect_empty": expected is None,
        }
        self._submit(lambda: self._save(raw, checkpoint_id, fields))
        self.head_id = checkpoint_id
        return checkpoint_id

    def _save(self, raw: bytes, checkpoint_id: str, fields: dict[str, Any]) -> None:
        try:
            self.client.save(self.thread_id, raw, run_lease=self.run_lease, **fields)
        except Conflict as err:
            if err.reason != "HEAD_MOVED" or err.current_head_id != checkpoint_id:  # not our own retried save
                raise
        if self.max_checkpoints is not None:
            self.client.prune([self.thread_id], keep_latest=self.max_checkpoints)

    def put_write(
        self, checkpoint_id: str, node: str, channel: str, value: Any, *, idx: int = 0, path: str = ""
    ) -> None:
        """Attach one JSON write of task `node` to a checkpoint (PutWrites; an identical re-send is a no-op)."""
        raw = st.dumps(value, f"the {channel} of node {node!r}")
        self._submit(
            lambda: self.client.put_writes(
                self.thread_id, checkpoint_id, node, [PendingWrite(node, channel, raw, "json", idx)],
                namespace=self.namespace, task_path=path, run_lease=self.run_lease,
            )
        )

    def flush(self) -> None:
        """Wait until everything queued is stored; raise the first failure."""
        if self._worker is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        """Flush, then stop the worker thread."""
        try:
            self.flush()
        finally:
            if self._worker is not None:
                self._queue.put(None)
                self._worker.join()
                self._worker = None

    # -- the queue ---------------------------------------------------------------------------------

    def _submit(self, op: Callable[[], None]) -> None:
        if self.stopped is not None:
            raise self.stopped
        self._raise()
        if not self._background:
            op()
            return
        if self._worker is None:
            self._worker = threading.Thread(target=self._drain, name=f"cairn-saver-{self.thread_id}", daemon=True)
            self._worker.start()
        self._queue.put(op)

    def _drain(self) -> None:
        while True:
            op = self._queue.get()
            try:
                if op is None:
                    return
                if self._error is None:
                    op()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by _raise()
                self._error = exc
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
