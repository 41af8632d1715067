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
STATE_ENCODING_UNSPECIFIED: StateEncoding
STATE_ENCODING_ZSTD: StateEncoding
DURABILITY_UNSPECIFIED: Durability
DURABILITY_SYNC: Durability
DURABILITY_ASYNC: Durability
PRUNE_STRATEGY_UNSPECIFIED: PruneStrategy
PRUNE_STRATEGY_KEEP_LATEST: PruneStrategy
PRUNE_STRATEGY_DELETE_ALL: PruneStrategy

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
    __slots__ = ("checkpoint", "expected_head_id", "expect_empty", "durability", "replace_existing")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_HEAD_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECT_EMPTY_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    REPLACE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    expected_head_id: str
    expect_empty: bool
    durability: Durability
    replace_existing: bool
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., expected_head_id: _Optional[str] = ..., expect_empty: _Optional[bool] = ..., durability: _Optional[_Union[Durability, str]] = ..., replace_existing: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("thread_id", "namespace", "checkpoint_id", "task_id", "task_path", "writes", "replace")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_PATH_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    namespace: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: _containers.RepeatedCompositeFieldContainer[Write]
    replace: bool
    def __init__(self, thread_id: _Optional[str] = ..., namespace: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., task_id: _Optional[str] = ..., task_path: _Optional[str] = ..., writes: _Optional[_Iterable[_Union[Write, _Mapping]]] = ..., replace: _Optional[bool] = ...) -> None: ...

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
