"""The records the tiers pass each other: checkpoints and writes as stored, saves and their outcomes, List
queries and thread summaries. States travel already encoded: codec, stored bytes, raw size and checksum
together (codec.py encodes them, inside the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from cairn.errors import CairnError

from .runs_base import Lease

@dataclass(slots=True)
class StoredCheckpoint:
    """One checkpoint row as the tiers keep it.

    Sizes: `raw_size` is the state's length as the client saved it; `stored_size` its length as stored
    (compressed, sealed): `len(state)`, or, when a List left the state out, `stored_bytes` as the store reported it.
    """

    tenant: str
    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_checkpoint_id: str
    state_type: str
    node_name: str
    next_nodes: list[str]
    metadata_json: str
    codec: int
    raw_size: int
    checksum: int
    content_hash: bytes
    state: bytes  # stored (compressed) bytes; b"" when a List left them out
    sequence: int = 0
    created_at: datetime | None = None
    row_id: int = 0
    stored_bytes: int = -1  # from the store when `state` was left out
    state_omitted: bool = False  # a List left the state out to stay within its byte budget (ListQuery.max_bytes)

    @property
    def stored_size(self) -> int:
        """The state's length as stored."""
        return len(self.state) if self.stored_bytes < 0 else self.stored_bytes


@dataclass(slots=True)
class StoredWrite:
    """One pending write of a task."""

    task_id: str
    task_path: str
    idx: int
    channel: str
    value_type: str
    value: bytes
    thread_id: str = ""
    namespace: str = ""
    checkpoint_id: str = ""


@dataclass(slots=True)
class WritesItem:
    """One PutWrites: a task's writes against one checkpoint. Concurrent ones are committed together."""

    tenant: str
    thread_id: str
    namespace: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: list[StoredWrite]
    replace: bool
    lease: Lease | None = None  # durable runs: commit only while this run lease is current (runs_base.py)


class SaveStatus(str, Enum):
    """How one save ended in the cold store. The values are the words the stores' SQL returns."""

    INSERTED = "inserted"  # a new checkpoint
    EXISTS = "exists"  # the same content under this id was stored before: an idempotent retry
    REPLACED = "replaced"  # replace_existing overwrote it
    CONFLICT = "conflict"  # other content under this id: AlreadyExists
    HEAD_MOVED = "head_moved"  # expected_head_id / expect_empty did not hold: HeadMoved
    FENCED = "fenced"  # the run lease refused it: SaveOutcome.error says why


@dataclass(slots=True)
class SaveOutcome:
    """What a cold store reports for one save."""

    status: SaveStatus
    sequence: int = 0
    created_at: datetime | None = None
    current_head_id: str = ""
    version: int = 0  # the thread's version once the save committed (freshness.py): the stamp of its copies
    error: CairnError | None = None  # status FENCED: the run lease refused the save (runs_base.lease_error)


@dataclass(slots=True)
class SaveItem:
    """One save as handed to the cold store."""

    checkpoint: StoredCheckpoint
    expected_head_id: str | None = None
    expect_empty: bool = False
    replace_existing: bool = False
    raw_state: bytes | None = None  # the uncompressed state, for the near cache; cold stores ignore it
    lease: Lease | None = None  # durable runs: commit only while this run lease is current (runs_base.py)


@dataclass(frozen=True, slots=True)
class RetentionCursor:
    """Where the one retention runner of a cluster goes on (kept in the cold store with its lease).

    version: count-based retention has looked at every thread changed up to this cairn_versions version.
    thread: age-based retention has looked at every (tenant, thread_id) up to this one in this sweep
    (("", "") = from the start).
    """

    version: int
    thread: tuple[str, str]


@dataclass(slots=True)
class ListQuery:
    """A List call, decoded and validated."""

    tenant: str
    thread_id: str  # "" = every thread
    namespace: str | None  # None = every namespace
    metadata_filter_json: str | None
    before_row_id: int | None  # resolved from before_checkpoint_id
    after_row_id: int | None  # from the page token: rows older than this
    limit: int
    include_state: bool
    include_writes: bool
    zstd_states: bool = False  # states go out as their stored zstd frames (a rendering choice, part of the key)
    max_bytes: int = 0  # with include_state: rows past this many bytes of states come without them (0 = no limit)


@dataclass(slots=True)
class ThreadSummary:
    """One thread as ListThreads reports it: its size, its head and when it last changed."""

    thread_id: str
    checkpoint_count: int
    head_checkpoint_id: str
    head_metadata_json: str
    updated_at: datetime | None
    head_node_name: str = ""
    head_next_nodes: list[str] = field(default_factory=list)


MAX_ROW_ID = (1 << 63) - 1  # the largest row id either cold store can hold (signed 64-bit)

# (tenant, thread_id, namespace, checkpoint_id): one checkpoint's place in a hot cache.
EntryKey = tuple[str, str, str, str]
