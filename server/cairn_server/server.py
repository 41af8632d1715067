"""Build the store from the config, serve it over gRPC, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cairn.v1 import checkpoint_store_pb2 as pb

from .auth import Authenticator
from .keys import check_keys
from .readiness import Readiness
from .codec import Codec, parse_keys
from .config import Config
from .service import CheckpointStoreService
from .storage.base import ColdStore, HotCache
from .storage.memory_cache import MemoryCache
from .storage.near_cache import NearCache
from .storage.tiered import TieredStore

log = logging.getLogger("cairn.server")
T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CheckpointStore"].full_name


async def open_cold(config: Config) -> ColdStore:
    """The durable tier alone: Postgres when a DSN is given, else the SQLite file."""
    if config.postgres_dsn:
        from .storage.postgres import PostgresColdStore

        return await PostgresColdStore.open(
            config.postgres_dsn,
            pool_size=config.postgres_pool_size,
            timeout_seconds=config.cold_timeout_seconds,
            migrate=config.migrate,
        )
    from .storage.sqlite import SqliteColdStore

    return await SqliteColdStore.open(config.sqlite_path, migrate=config.migrate)


async def open_store(config: Config) -> TieredStore:
    """The tiers the config asks for; no Redis/Postgres given = the embedded default."""
    cold = await open_cold(config)
    cache: HotCache
    if config.redis_url:
        from .storage.redis_cache import RedisCache

        cache = RedisCache.from_url(
            config.redis_url, ttl_seconds=config.cache_ttl_seconds, timeout_seconds=config.cache_timeout_seconds,
        )
    else:
        cache = MemoryCache(config.cache_max_entries, config.cache_ttl_seconds, config.cache_max_mb << 20)
    keys = parse_keys(config.encryption_keys) if config.encryption_keys else None
    codec = Codec(config.zstd_level, keys, use_dictionary=config.zstd_dictionary == "latest")
    codec.add_dictionaries(await cold.dictionaries())
    if config.near_lease_ms:
        log.warning("--near-lease-ms is ignored: reads no longer trust leases, the cold store says what is current")
    near = NearCache(config.near_cache_mb << 20) if config.near_cache_mb else None
    holds_encrypted, refuse_plaintext = await check_keys(cold, codec, config.allow_plaintext_saves)
    store = TieredStore(
        cold, cache, codec, near=near, commit_concurrency=max(1, config.commit_concurrency),
        commit_batch_bytes=config.max_commit_batch_bytes,
    )
    store.holds_encrypted, store.refuse_plaintext = holds_encrypted, refuse_plaintext
    return store


def grpc_options(config: Config) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # Off unless several workers share the port, so a second server on a busy port fails loudly.
        ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
    ]


def check_workers(config: Config) -> None:
    """Several processes are only safe with a cache they share and a port they can share."""
    if config.workers <= 1:
        return
    if not config.redis_url:
        raise ValueError(
            "--workers above 1 needs --redis-url: each process would otherwise keep its own in-process cache, "
            "and one process could serve a checkpoint another has deleted"
        )
    if config.listen.startswith("unix:") or config.listen.endswith(":0"):
        raise ValueError("--workers above 1 needs a TCP --listen host:port with a fixed port (SO_REUSEPORT)")


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS from --tls-cert/--tls-key; mutual TLS when --tls-client-ca is given."""
    if not (config.tls_cert or config.tls_key):
        if config.tls_client_ca:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS runs over TLS")
        return None
    if not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    with open(config.tls_key, "rb") as k, open(config.tls_cert, "rb") as c:
        pair = [(k.read(), c.read())]
    client_ca = None
    if config.tls_client_ca:
        with open(config.tls_client_ca, "rb") as f:
            client_ca = f.read()
    return grpc.ssl_server_credentials(pair, root_certificates=client_ca, require_client_auth=client_ca is not None)


class CairnServer:
    """A running server: gRPC, health, reflection, and the store beneath."""

    def __init__(
        self, config: Config, store: TieredStore, auth: Authenticator | None = None, metrics: Any = None
    ) -> None:
        self.config = config
        self.store = store
        self.server = grpc.aio.server(options=grpc_options(config))
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        service = CheckpointStoreService(store, config, auth, metrics)
        self.service = service
        self.readiness = Readiness(
            store.cold, self._follow_cold_store, config.health_probe_seconds,
            min(config.cold_timeout_seconds, config.health_probe_seconds * 2),
        )
        self.server.add_generic_rpc_handlers((service.handlers(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
        )
        creds = server_credentials(config)
        if creds is None:
            self.port = self.server.add_insecure_port(config.listen)
        else:
            self.port = self.server.add_secure_port(config.listen, creds)
        if self.port == 0:
            raise OSError(f"cannot listen on {config.listen}: address in use or not allowed")

    async def start(self) -> None:
        await self.server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self.readiness.start()

    async def _follow_cold_store(self, ready: bool) -> None:
        await self._set_health(
            health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def _set_health(self, status: int) -> None:
        for name in ("", SERVICE_NAME):
            result = self.health.set(name, status)
            if asyncio.iscoroutine(result):
                await result

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Health to NOT_SERVING, refuse new calls, let in-flight ones finish within the grace, close the store."""
        await self.readiness.aclose()
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace_seconds)
        self.service.close_runs()
        await self.store.aclose()


def serve_workers(config: Config, auth: Authenticator | None) -> int:
    """Run config.workers server processes on one port; forward SIGTERM/SIGINT; exit with the worst code."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: gRPC must not be forked after init
    procs = []
    for index in range(config.workers):
        worker_config = replace(config, metrics_listen=_offset_port(config.metrics_listen, index))
        proc = ctx.Process(target=_worker_main, args=(worker_config, auth, index), name=f"cairn-worker-{index}")
        proc.start()
        procs.append(proc)

    def forward(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    return max((proc.exitcode or 0) for proc in procs)


def _offset_port(listen: str | None, index: int) -> str | None:
    if not listen or index == 0:
        return listen
    host, _, port = listen.rpartition(":")
    return f"{host}:{int(port) + index}"


def _worker_main(config: Config, auth: Authenticator | None, index: int) -> None:
    from . import logs

    logs.setup(config.log_level, config.log_format)
    run_event_loop(serve(config, auth, worker_index=index), config.event_loop)


def run_event_loop(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """asyncio.run, on uvloop unless told `asyncio` (auto: when installed). grpc.aio runs on any asyncio loop;
    uvloop's C loop makes every await cheaper, which is most of what a call costs here."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                main.close()
                raise ValueError("--event-loop uvloop: uvloop is not installed (pip install uvloop)") from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)


async def serve(config: Config, auth: Authenticator | None = None, worker_index: int = 0) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = await open_store(config)
    metrics = None
    if config.metrics_listen:
        from .metrics import Metrics

        metrics = Metrics()
        metrics.watch_store(store)
        metrics.serve(config.metrics_listen)
    server = CairnServer(config, store, auth, metrics)
    await server.start()
    # Everything allocated so far (modules, descriptors, the store) lives as long as the process: keep it out of
    # the collector's full passes, which otherwise walk it all and stall every call in flight meanwhile.
    gc.freeze()
    retention = None
    if worker_index == 0 and (config.retention_max_checkpoints or config.retention_max_age_seconds):
        from .retention import run_retention

        retention = asyncio.get_running_loop().create_task(run_retention(store, config))
    log.info(
        "cairn serving on %s (%s, %s loop%s%s)%s; config %s",
        config.listen if not config.listen.endswith(":0") else f"{config.listen[:-2]}:{server.port}",
        store.tiers,
        type(asyncio.get_running_loop()).__module__.split(".")[0],
        ", tls" + (" with client certificates" if config.tls_client_ca else "") if config.tls_cert else "",
        ", auth on" if auth is not None and auth.enabled else "",
        f" as worker {worker_index + 1} of {config.workers}" if config.workers > 1 else "",
        json.dumps(config.redacted()),
    )
    await stop.wait()
    log.info("SIGTERM: not serving; draining in-flight calls for up to %.1fs (pid %d)", config.grace_seconds,
             os.getpid())
    if retention is not None:
        retention.cancel()
    await server.stop(config.grace_seconds)
    log.info("drained and closed; exiting")
