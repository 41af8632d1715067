import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StateEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_ENCODING_UNSPECIFIED: _ClassVar[StateEncoding]
    STATE_ENCODING_ZSTD: _ClassVar[StateEncoding]

class Durability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DURABILITY_UNSPECIFIED: _ClassVar[Durability]
    DURABILITY_SYNC: _ClassVar[Durability]
    DURABILITY_ASYNC: _ClassVar[Durability]

class PruneStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRUNE_STRATEGY_UNSPECIFIED: _ClassVar[PruneStrategy]
    PRUNE_STRATEGY_KEEP_LATEST: _ClassVar[PruneStrategy]
    PRUNE_STRATEGY_DELETE_ALL: _ClassVar[PruneStrategy]

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_PENDING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_INTERRUPTED: _ClassVar[RunStatus]
    RUN_STATUS_COMPLETED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]
STATE_ENCODING_UNSPECIFIED: StateEncoding
STATE_ENCODING_ZSTD: StateEncoding
DURABILITY_UNSPECIFIED: Durability
DURABILITY_SYNC: Durability
DURABILITY_ASYNC: Durability
PRUNE_STRATEGY_UNSPECIFIED: PruneStrategy
PRUNE_STRATEGY_KEEP_LATEST: PruneStrategy
PRUNE_STRATEGY_DELETE_ALL: PruneStrategy
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_INTERRUPTED: RunStatus
RUN_STATUS_COMPLETED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELLED: RunStatus

class Checkpoint(_message.Message):
    __slots__ = ("thread_id", "namespace", "checkpoint_id", "parent_checkpoint_id", "state", "state_type", "metadata", "created_at", "sequence", "node_name", "next_nodes", "state_size_bytes", "stored_size_bytes", "state_encoding")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    NEXT_NODES_FIELD_NUMBER: _ClassVar[int]
    STATE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_ENCODING_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_checkpoint_id: str
    state: bytes
    state_type: str
    metadata: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    sequence: int
    node_name: str
    next_nodes: _containers.RepeatedScalarFieldContainer[str]
    state_size_bytes: int
    stored_size_bytes: int
    state_encoding: StateEncoding
    def __init__(self, thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., parent_checkpoint_id: _Optional[str] = ..., state: _Optional[bytes] = ..., state_type: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ..., node_name: _Optional[str] = ..., next_nodes: _Optional[_Iterable[str]] = ..., state_size_bytes: _Optional[int] = ..., stored_size_bytes: _Optional[int] = ..., state_encoding: _Optional[_Union[StateEncoding, str]] = ...) -> None: ...

class SaveRequest(_message.Message):
    __slots__ = ("checkpoint", "expected_head_id", "expect_empty", "durability", "replace_existing", "run_lease")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_HEAD_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECT_EMPTY_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    REPLACE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    RUN_LEASE_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    expected_head_id: str
    expect_empty: bool
    durability: Durability
    replace_existing: bool
    run_lease: RunLease
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., expected_head_id: _Optional[str] = ..., expect_empty: _Optional[bool] = ..., durability: _Optional[_Union[Durability, str]] = ..., replace_existing: _Optional[bool] = ..., run_lease: _Optional[_Union[RunLease, _Mapping]] = ...) -> None: ...

class SaveResponse(_message.Message):
    __slots__ = ("checkpoint_id", "sequence", "created_at", "already_existed", "stored_size_bytes", "accepted_state_encodings")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_STATE_ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    sequence: int
    created_at: _timestamp_pb2.Timestamp
    already_existed: bool
    stored_size_bytes: int
    accepted_state_encodings: _containers.RepeatedScalarFieldContainer[StateEncoding]
    def __init__(self, checkpoint_id: _Optional[str] = ..., sequence: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., already_existed: _Optional[bool] = ..., stored_size_bytes: _Optional[int] = ..., accepted_state_encodings: _Optional[_Iterable[_Union[StateEncoding, str]]] = ...) -> None: ...

class SaveStreamRequest(_message.Message):
    __slots__ = ("save",)
    SAVE_FIELD_NUMBER: _ClassVar[int]
    save: SaveRequest
    def __init__(self, save: _Optional[_Union[SaveRequest, _Mapping]] = ...) -> None: ...

class SaveStreamResponse(_message.Message):
    __slots__ = ("save", "error")
    SAVE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    save: SaveResponse
    error: ItemError
    def __init__(self, save: _Optional[_Union[SaveResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class SaveBatchRequest(_message.Message):
    __slots__ = ("saves",)
    SAVES_FIELD_NUMBER: _ClassVar[int]
    saves: _containers.RepeatedCompositeFieldContainer[SaveRequest]
    def __init__(self, saves: _Optional[_Iterable[_Union[SaveRequest, _Mapping]]] = ...) -> None: ...

class SaveBatchResult(_message.Message):
    __slots__ = ("save", "error")
    SAVE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    save: SaveResponse
    error: ItemError
    def __init__(self, save: _Optional[_Union[SaveResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class SaveBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SaveBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SaveBatchResult, _Mapping]]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "reason", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LoadRequest(_message.Message):
    __slots__ = ("thread_id", "namespace", "checkpoint_id", "accept_state_encodings")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_STATE_ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    namespace: str
    checkpoint_id: str
    accept_state_encodings: _containers.RepeatedScalarFieldContainer[StateEncoding]
    def __init__(self, thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., accept_state_encodings: _Optional[_Iterable[_Union[StateEncoding, str]]] = ...) -> None: ...

class PendingWrite(_message.Message):
    __slots__ = ("task_id", "task_path", "idx", "channel", "value_type", "value", "thread_id", "namespace", "checkpoint_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_PATH_FIELD_NUMBER: _ClassVar[int]
    IDX_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_path: str
    idx: int
    channel: str
    value_type: str
    value: bytes
    thread_id: str
    namespace: str
    checkpoint_id: str
    def __init__(self, task_id: _Optional[str] = ..., task_path: _Optional[str] = ..., idx: _Optional[int] = ..., channel: _Optional[str] = ..., value_type: _Optional[str] = ..., value: _Optional[bytes] = ..., thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., checkpoint_id: _Optional[str] = ...) -> None: ...

class LoadResponse(_message.Message):
    __slots__ = ("checkpoint", "pending_writes")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PENDING_WRITES_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    pending_writes: _containers.RepeatedCompositeFieldContainer[PendingWrite]
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., pending_writes: _Optional[_Iterable[_Union[PendingWrite, _Mapping]]] = ...) -> None: ...

class BatchLoadRequest(_message.Message):
    __slots__ = ("loads",)
    LOADS_FIELD_NUMBER: _ClassVar[int]
    loads: _containers.RepeatedCompositeFieldContainer[LoadRequest]
    def __init__(self, loads: _Optional[_Iterable[_Union[LoadRequest, _Mapping]]] = ...) -> None: ...

class BatchLoadResult(_message.Message):
    __slots__ = ("load", "error")
    LOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    load: LoadResponse
    error: ItemError
    def __init__(self, load: _Optional[_Union[LoadResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class BatchLoadResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchLoadResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchLoadResult, _Mapping]]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("thread_id", "namespace", "metadata_filter", "before_checkpoint_id", "page_size", "page_token", "include_state", "include_writes", "accept_state_encodings")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FILTER_FIELD_NUMBER: _ClassVar[int]
    BEFORE_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_STATE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_WRITES_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_STATE_ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    namespace: str
    metadata_filter: _struct_pb2.Struct
    before_checkpoint_id: str
    page_size: int
    page_token: str
    include_state: bool
    include_writes: bool
    accept_state_encodings: _containers.RepeatedScalarFieldContainer[StateEncoding]
    def __init__(self, thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., metadata_filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., before_checkpoint_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_state: _Optional[bool] = ..., include_writes: _Optional[bool] = ..., accept_state_encodings: _Optional[_Iterable[_Union[StateEncoding, str]]] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("checkpoints", "next_page_token", "pending_writes")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PENDING_WRITES_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    next_page_token: str
    pending_writes: _containers.RepeatedCompositeFieldContainer[PendingWrite]
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., pending_writes: _Optional[_Iterable[_Union[PendingWrite, _Mapping]]] = ...) -> None: ...

class ListThreadsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "metadata_filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    METADATA_FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    metadata_filter: _struct_pb2.Struct
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., metadata_filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ThreadInfo(_message.Message):
    __slots__ = ("thread_id", "checkpoint_count", "head_checkpoint_id", "head_metadata", "updated_at", "head_node_name", "head_next_nodes")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    HEAD_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    HEAD_METADATA_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    HEAD_NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    HEAD_NEXT_NODES_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    checkpoint_count: int
    head_checkpoint_id: str
    head_metadata: _struct_pb2.Struct
    updated_at: _timestamp_pb2.Timestamp
    head_node_name: str
    head_next_nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, thread_id: _Optional[str] = ..., checkpoint_count: _Optional[int] = ..., head_checkpoint_id: _Optional[str] = ..., head_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., head_node_name: _Optional[str] = ..., head_next_nodes: _Optional[_Iterable[str]] = ...) -> None: ...

class ListThreadsResponse(_message.Message):
    __slots__ = ("threads", "next_page_token")
    THREADS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    threads: _containers.RepeatedCompositeFieldContainer[ThreadInfo]
    next_page_token: str
    def __init__(self, threads: _Optional[_Iterable[_Union[ThreadInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("thread_id", "namespace", "checkpoint_id")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    namespace: str
    checkpoint_id: str
    def __init__(self, thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., checkpoint_id: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class ClearRequest(_message.Message):
    __slots__ = ("thread_id",)
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ...) -> None: ...

class ClearResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class Write(_message.Message):
    __slots__ = ("idx", "channel", "value_type", "value")
    IDX_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    idx: int
    channel: str
    value_type: str
    value: bytes
    def __init__(self, idx: _Optional[int] = ..., channel: _Optional[str] = ..., value_type: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class PutWritesRequest(_message.Message):
    __slots__ = ("thread_id", "namespace", "checkpoint_id", "task_id", "task_path", "writes", "replace", "run_lease")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_PATH_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    RUN_LEASE_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    namespace: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: _containers.RepeatedCompositeFieldContainer[Write]
    replace: bool
    run_lease: RunLease
    def __init__(self, thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., task_id: _Optional[str] = ..., task_path: _Optional[str] = ..., writes: _Optional[_Iterable[_Union[Write, _Mapping]]] = ..., replace: _Optional[bool] = ..., run_lease: _Optional[_Union[RunLease, _Mapping]] = ...) -> None: ...

class PutWritesResponse(_message.Message):
    __slots__ = ("written_count",)
    WRITTEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    written_count: int
    def __init__(self, written_count: _Optional[int] = ...) -> None: ...

class CopyThreadRequest(_message.Message):
    __slots__ = ("source_thread_id", "target_thread_id")
    SOURCE_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    source_thread_id: str
    target_thread_id: str
    def __init__(self, source_thread_id: _Optional[str] = ..., target_thread_id: _Optional[str] = ...) -> None: ...

class CopyThreadResponse(_message.Message):
    __slots__ = ("copied_count",)
    COPIED_COUNT_FIELD_NUMBER: _ClassVar[int]
    copied_count: int
    def __init__(self, copied_count: _Optional[int] = ...) -> None: ...

class PruneRequest(_message.Message):
    __slots__ = ("thread_ids", "strategy", "keep_count")
    THREAD_IDS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    KEEP_COUNT_FIELD_NUMBER: _ClassVar[int]
    thread_ids: _containers.RepeatedScalarFieldContainer[str]
    strategy: PruneStrategy
    keep_count: int
    def __init__(self, thread_ids: _Optional[_Iterable[str]] = ..., strategy: _Optional[_Union[PruneStrategy, str]] = ..., keep_count: _Optional[int] = ...) -> None: ...

class PruneResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class DeleteRunsRequest(_message.Message):
    __slots__ = ("run_ids",)
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteRunsResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class RunLease(_message.Message):
    __slots__ = ("run_id", "epoch", "token", "expires_at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    epoch: int
    token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., epoch: _Optional[int] = ..., token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_attempts", "initial_backoff_ms", "backoff_coefficient", "max_backoff_ms", "max_recoveries")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RECOVERIES_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    initial_backoff_ms: int
    backoff_coefficient: float
    max_backoff_ms: int
    max_recoveries: int
    def __init__(self, max_attempts: _Optional[int] = ..., initial_backoff_ms: _Optional[int] = ..., backoff_coefficient: _Optional[float] = ..., max_backoff_ms: _Optional[int] = ..., max_recoveries: _Optional[int] = ...) -> None: ...

class RunError(_message.Message):
    __slots__ = ("reason", "type", "message", "retryable")
    REASON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    type: str
    message: str
    retryable: bool
    def __init__(self, reason: _Optional[str] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class RunAttempt(_message.Message):
    __slots__ = ("number", "worker_id", "started_at", "ended_at", "status", "error", "recovered")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    number: int
    worker_id: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    status: RunStatus
    error: RunError
    recovered: bool
    def __init__(self, number: _Optional[int] = ..., worker_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[RunStatus, str]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., recovered: _Optional[bool] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "thread_id", "queue", "status", "input", "input_type", "metadata", "retry_policy", "execution_timeout_ms", "created_at", "started_at", "updated_at", "ended_at", "attempt_count", "failed_attempt_count", "recovery_count", "cancel_requested", "worker_id", "lease_epoch", "lease_expires_at", "not_before", "error", "output", "output_type", "checkpoint_id", "attempts")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    thread_id: str
    queue: str
    status: RunStatus
    input: bytes
    input_type: str
    metadata: _struct_pb2.Struct
    retry_policy: RetryPolicy
    execution_timeout_ms: int
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    attempt_count: int
    failed_attempt_count: int
    recovery_count: int
    cancel_requested: bool
    worker_id: str
    lease_epoch: int
    lease_expires_at: _timestamp_pb2.Timestamp
    not_before: _timestamp_pb2.Timestamp
    error: RunError
    output: bytes
    output_type: str
    checkpoint_id: str
    attempts: _containers.RepeatedCompositeFieldContainer[RunAttempt]
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., queue: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., input: _Optional[bytes] = ..., input_type: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., execution_timeout_ms: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt_count: _Optional[int] = ..., failed_attempt_count: _Optional[int] = ..., recovery_count: _Optional[int] = ..., cancel_requested: _Optional[bool] = ..., worker_id: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., output: _Optional[bytes] = ..., output_type: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[RunAttempt, _Mapping]]] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("run_id", "thread_id", "queue", "input", "input_type", "metadata", "retry_policy", "execution_timeout_ms", "not_before")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    thread_id: str
    queue: str
    input: bytes
    input_type: str
    metadata: _struct_pb2.Struct
    retry_policy: RetryPolicy
    execution_timeout_ms: int
    not_before: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., queue: _Optional[str] = ..., input: _Optional[bytes] = ..., input_type: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., execution_timeout_ms: _Optional[int] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("run", "already_existed")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    run: Run
    already_existed: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., already_existed: _Optional[bool] = ...) -> None: ...

class ClaimRunRequest(_message.Message):
    __slots__ = ("queue", "worker_id", "lease_duration_ms", "wait_ms")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    worker_id: str
    lease_duration_ms: int
    wait_ms: int
    def __init__(self, queue: _Optional[str] = ..., worker_id: _Optional[str] = ..., lease_duration_ms: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class ClaimRunResponse(_message.Message):
    __slots__ = ("run", "lease", "recovered")
    RUN_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    run: Run
    lease: RunLease
    recovered: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., lease: _Optional[_Union[RunLease, _Mapping]] = ..., recovered: _Optional[bool] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("lease", "lease_duration_ms")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LEASE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    lease: RunLease
    lease_duration_ms: int
    def __init__(self, lease: _Optional[_Union[RunLease, _Mapping]] = ..., lease_duration_ms: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("lease",)
    LEASE_FIELD_NUMBER: _ClassVar[int]
    lease: RunLease
    def __init__(self, lease: _Optional[_Union[RunLease, _Mapping]] = ...) -> None: ...

class CompleteRunRequest(_message.Message):
    __slots__ = ("lease", "output", "output_type", "interrupted", "checkpoint_id")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    lease: RunLease
    output: bytes
    output_type: str
    interrupted: bool
    checkpoint_id: str
    def __init__(self, lease: _Optional[_Union[RunLease, _Mapping]] = ..., output: _Optional[bytes] = ..., output_type: _Optional[str] = ..., interrupted: _Optional[bool] = ..., checkpoint_id: _Optional[str] = ...) -> None: ...

class CompleteRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class FailRunRequest(_message.Message):
    __slots__ = ("lease", "error")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    lease: RunLease
    error: RunError
    def __init__(self, lease: _Optional[_Union[RunLease, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ...) -> None: ...

class FailRunResponse(_message.Message):
    __slots__ = ("run", "will_retry")
    RUN_FIELD_NUMBER: _ClassVar[int]
    WILL_RETRY_FIELD_NUMBER: _ClassVar[int]
    run: Run
    will_retry: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., will_retry: _Optional[bool] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "statuses", "queue", "thread_id", "created_after", "created_before")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[RunStatus]
    queue: str
    thread_id: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[RunStatus, str]]] = ..., queue: _Optional[str] = ..., thread_id: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
