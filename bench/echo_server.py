"""A bare gRPC server in Python (grpc.aio) speaking cairn.v1.CheckpointStore with no storage behind it.

The reference point for `make bench`: the same load generator (`cairn bench`) drives it with the same
messages. Requests are parsed with the real protobuf classes (as any server must); answers have the sizes a
real server's have: Save -> a SaveResponse, Load -> a LoadResponse carrying one of the same ~37 KB agent
states, List -> 10 checkpoints without state, BatchLoad -> one LoadResponse per item, PutWrites -> its count, SaveStream -> one
SaveResponse per item. Nothing is stored, so this is the ceiling of a Python gRPC server on this machine.

With `--postgres-dsn` it is the *durable floor* instead: every save's state is compressed at the server's
default zstd level (1) and committed to Postgres with one plain INSERT per group commit (the server's own
GroupCommit, one transaction at a time like `--commit-concurrency 1`, on a connection held for it). No
validation, thread locks, versions, head checks or secondary indexes: the least any durable store behind a Python
gRPC server does per save, so what no such server can beat on this machine (`make bench`'s "durable floor" row).

    python bench/echo_server.py serve --listen 127.0.0.1:50061 [--postgres-dsn postgresql://...]
(`serve --listen` so the test harness's CairnProcess class can run it.)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

import asyncpg
import grpc
import zstandard
from google.protobuf import struct_pb2

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn_tools.bench.states import agent_states
from cairn_server.config import Config
from cairn_server.server import run_event_loop
from cairn_server.storage.group_commit import GroupCommit

SERVICE = "cairn.v1.CheckpointStore"


def _checkpoint(i: int, state: bytes | None) -> pb.Checkpoint:
    meta = struct_pb2.Struct()
    meta.update({"source": "loop", "step": i, "bench": True})
    cp = pb.Checkpoint(
        thread_id=f"bench-0000000000-{i:05d}",
        checkpoint_id=f"0193a2b4-c5d6-7e8f-9a0b-{i:012d}",
        parent_checkpoint_id=f"0193a2b4-c5d6-7e8f-9a0b-{i + 1:012d}",
        state=state or b"",
        state_type="json",
        metadata=meta,
        sequence=1000 + i,
        node_name="agent",
        next_nodes=["tools"],
        state_size_bytes=37_000,
        stored_size_bytes=14_800,
    )
    cp.created_at.GetCurrentTime()
    return cp


class Floor:
    """The durable floor's storing: zstd at the server's default level, one plain INSERT per group commit."""

    TABLE = """CREATE TABLE IF NOT EXISTS bench_floor (
        row_id bigserial PRIMARY KEY, thread_id text NOT NULL, checkpoint_id text NOT NULL, state bytea NOT NULL)"""
    INSERT = ("INSERT INTO bench_floor (thread_id, checkpoint_id, state) "
              "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.compressor = zstandard.ZstdCompressor(level=Config().zstd_level)
        self.group: GroupCommit[tuple[str, str, bytes], None] = GroupCommit(self._commit, max_inflight=1)

    @classmethod
    async def open(cls, dsn: str) -> Floor:
        conn = await asyncpg.connect(dsn)
        await conn.execute(cls.TABLE)
        return cls(conn)

    async def _commit(self, rows: list[tuple[str, str, bytes]]) -> list[None | Exception]:
        await self.conn.execute(self.INSERT, *(list(col) for col in zip(*rows, strict=True)))
        return [None] * len(rows)

    async def store(self, saves: list[pb.SaveRequest]) -> None:
        """Every save's state, committed (fsync'd) before this returns."""
        rows = [(s.checkpoint.thread_id, s.checkpoint.checkpoint_id, self.compressor.compress(s.checkpoint.state))
                for s in saves]
        await self.group.submit_many(rows)  # a failed commit raises here: _commit returns no per-row errors


class Echo:
    def __init__(self, floor: Floor | None = None) -> None:
        self.floor = floor
        states = agent_states(64, 42).states
        self.loads = [pb.LoadResponse(checkpoint=_checkpoint(i, s)).SerializeToString() for i, s in enumerate(states)]
        self.load_results = [pb.BatchLoadResult(load=pb.LoadResponse.FromString(b)) for b in self.loads]
        self.list_page = pb.ListResponse(
            checkpoints=[_checkpoint(i, None) for i in range(10)], next_page_token="x" * 40
        ).SerializeToString()
        self.n = 0

    def _save_response(self, req: pb.SaveRequest) -> pb.SaveResponse:
        self.n += 1
        resp = pb.SaveResponse(
            checkpoint_id=req.checkpoint.checkpoint_id, sequence=self.n, stored_size_bytes=len(req.checkpoint.state)
        )
        resp.created_at.FromNanoseconds(time.time_ns())
        return resp

    async def save(self, req: pb.SaveRequest, context: grpc.aio.ServicerContext) -> bytes:
        if self.floor is not None:
            await self.floor.store([req])
        return self._save_response(req).SerializeToString()

    async def save_batch(self, req: pb.SaveBatchRequest, context: grpc.aio.ServicerContext) -> bytes:
        if self.floor is not None:
            await self.floor.store(list(req.saves))
        return pb.SaveBatchResponse(
            results=[pb.SaveBatchResult(save=self._save_response(s)) for s in req.saves]
        ).SerializeToString()

    async def load(self, req: pb.LoadRequest, context: grpc.aio.ServicerContext) -> bytes:
        self.n += 1
        return self.loads[self.n % len(self.loads)]

    async def list(self, req: pb.ListRequest, context: grpc.aio.ServicerContext) -> bytes:
        return self.list_page

    async def batch_load(self, req: pb.BatchLoadRequest, context: grpc.aio.ServicerContext) -> bytes:
        k = len(self.load_results)
        return pb.BatchLoadResponse(results=[self.load_results[i % k] for i in range(len(req.loads))]).SerializeToString()

    async def put_writes(self, req: pb.PutWritesRequest, context: grpc.aio.ServicerContext) -> bytes:
        return pb.PutWritesResponse(written_count=len(req.writes)).SerializeToString()

    async def save_stream(self, requests, context: grpc.aio.ServicerContext):
        async for req in requests:
            if self.floor is not None:
                await self.floor.store([req.save])
            yield pb.SaveStreamResponse(save=self._save_response(req.save)).SerializeToString()


async def serve(listen: str, postgres_dsn: str | None) -> None:
    echo = Echo(await Floor.open(postgres_dsn) if postgres_dsn else None)
    unary = grpc.unary_unary_rpc_method_handler
    handlers = {
        "Save": unary(echo.save, request_deserializer=pb.SaveRequest.FromString),
        "SaveBatch": unary(echo.save_batch, request_deserializer=pb.SaveBatchRequest.FromString),
        "Load": unary(echo.load, request_deserializer=pb.LoadRequest.FromString),
        "List": unary(echo.list, request_deserializer=pb.ListRequest.FromString),
        "BatchLoad": unary(echo.batch_load, request_deserializer=pb.BatchLoadRequest.FromString),
        "PutWrites": unary(echo.put_writes, request_deserializer=pb.PutWritesRequest.FromString),
        "SaveStream": grpc.stream_stream_rpc_method_handler(
            echo.save_stream, request_deserializer=pb.SaveStreamRequest.FromString
        ),
    }
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if server.add_insecure_port(listen) == 0:
        raise SystemExit(f"echo_server: cannot listen on {listen}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{'durable floor' if echo.floor else 'echo server'} on {listen}", flush=True)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["serve"])
    p.add_argument("--listen", default="127.0.0.1:50061")
    p.add_argument("--postgres-dsn", help="store every save: the durable floor (see above)")
    args, _ = p.parse_known_args()
    run_event_loop(serve(args.listen, args.postgres_dsn))  # the same event loop as `cairn serve` (uvloop when installed)


if __name__ == "__main__":
    main()
