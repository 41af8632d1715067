"""Plain dataclasses a caller works with instead of protobuf messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PendingWrite:
    task_id: str
    channel: str
    value: bytes
    value_type: str = ""
    idx: int = 0
    task_path: str = ""
    thread_id: str = ""
    namespace: str = ""
    checkpoint_id: str = ""


@dataclass(frozen=True)
class Checkpoint:
    """A stored checkpoint; `state` is empty when a List left it out."""

    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_checkpoint_id: str
    state: bytes
    state_type: str
    metadata: dict[str, Any]
    created_at: datetime | None
    sequence: int
    node_name: str
    next_nodes: list[str]
    state_size_bytes: int = 0
    stored_size_bytes: int = 0
    pending_writes: list[PendingWrite] = field(default_factory=list)

    def json(self) -> Any:
        """The state decoded as JSON (state_type "json")."""
        if self.state_type and self.state_type != "json":
            raise ValueError(f"state_type is {self.state_type!r}, not json; decode .state yourself")
        return json.loads(self.state) if self.state else None


@dataclass(frozen=True)
class SaveResult:
    checkpoint_id: str
    sequence: int
    created_at: datetime | None
    already_existed: bool
    stored_size_bytes: int


@dataclass(frozen=True)
class Page:
    """One page of a List; `next_page_token` is empty at the end."""

    checkpoints: list[Checkpoint]
    next_page_token: str


@dataclass(frozen=True)
class ThreadInfo:
    thread_id: str
    checkpoint_count: int
    head_checkpoint_id: str
    head_metadata: dict[str, Any]
    updated_at: datetime | None
    head_node_name: str
    head_next_nodes: list[str]


@dataclass(frozen=True)
class ThreadPage:
    threads: list[ThreadInfo]
    next_page_token: str
