"""The fault helpers of the coherence run (tests/harness/proxy.py, faults.py) do what they claim, on a real
redis-server: a partition holds bytes and a heal delivers them, a reset closes connections, and a Redis
rollback brings back the snapshot's data set and nothing written after it."""

from __future__ import annotations

import socket

import pytest

from tests.harness import RedisServer
from tests.harness.faults import FaultInjector, redis_command
from tests.harness.proxy import TcpProxy

HOST = "127.0.0.1"


def _ping(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\r\n")
    return sock.recv(64)


def test_proxy_partition_holds_bytes_heal_delivers_reset_closes() -> None:
    with RedisServer() as redis, TcpProxy(redis.port) as proxy:
        with socket.create_connection((HOST, proxy.port), timeout=5) as s:
            assert _ping(s) == b"+PONG\r\n"
            proxy.partition()
            s.settimeout(0.3)
            with pytest.raises(socket.timeout):
                _ping(s)
            proxy.heal()
            s.settimeout(5)
            assert s.recv(64) == b"+PONG\r\n"  # the held request went through after the heal
            proxy.reset()
            assert s.recv(64) == b""
        assert redis_command(proxy.port, "PING") == b"+PONG"  # new connections work after a reset


def test_redis_rollback_returns_to_the_older_snapshot() -> None:
    with RedisServer() as redis:
        inj = FaultInjector([], redis, None, {})  # type: ignore[arg-type]
        assert redis_command(redis.port, "SET", "before", "1") == b"+OK"
        inj.snapshot_redis()
        assert redis_command(redis.port, "SET", "after", "1") == b"+OK"
        fault = inj.redis_rollback()
        assert fault.kind == "redis_rollback" and fault.end >= fault.start
        assert redis_command(redis.port, "EXISTS", "before") == b":1"
        assert redis_command(redis.port, "EXISTS", "after") == b":0"
