"""Python client for Cairn, the checkpoint store for durable graphs.

    from cairn_client import CheckpointClient
    with CheckpointClient("127.0.0.1:50051") as cairn:
        saved = cairn.save("thread-1", {"messages": []}, node_name="start")
        print(cairn.load("thread-1").json())
"""

from ._shared import TLS
from .aio import AsyncCheckpointClient
from .client import CheckpointClient
from .errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    HeadMoved,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    ResourceExhausted,
    RunIdConflict,
    RunNotFound,
    RunStopped,
    TargetNotEmpty,
    Unauthenticated,
    Unavailable,
)
from .runs import Claim, RetryPolicy, Run, RunAttempt, RunError, RunLease, RunPage
from .ids import uuid7
from .types import Checkpoint, Page, PendingWrite, SaveResult, ThreadInfo, ThreadPage

__all__ = [
    "TLS",
    "AlreadyExists",
    "AsyncCheckpointClient",
    "CairnError",
    "Claim",
    "Checkpoint",
    "CheckpointClient",
    "Conflict",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "HeadMoved",
    "InvalidArgument",
    "LimitExceeded",
    "NotFound",
    "Page",
    "PendingWrite",
    "ResourceExhausted",
    "RetryPolicy",
    "Run",
    "RunAttempt",
    "RunError",
    "RunIdConflict",
    "RunLease",
    "RunNotFound",
    "RunPage",
    "RunStopped",
    "SaveResult",
    "TargetNotEmpty",
    "ThreadInfo",
    "ThreadPage",
    "Unauthenticated",
    "Unavailable",
    "uuid7",
]
