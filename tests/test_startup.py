"""Start-up failures of `cairn serve`: each is one line on stderr that names the flag, address or host at
fault, with exit code 2 and no traceback. Redis unreachable at start is one warning line, and the server
serves anyway (degraded: the cold store answers).

Every case runs the real `cairn` command against real sockets, Postgres and (absent) Redis.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from cairn_client import CheckpointClient
from tests.harness import free_port
from tests.test_admin_cli import cairn_command, clean_env


def serve(*flags: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`cairn serve` with these flags, expected to fail on its own within the timeout."""
    return subprocess.run(
        [*cairn_command(), "serve", "--log-format", "text", *flags],
        capture_output=True, text=True, timeout=timeout, env=clean_env(),
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr}"
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{proc.stderr}"
    line = lines[0]
    assert line.startswith("cairn: ") and "Traceback" not in proc.stderr
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"
    return line


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 with a listener on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def sqlite_flags(tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--sqlite-path", str(tmp_path / "cairn.db")]


def test_port_in_use(taken_port: int, sqlite_flags: list[str]) -> None:
    line = assert_one_line(serve("--listen", f"127.0.0.1:{taken_port}", *sqlite_flags), "--listen",
                           f"127.0.0.1:{taken_port}")
    assert "already in use" in line


@pytest.mark.parametrize("listen", ["nonsense:abc", "127.0.0.1", "127.0.0.1:70000", "unix:"])
def test_malformed_listen(listen: str, sqlite_flags: list[str]) -> None:
    line = assert_one_line(serve("--listen", listen, *sqlite_flags), "--listen", repr(listen))
    assert "host:port" in line


def test_listen_address_not_of_this_host(sqlite_flags: list[str]) -> None:
    line = assert_one_line(serve("--listen", "192.0.2.1:50051", *sqlite_flags), "--listen", "192.0.2.1:50051")
    assert "address of this host" in line


def test_listen_unix_socket_in_missing_directory(tmp_path, sqlite_flags: list[str]) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope"
    assert_one_line(serve("--listen", f"unix:{missing}/cairn.sock", *sqlite_flags), "--listen", str(missing))


def test_postgres_unreachable_names_the_host(sqlite_flags: list[str]) -> None:
    port = free_port()
    line = assert_one_line(
        serve("--listen", f"127.0.0.1:{free_port()}", "--postgres-dsn", f"postgresql://cairn:secret@127.0.0.1:{port}/x"),
        "--postgres-dsn", f"127.0.0.1:{port}",
    )
    assert "secret" not in line


def test_postgres_unknown_host_names_it() -> None:
    assert_one_line(
        serve("--listen", f"127.0.0.1:{free_port()}", "--postgres-dsn", "postgresql://cairn@no-such-host.invalid/x",
              "--cold-timeout-seconds", "3"),
        "--postgres-dsn", "no-such-host.invalid",
    )


def test_postgres_wrong_role(postgres_proc) -> None:  # type: ignore[no-untyped-def]
    parts = urllib.parse.urlsplit(postgres_proc.dsn)
    dsn = f"postgresql://no_such_role@{parts.hostname}:{parts.port}/postgres"
    line = assert_one_line(serve("--listen", f"127.0.0.1:{free_port()}", "--postgres-dsn", dsn),
                           "--postgres-dsn", f"{parts.hostname}:{parts.port}", "no_such_role")
    assert "check the user" in line


def test_metrics_port_in_use_names_the_address(taken_port: int, sqlite_flags: list[str]) -> None:
    line = assert_one_line(
        serve("--listen", f"127.0.0.1:{free_port()}", "--metrics-listen", f"127.0.0.1:{taken_port}", *sqlite_flags),
        "--metrics-listen", f"127.0.0.1:{taken_port}",
    )
    assert "already in use" in line


@pytest.mark.parametrize("level", ["40", "0", "-3"])
def test_zstd_level_out_of_range_names_the_flag(level: str, sqlite_flags: list[str]) -> None:
    assert_one_line(serve("--zstd-level", level, *sqlite_flags), "--zstd-level", level)


def test_redis_unreachable_is_a_warning_and_the_server_serves(sqlite_flags: list[str]) -> None:
    redis_port, port = free_port(), free_port()
    proc = subprocess.Popen(
        [*cairn_command(), "serve", "--log-format", "json", "--listen", f"127.0.0.1:{port}",
         "--redis-url", f"redis://:hunter2@127.0.0.1:{redis_port}/0", *sqlite_flags],
        stderr=subprocess.PIPE, text=True, env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with CheckpointClient(f"127.0.0.1:{port}", timeout_seconds=5) as client:
                    first = client.save("degraded", {"n": 1})
                    assert client.load("degraded").checkpoint_id == first.checkpoint_id
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    warnings = [r for r in records if r["level"] == "warning" and "--redis-url" in r["msg"]]
    assert len(warnings) == 1, err
    assert f"127.0.0.1:{redis_port}" in warnings[0]["msg"] and "degraded" in warnings[0]["msg"]
    assert "hunter2" not in err
    assert "Traceback" not in err
    assert proc.returncode == 0


def test_ctrl_c_is_logged_as_sigint(sqlite_flags: list[str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*cairn_command(), "serve", "--log-format", "json", "--listen", f"127.0.0.1:{port}", *sqlite_flags],
        stderr=subprocess.PIPE, text=True, env=clean_env(),
    )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    msgs = [json.loads(line)["msg"] for line in err.splitlines() if line.startswith("{")]
    assert any(m.startswith("SIGINT: not serving") for m in msgs), msgs
    assert not any("SIGTERM" in m for m in msgs), msgs


def test_env_var_settings_are_named_too(sqlite_flags: list[str]) -> None:
    proc = subprocess.run(
        [*cairn_command(), "serve", *sqlite_flags], capture_output=True, text=True, timeout=60,
        env=clean_env(CAIRN_ZSTD_LEVEL="99", PATH=os.environ["PATH"]),
    )
    assert_one_line(proc, "--zstd-level", "99")
