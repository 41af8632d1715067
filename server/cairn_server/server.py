"""Build the store from the config, serve it over gRPC, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cairn.v1 import checkpoint_store_pb2 as pb

from .auth import Authenticator
from .keys import check_keys
from .readiness import Readiness
from .codec import Codec, parse_keys
from .config import Config, StartupError
from cairn.errors import Unavailable
from .service import CheckpointStoreService
from .storage.base import CacheUnavailable, ColdStore, HotCache
from .storage.memory_cache import MemoryCache
from .storage.near_cache import NearCache
from .storage.tiered import TieredStore

if TYPE_CHECKING:
    from .storage.redis_cache import RedisCache

log = logging.getLogger("cairn.server")
T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CheckpointStore"].full_name


def dsn_host(dsn: str) -> str:
    """host:port (or the socket directory) a Postgres DSN points at, for messages; never its password."""
    from urllib.parse import parse_qs, urlsplit

    if "://" not in dsn:  # key=value form
        pairs = dict(item.split("=", 1) for item in dsn.split() if "=" in item)
        return f"{pairs.get('host', 'localhost')}:{pairs.get('port', '5432')}"
    parts = urlsplit(dsn)
    try:
        port = parts.port or 5432
    except ValueError:
        port = parts.netloc.rsplit(":", 1)[-1]
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    return f"{host}:{port}"


async def open_cold(config: Config) -> ColdStore:
    """The durable tier alone: Postgres when a DSN is given, else the SQLite file.

    Raises:
        StartupError: Postgres cannot be reached or refuses the DSN's role, password or database.
    """
    if config.postgres_dsn:
        import asyncpg

        from .storage.postgres import PostgresColdStore

        where = dsn_host(config.postgres_dsn)
        try:
            return await PostgresColdStore.open(
                config.postgres_dsn,
                pool_size=config.postgres_pool_size,
                statement_cache_size=config.postgres_statement_cache_size,
                timeout_seconds=config.cold_timeout_seconds,
                migrate=config.migrate,
            )
        except Unavailable as exc:
            cause = exc.__cause__ or exc
            if isinstance(cause, asyncpg.TargetServerAttributeNotMatched):
                raise StartupError(
                    f"--postgres-dsn: no host of {where} accepts writes (each is a standby or read-only); "
                    "Cairn reads and writes the primary only: name it in the DSN"
                ) from None
            reason = _one_line(str(cause)) or type(cause).__name__
            raise StartupError(
                f"--postgres-dsn: cannot reach Postgres at {where} ({reason}); check that it runs and that "
                "this host can connect to it"
            ) from None
        except asyncpg.PostgresError as exc:  # the server answered: wrong role, password, database, rights
            raise StartupError(
                f"--postgres-dsn: Postgres at {where} refused: {_one_line(str(exc))} (SQLSTATE {exc.sqlstate}); "
                "check the user, password and database in the DSN"
            ) from None
    from .storage.sqlite import SqliteColdStore

    return await SqliteColdStore.open(config.sqlite_path, migrate=config.migrate)


async def open_store(config: Config) -> TieredStore:
    """The tiers the config asks for; no Redis/Postgres given = the embedded default."""
    cold = await open_cold(config)
    cache: HotCache
    if config.redis_url:
        from .storage.redis_cache import RedisCache

        redis_cache = RedisCache.from_url(
            config.redis_url, ttl_seconds=config.cache_ttl_seconds, timeout_seconds=config.cache_timeout_seconds,
            cluster=config.redis_cluster,
        )
        await warn_if_redis_unreachable(redis_cache)
        cache = redis_cache
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
        commit_batch_bytes=config.max_commit_batch_bytes, recent_ttl_seconds=config.cache_recent_ttl_seconds,
        fill_on_save=config.cache_fill_on_save,
    )
    store.holds_encrypted, store.refuse_plaintext = holds_encrypted, refuse_plaintext
    return store


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def warn_if_redis_unreachable(cache: RedisCache) -> None:
    """One warning line when Redis (or a Redis Cluster's slot map) does not answer at start. The server still
    starts: the cache is an accelerator, so until Redis answers every read and write goes to the cold store (see
    storage/tiered.py). A single-node URL at a cluster node is a StartupError naming the fix."""
    try:
        await asyncio.wait_for(cache.ping(), max(cache.redis.timeout_seconds, 1.0) * 2)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    except (CacheUnavailable, OSError, asyncio.TimeoutError) as exc:
        log.warning(
            "--redis-url: Redis at %s is unreachable (%s); serving degraded: reads and writes go to the cold "
            "store until Redis answers",
            cache.redis.target.where(), _one_line(str(exc)) or type(exc).__name__,
        )


def bind_problem(flag: str, listen: str, *, reuse_port: bool = False) -> str | None:
    """Why `listen` cannot be bound, found by binding it with a plain socket first (gRPC only logs that it
    failed, in a line of its own), or None when it can. The message names the flag and says what to do."""
    if listen.startswith("unix:"):
        path = listen[len("unix:"):]
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            return f"{flag} {listen}: directory {directory} does not exist; create it or choose another path"
        if not os.access(directory, os.W_OK):
            return f"{flag} {listen}: directory {directory} is not writable by this user; choose another path"
        return None
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, ValueError) as exc:
        return f"{flag} {listen}: cannot resolve host {host!r} ({getattr(exc, 'strerror', exc)}); use an IP address"
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return (f"{flag} {listen}: address already in use; stop the process listening there or choose "
                            f"another port with {flag}")
                return f"{flag} {listen}: cannot bind ({exc.strerror}); use an address of this host"
    return None


def grpc_options(config: Config) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # Off unless several workers share the port, so a second server on a busy port fails loudly.
        ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
    ]


def check_workers(config: Config) -> None:
    """Several processes need a port they can share.

    Not a shared cache: every process checks its own in-process copies against the cold store's versions
    (storage/freshness.py), so Redis only adds hits; and both cold stores take writers from several processes
    (Postgres, and SQLite through its file lock)."""
    if config.workers <= 1:
        return
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
        problem = bind_problem("--listen", config.listen, reuse_port=config.workers > 1)
        if problem:
            raise StartupError(problem)
        try:
            if creds is None:
                self.port = self.server.add_insecure_port(config.listen)
            else:
                self.port = self.server.add_secure_port(config.listen, creds)
        except RuntimeError:  # grpc: "Failed to bind to address ..."
            self.port = 0
        if self.port == 0:
            raise StartupError(f"--listen {config.listen}: gRPC could not bind it; choose another address")

    async def start(self) -> None:
        await self.server.start()
        self.service._start_sweeper()
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
    """Run config.workers server processes on one port; forward SIGTERM/SIGINT; exit with the worst code.

    With --metrics-listen, this process serves the one /metrics endpoint, gathering the workers' metrics
    (metrics.WorkerAggregator); each worker serves its own on a free port of 127.0.0.1 and writes that port
    into a shared array.

    Raises:
        StartupError: the metrics address cannot be bound.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: gRPC must not be forked after init
    worker_ports = ctx.Array("i", config.workers, lock=False)
    if config.metrics_listen:
        from .metrics import serve_aggregated

        try:
            serve_aggregated(config.metrics_listen, worker_ports)
        except OSError:
            raise StartupError(
                        bind_problem("--metrics-listen", config.metrics_listen)
                        or f"--metrics-listen {config.metrics_listen}: cannot serve /metrics there"
                    ) from None
    procs = []
    for index in range(config.workers):
        proc = ctx.Process(
            target=_worker_main, args=(config, auth, index, worker_ports), name=f"cairn-worker-{index}"
        )
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


def _worker_main(config: Config, auth: Authenticator | None, index: int, worker_ports: Any) -> None:
    from . import logs

    logs.setup(config.log_level, config.log_format)
    try:
        run_event_loop(serve(config, auth, worker_index=index, worker_ports=worker_ports), config.event_loop)
    except (StartupError, ValueError, OSError) as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # a Ctrl-C that lands before the loop's handler is installed
        sys.exit(130)


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


async def serve(
    config: Config, auth: Authenticator | None = None, worker_index: int = 0, worker_ports: Any = None
) -> None:
    """Serve until SIGTERM or SIGINT, then drain and close.

    Raises:
        StartupError: the store, the listen address or the metrics address cannot be set up.
    """
    received: list[signal.Signals] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda sig=sig: (received.append(sig), stop.set()))
    store = await open_store(config)
    try:
        metrics = None
        if config.metrics_listen:
            from .metrics import Metrics

            metrics = Metrics(worker_index=worker_index)
            metrics.watch_store(store)
            if worker_ports is not None:  # --workers: the parent serves them all (serve_workers)
                worker_ports[worker_index] = metrics.serve("127.0.0.1:0")
            else:
                try:
                    metrics.serve(config.metrics_listen)
                except OSError:
                    raise StartupError(
                bind_problem("--metrics-listen", config.metrics_listen)
                or f"--metrics-listen {config.metrics_listen}: cannot serve /metrics there"
            ) from None
        server = CairnServer(config, store, auth, metrics)
        await server.start()
    except BaseException:
        await store.aclose()
        raise
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
    log.info("%s: not serving; draining in-flight calls for up to %.1fs (pid %d)",
             received[0].name if received else "stop", config.grace_seconds, os.getpid())
    if retention is not None:
        retention.cancel()
    await server.stop(config.grace_seconds)
    log.info("drained and closed; exiting")
