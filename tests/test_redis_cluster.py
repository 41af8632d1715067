"""Issue 28, Redis Cluster: Cairn on a local cluster of 3 masters and 3 replicas (tests/harness RedisCluster).

  * `redis+cluster://` seed URLs and `--redis-cluster` are accepted, and the cache really serves from the cluster:
    hits, no cache errors, keys on every master.
  * What the cache cannot honour is refused at start with one line: a cluster node given as a single Redis, a
    database other than 0 on a cluster, URL options the cache would ignore (socket timeouts, pool sizes...).
  * The client follows MOVED (a CLUSTER FAILOVER) and ASK (a slot migrating with its keys) without a miss.
  * The contract suite (tests/test_store_contract.py) runs against the cluster, then the metrics are read: a real
    hit rate and 0 cache errors at rest.
The coherence run under a failover and reshards is tests/test_coherence_cluster.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cairn_client import CheckpointClient
from tests.conftest import new_database
from tests.harness import CairnProcess, RedisCluster, free_port

# The contract suite, collected again in this module so that it runs on the cluster backend below.
from tests.test_store_contract import (  # noqa: F401
    TestAsyncClient,
    TestBadInput,
    TestBatchAndStream,
    TestCompareAndSet,
    TestDeleteClear,
    TestIdempotencyAndConflicts,
    TestList,
    TestSaveLoad,
    TestThreadOps,
    TestWrites,
)

METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def backend_server(server_factory):  # type: ignore[no-untyped-def]
    """The contract suite's server, here on Postgres + the Redis Cluster (near cache off), with metrics."""
    return server_factory("redis-cluster+postgres", metrics_listen=f"127.0.0.1:{METRICS_PORT}")


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
            for f in text_string_to_metric_families(text)}


def cache_counts(port: int) -> dict[str, float]:
    families = scrape(port)
    lookups = families["cairn_cache_lookups"]
    return {
        "hits": lookups[(("result", "hits"),)],
        "misses": lookups[(("result", "misses"),)],
        "errors": families["cairn_backend_errors"][(("backend", "redis"),)],
    }


def _serve(*args: str, seconds: float = 20.0) -> tuple[int | None, str]:
    """Start `cairn serve` and return (exit code, stderr) once it exits, or (None, stderr) if it is still
    serving after `seconds` (then it is stopped)."""
    proc = subprocess.Popen(["cairn", "serve", "--listen", f"127.0.0.1:{free_port()}", "--log-level", "WARNING",
                             *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        code: int | None = proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        code = None
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.stderr is not None
    return code, proc.stderr.read()


def _save_and_load(target: str, threads: int = 30, loads: int = 3) -> None:
    with CheckpointClient(target) as client:
        for i in range(threads):
            thread = f"cluster-{uuid.uuid4()}-{i}"
            client.save(thread, {"i": i})
            for _ in range(loads):
                assert json.loads(client.load(thread).state) == {"i": i}


def test_a_cluster_url_serves_from_every_master(redis_cluster_proc: RedisCluster, postgres_proc) -> None:  # type: ignore[no-untyped-def]
    """redis+cluster:// with seed nodes starts, and saves and loads go through the cluster: hits, no errors, and
    the entries spread over all three masters."""
    metrics = free_port()
    with CairnProcess("--redis-url", redis_cluster_proc.url, "--postgres-dsn", new_database(postgres_proc),
                     "--near-cache-mb", "0", "--metrics-listen", f"127.0.0.1:{metrics}") as server:
        _save_and_load(server.target)
        counts = cache_counts(metrics)
    assert counts["hits"] >= 60 and counts["errors"] == 0, counts
    for master in redis_cluster_proc.masters():
        assert int(redis_cluster_proc.cli(master.port, "DBSIZE")) > 0, master


def test_the_redis_cluster_flag_reads_a_redis_url_as_seeds(redis_cluster_proc: RedisCluster, postgres_proc) -> None:  # type: ignore[no-untyped-def]
    seed = redis_cluster_proc.masters()[1]
    metrics = free_port()
    with CairnProcess("--redis-url", f"redis://127.0.0.1:{seed.port}", "--redis-cluster", "--postgres-dsn",
                     new_database(postgres_proc), "--near-cache-mb", "0", "--cache-fill-on-save",
                     "--metrics-listen", f"127.0.0.1:{metrics}") as server:
        _save_and_load(server.target, threads=10, loads=2)
        counts = cache_counts(metrics)
    assert counts["hits"] >= 20 and counts["errors"] == 0, counts


def test_a_cluster_node_given_as_a_single_redis_is_refused(redis_cluster_proc: RedisCluster, postgres_proc) -> None:  # type: ignore[no-untyped-def]
    """Without the cluster form every key of another master's slots would answer MOVED: 0 hits, errors only."""
    port = redis_cluster_proc.masters()[0].port
    code, err = _serve("--redis-url", f"redis://127.0.0.1:{port}/0", "--postgres-dsn", new_database(postgres_proc))
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert "is a node of a Redis Cluster" in line and "--redis-cluster" in line and "redis+cluster://" in line


@pytest.mark.parametrize("args", [
    ("--redis-url", "redis+cluster://127.0.0.1:{port}/1"),
    ("--redis-url", "redis://127.0.0.1:{port}/1", "--redis-cluster"),
])
def test_a_database_other_than_0_is_refused_on_a_cluster(redis_cluster_proc: RedisCluster, args) -> None:  # type: ignore[no-untyped-def]
    port = redis_cluster_proc.masters()[0].port
    code, err = _serve(*(a.format(port=port) for a in args))
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert "only database 0" in line and "--redis-cluster" in line and "/1" in line


@pytest.mark.parametrize("url, expected", [
    ("redis://127.0.0.1:{port}/0?socket_timeout=0.1", "socket_timeout not supported"),
    ("redis://127.0.0.1:{port}/0?socket_connect_timeout=1", "--cache-timeout-seconds"),
    ("redis://127.0.0.1:{port}/0?max_connections=4", "max_connections not supported"),
    ("redis://127.0.0.1:{port}/0?health_check_interval=5", "health_check_interval not supported"),
    ("redis://127.0.0.1:{port}/0?ssl_check_hostname=false", "need TLS: use rediss://"),
    ("rediss://127.0.0.1:{port}/0?ssl_certfile=/nonexistent/client.pem", "cannot use its TLS files"),
    ("rediss://127.0.0.1:{port}/0?ssl_cert_reqs=optional", "ssl_cert_reqs expects required or none"),
    ("redis://127.0.0.1:{port},127.0.0.1:{port}/0", "use redis+cluster://"),
    ("http://127.0.0.1:{port}", "unsupported scheme"),
])
def test_url_options_the_cache_would_ignore_are_refused(redis_proc, tmp_path, url: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """Each refused at start, in one line naming --redis-url, rather than parsed and ignored."""
    code, err = _serve("--redis-url", url.format(port=redis_proc.port), "--sqlite-path", str(tmp_path / "c.db"),
                       seconds=8)
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert "--redis-url" in line and expected in line, line


def test_honoured_tls_options_reach_the_ssl_context(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ssl_cert_reqs, ssl_check_hostname and ssl_ca_certs are read into the connection's SSL context."""
    import ssl

    from cairn_server.storage.redis_url import parse_redis_url

    ca = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    loose = parse_redis_url(f"rediss://h:1?ssl_check_hostname=false&ssl_ca_certs={ca}").tls
    assert loose is not None and loose.ca_certs == ca
    context = loose.context()
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    none = parse_redis_url("rediss+cluster://h:1,h:2?ssl_cert_reqs=none").tls
    assert none is not None and none.context().verify_mode == ssl.CERT_NONE
    strict = parse_redis_url("rediss://h:1").tls
    assert strict is not None and strict.context().check_hostname


async def test_moved_after_a_failover_and_ask_during_a_migration_are_followed(redis_cluster_proc: RedisCluster) -> None:
    """Every value is read back across a CLUSTER FAILOVER and while a slot migrates with its keys."""
    from redis.crc import key_slot

    from cairn_server.storage.redis_url import parse_redis_url
    from cairn_server.storage.resp_cluster import ClusterMultiplexed

    client = ClusterMultiplexed(parse_redis_url(redis_cluster_proc.url), timeout_seconds=2.0)
    try:
        tag = uuid.uuid4().hex
        keys = [f"cairn2:{{{tag}}}:c:k{i}" for i in range(200)] + [f"other:{tag}:{i}" for i in range(200)]
        await client.execute([("SET", key, key.encode()) for key in keys])

        async def read_all() -> None:
            assert await client.execute([("GET", key) for key in keys]) == [key.encode() for key in keys]

        await read_all()
        slot = key_slot(keys[0].encode())
        owner = redis_cluster_proc.slot_owner(slot)
        redis_cluster_proc.failover(owner)  # the old master now answers MOVED for its slots
        redirects = client.redirects
        await read_all()
        assert client.redirects > redirects
        owner = redis_cluster_proc.slot_owner(slot)
        destination = next(m.port for m in redis_cluster_proc.masters() if m.port != owner)
        mover = threading.Thread(target=redis_cluster_proc.migrate_slot,
                                 args=(slot, destination), kwargs={"hold_seconds": 1.5, "batch": 50})
        mover.start()
        try:
            redirects = client.redirects
            deadline = time.monotonic() + 20
            while mover.is_alive() and time.monotonic() < deadline:  # reads in every state of the migration
                await read_all()
                await asyncio.sleep(0.05)
        finally:
            mover.join()
        await read_all()
        assert client.redirects > redirects  # ASK for the keys already moved, then MOVED
        assert redis_cluster_proc.slot_owner(slot) == destination
    finally:
        await client.aclose()


async def test_a_cluster_without_any_reachable_seed_is_unavailable() -> None:
    from cairn_server.storage.base import CacheUnavailable
    from cairn_server.storage.redis_url import parse_redis_url
    from cairn_server.storage.resp_cluster import ClusterMultiplexed

    client = ClusterMultiplexed(parse_redis_url(f"redis+cluster://127.0.0.1:{free_port()}"), timeout_seconds=0.5)
    try:
        with pytest.raises(CacheUnavailable, match="answered CLUSTER SLOTS"):
            await client.execute([("GET", "k")])
    finally:
        await client.aclose()


def test_cluster_metrics_at_rest_after_the_contract_suite(backend_server) -> None:  # type: ignore[no-untyped-def]
    """Runs after the contract classes above (same server): the cache served hits and never failed."""
    _save_and_load(backend_server.target, threads=20, loads=2)
    counts = cache_counts(METRICS_PORT)
    print(f"cluster backend after the contract suite: {counts}")
    assert counts["errors"] == 0, counts
    assert counts["hits"] >= 40 and counts["hits"] / (counts["hits"] + counts["misses"]) > 0.3, counts
