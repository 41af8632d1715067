"""Real backend processes for tests and benchmarks: redis-server, postgres and `cairn serve`.

    from cairn_tools.cluster import CairnProcess, existing_or_start_postgres, stack
    with CairnProcess.embedded() as cairn:            # one server on SQLite, on a free port
        client = CheckpointClient(cairn.target)
    with stack() as target:                           # redis + postgres + cairn on both: the production shape
        ...

`python -m cairn_tools.cluster -- COMMAND` runs COMMAND with CAIRN_TARGET set to such a stack: the one test
server of the Go, TypeScript and Java suites (scripts/test_all.sh). The module plays the part asyncpg's
`cluster.py` plays for asyncpg's tests: an importable, documented API rather than test-folder code.

Nothing here is a mock: every class starts the real binary on 127.0.0.1 on a free port, waits until it
answers its own protocol, and tears it down again.

Teardown is layered so that no process outlives the test run:
  * every process is started in its own process group (session) and killed as a group;
  * ``close()`` / the context manager stops it and removes its temp dir;
  * an ``atexit`` hook kills whatever is still registered when the interpreter exits normally;
  * a small watchdog process (one per test process, started lazily) holds the read end of a pipe; when the
    test process dies in any way (SIGKILL included) the pipe closes and the watchdog SIGKILLs the remaining
    process groups and deletes their temp dirs.

PgBouncer (a pgbouncer in front of a PostgresServer, transaction pooling by default) and PostgresReplica (a
streaming replica of one, synchronous on request, promotable) stand beside PostgresServer.

Environment:
  CAIRN_PGBOUNCER       the pgbouncer binary (default: PATH, then /usr/sbin/pgbouncer).
  CAIRN_TEST_REDIS_URL / CAIRN_TEST_POSTGRES_DSN  use existing servers (see existing_or_start_*()).
  CAIRN_PG_BINDIR       directory holding initdb/postgres (default: PATH, then newest /usr/lib/postgresql/*/bin).
  CAIRN_TEST_PG_USER    OS user postgres runs as when the tests run as root (default "cairn", created if missing).
  CAIRN_BIN             the `cairn` command (default: `cairn` on PATH, else `python -m`-style fallback).
  CAIRN_TEST_KEEP_LOGS  =1 keeps every temp dir (logs, data) instead of deleting it.

Logs: each server's stdout/stderr go to ``.log_path`` in its temp dir (appended across restarts). When start()
fails the error carries the log's tail; when a ``with`` body raises, the tail is printed to stderr, and in both
cases the log file (only) is kept on disk.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator, Mapping, Sequence

__all__ = [
    "HarnessError",
    "free_port",
    "RedisServer",
    "RedisCluster",
    "PostgresServer",
    "CairnProcess",
    "ConsoleProcess",
    "CairnServer",
    "ExistingRedis",
    "ExistingPostgres",
    "existing_or_start_redis",
    "existing_or_start_postgres",
    "find_pg_bindir",
    "find_pgbouncer",
    "PgBouncer",
    "PostgresReplica",
    "stack",
    "test_servers",
]

HOST = "127.0.0.1"


class HarnessError(RuntimeError):
    """A backend process could not be started, stopped or reached."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _keep_logs() -> bool:
    return os.environ.get("CAIRN_TEST_KEEP_LOGS", "") not in ("", "0", "false", "no")


# --------------------------------------------------------------------------------------------------
# Teardown: atexit registry + watchdog process
# --------------------------------------------------------------------------------------------------

_lock = threading.RLock()
_live: "set[_Managed]" = set()
_owner_pid = os.getpid()
_watchdog: subprocess.Popen | None = None


def _watchdog_send(line: str) -> None:
    global _watchdog
    with _lock:
        if os.getpid() != _owner_pid:
            return
        if _watchdog is None or _watchdog.poll() is not None:
            try:
                _watchdog = subprocess.Popen(
                    [sys.executable, "-S", os.path.abspath(__file__), "--watchdog"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    text=True,
                )
            except OSError:
                _watchdog = None
                return
        try:
            assert _watchdog.stdin is not None
            _watchdog.stdin.write(line + "\n")
            _watchdog.stdin.flush()
        except (OSError, ValueError):
            pass


@atexit.register
def _cleanup_all() -> None:
    global _watchdog
    if os.getpid() != _owner_pid:
        return
    with _lock:
        live = list(_live)
    for m in live:
        with contextlib.suppress(Exception):
            m._cleanup(graceful=False)
    with _lock:
        if _watchdog is not None:
            with contextlib.suppress(Exception):
                assert _watchdog.stdin is not None
                _watchdog.stdin.close()
            with contextlib.suppress(Exception):
                _watchdog.wait(timeout=5)
            _watchdog = None


def _proc_table() -> dict[int, tuple[str, int, int]] | None:
    """{pid: (state, ppid, pgrp)} of every process, from /proc; None when there is no /proc (not Linux)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table = {}
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2 :].split()  # pid (comm) state ppid pgrp ...; comm may hold ") "
        if len(rest) >= 3:
            table[int(e)] = (rest[0].decode(), int(rest[1]), int(rest[2]))
    return table


def _alive(state: str) -> bool:
    return state not in ("Z", "X", "x")  # zombies are not reaped by every container's PID 1


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    table = _proc_table()
    if table is None:
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except ProcessLookupError:
            return []
        except PermissionError:
            return [pgid]
    return [pid for pid, (st, _, pg) in table.items() if pg == pgid and _alive(st)]


def _descendants(pid: int) -> set[int]:
    """Live descendants of pid. Needed because postgres backends call setsid(): they leave our process group."""
    table = _proc_table() or {}
    children: dict[int, list[int]] = {}
    for p, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in out and _alive(table[c][0]):
                out.add(c)
                todo.append(c)
    return out


def _living(pids: set[int]) -> set[int]:
    table = _proc_table()
    if table is None:
        return set()
    return {p for p in pids if p in table and _alive(table[p][0])}


def _signal_pids(pids, sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def _freeze(pid: int) -> set[int]:
    """SIGSTOP pid, wait until it is stopped (so it cannot fork any more), SIGSTOP its descendants; returns them."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            break
        if data[data.rfind(b")") + 2 :].split()[0] in (b"T", b"t", b"Z", b"X"):
            break
        time.sleep(0.001)
    victims = _descendants(pid)
    _signal_pids(victims, signal.SIGSTOP)
    return victims


def _tail(path: Path | None, lines: int = 60) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------------


class _Managed:
    """One restartable process (and its children) in its own process group, with a temp dir and a log file."""

    managed = True
    _name = "process"
    _log_name = "server.log"

    def __init__(self, port: int | None, start_timeout: float, tmp_prefix: str) -> None:
        self._auto_port = port is None
        self.port: int = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._pgid: int | None = None
        self._logf = None
        self.tmpdir: Path = Path(tempfile.mkdtemp(prefix=tmp_prefix, dir=self._tmp_base()))
        self.log_path: Path = self.tmpdir / self._log_name
        self._closed = False
        _watchdog_send(f"dir {self.tmpdir}")
        with _lock:
            _live.add(self)

    # ---- hooks ------------------------------------------------------------------------------------
    def _tmp_base(self) -> str | None:
        return None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict:
        return {}

    def _ready(self) -> bool:
        raise NotImplementedError

    def _graceful_signal(self) -> int:
        return signal.SIGTERM

    # ---- lifecycle --------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "_Managed":
        """Start (or restart, on the same port and data) and wait until it answers. No-op when running."""
        if self._closed:
            raise HarnessError(f"{self._name} was closed")
        if self.running:
            return self
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            try:
                self._start_once()
                return self
            except HarnessError as e:
                in_use = "in use" in _tail(self.log_path, 15).lower() or "in use" in str(e).lower()
                if in_use and attempt + 1 < attempts and self._auto_port and not self._started_once:
                    self.port = free_port()
                    continue
                raise
        return self

    _started_once = False

    def _start_once(self) -> None:
        self._before_start()
        with _lock:
            self._logf = open(self.log_path, "ab", buffering=0)
            self._logf.write(f"\n==== harness: starting {self._name} on port {self.port} ====\n".encode())
            try:
                self._proc = subprocess.Popen(
                    self._argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=self._logf,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    **self._popen_kwargs(),
                )
            except OSError as e:
                self._close_log()
                raise HarnessError(f"could not execute {self._name}: {e}") from e
            self._pgid = self._proc.pid
            _watchdog_send(f"add {self._pgid}")
        deadline = time.monotonic() + self.start_timeout
        delay = 0.01
        while True:
            rc = self._proc.poll()
            if rc is not None:
                self._kill_group()
                raise HarnessError(
                    f"{self._name} exited with code {rc} during startup; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                if self._ready():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._kill_group()
                raise HarnessError(
                    f"{self._name} did not become ready within {self.start_timeout}s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        self._started_once = True

    def _before_start(self) -> None:
        pass

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash) and wait until every member is gone. Data dir is kept."""
        self._kill_group()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (data dir kept; start() brings it back). Falls back to SIGKILL after timeout."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(self._graceful_signal())
            self.resume()  # a paused process only acts on the signal once continued
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()

    def pause(self) -> None:
        """SIGSTOP the process and all its descendants: it hangs (connections stay open, nothing answers)."""
        if self._proc is not None and self.running:
            self._paused = {self._proc.pid} | _freeze(self._proc.pid)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        paused, self._paused = self._paused, set()
        if self._proc is not None and self.running:
            paused |= {self._proc.pid} | _descendants(self._proc.pid)
        _signal_pids(paused, signal.SIGCONT)

    _paused: "set[int]" = set()

    def close(self) -> None:
        """Stop gracefully and delete the temp dir (unless CAIRN_TEST_KEEP_LOGS=1)."""
        self._cleanup(graceful=True)

    def _cleanup(self, graceful: bool, failed: bool = False) -> None:
        """Stop, then delete the temp dir; after a failure keep the log file (only) for post-mortems."""
        if self._closed:
            return
        try:
            if graceful:
                self.stop(timeout=15)
            else:
                self._kill_group()
        finally:
            self._closed = True
            with _lock:
                _live.discard(self)
            if _keep_logs():
                pass
            elif failed and self.log_path.exists():
                for child in self.tmpdir.iterdir():
                    if child != self.log_path:
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child, ignore_errors=True)
                        else:
                            with contextlib.suppress(OSError):
                                child.unlink()
            else:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
            _watchdog_send(f"undir {self.tmpdir}")

    def _kill_group(self) -> None:
        """SIGKILL the process, its process group and every descendant (even ones that called setsid()),
        then wait until none of them is alive."""
        pgid = self._pgid
        victims: set[int] = set()
        if self._proc is not None and self._proc.poll() is None:
            victims = {self._proc.pid} | _freeze(self._proc.pid)
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        _signal_pids(victims, signal.SIGKILL)
        self._reap()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = _living(victims) | (set(_group_members(pgid)) if pgid is not None else set())
            if not left:
                break
            _signal_pids(left, signal.SIGKILL)
            time.sleep(0.005)
        if pgid is not None:
            _watchdog_send(f"del {pgid}")
        self._pgid = None
        self._paused = set()

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                if self._proc.poll() is None:
                    self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._logf is not None:
            with contextlib.suppress(OSError):
                self._logf.close()
            self._logf = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._cleanup(graceful=False, failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        failed = exc_type is not None and not issubclass(exc_type, (KeyboardInterrupt, GeneratorExit))
        if failed:
            sys.stderr.write(
                f"\n---- {self._name} log (kept at {self.log_path}), last lines ----\n{_tail(self.log_path)}\n"
            )
        self._cleanup(graceful=exc_type is None, failed=failed)

    def __repr__(self) -> str:
        state = "running" if self.running else ("closed" if self._closed else "stopped")
        return f"<{type(self).__name__} port={self.port} {state}>"


# --------------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------------


def _redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"PING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(256)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"+PONG")


class RedisServer(_Managed):
    """A real redis-server on 127.0.0.1:<free port>.

    persistent=False: no persistence at all (--save "" --appendonly no): kill()/start() comes back empty.
    persistent=True:  AOF on (appendfsync everysec; every write reaches the kernel before its reply, so a
                      kill() loses nothing): kill()/start() comes back with the old data (stale cache tests).
    """

    _name = "redis-server"
    _log_name = "redis.log"

    def __init__(
        self,
        port: int | None = None,
        *,
        persistent: bool = False,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(self.binary):
            raise HarnessError("redis-server not found; run scripts/install_deps.sh (apt-get install redis-server)")
        self.persistent = persistent
        self.extra_args = list(extra_args)
        super().__init__(port, start_timeout, "cairn-redis-")

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = [
            self.binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", "",
            "--save", "",
            "--enable-debug-command", "local",
        ]
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            argv += ["--appendonly", "no"]
        return argv + self.extra_args

    def _ready(self) -> bool:
        return _redis_ping(HOST, self.port)


class RedisCluster:
    """A real Redis Cluster on 127.0.0.1: `masters` masters with `replicas` replicas each, every node a
    RedisServer started with --cluster-enabled yes, joined by `redis-cli --cluster create`.

    url            redis+cluster://h:p,h:p,... naming every master as a seed node (what `cairn serve` takes).
    nodes          the RedisServer of every node; node(port) finds one.
    masters() / replicas()   the nodes by their current role (CLUSTER NODES), which failover() changes.
    failover(port=None)      CLUSTER FAILOVER on a replica (of the master on `port`, or of the first master), the
                             way an operator moves a master; returns once the replica is master everywhere.
    migrate_slot(slot, to_port, hold_seconds)   moves one slot with its keys the way `redis-cli --cluster
                             reshard` does (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), staying
                             `hold_seconds` in the migrating state so clients meet ASK redirections.
    reshard(slots, to_port)  `redis-cli --cluster reshard` of `slots` slots to the master on `to_port`.
    kill_master(port=None)   kill -9 a master; its replica is promoted by the cluster; the node restarts empty.
    cli(port, *args)         one command through redis-cli; its output. client(port): a redis-py client of a node.

    Persistence is off; cluster-node-timeout is short (2 s) so a killed master is replaced quickly.
    """

    def __init__(self, masters: int = 3, replicas: int = 1, *, node_timeout_ms: int = 2000,
                 start_timeout: float = 60.0) -> None:
        self.cli_binary = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        if not os.path.exists(self.cli_binary):
            raise HarnessError("redis-cli not found; run scripts/install_deps.sh (apt-get install redis-tools)")
        self.n_masters, self.n_replicas = masters, replicas
        self.start_timeout = start_timeout
        self.nodes: list[RedisServer] = [
            RedisServer(extra_args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                    "--cluster-node-timeout", str(node_timeout_ms),
                                    # the bus port is free_port() too: port+10000 may be taken or above 65535
                                    "--cluster-port", str(free_port()),
                                    "--cluster-require-full-coverage", "no"])
            for _ in range(masters * (1 + replicas))
        ]
        self._seeds: list[int] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self._seeds)

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def start(self) -> "RedisCluster":
        for node in self.nodes:
            node.start()
        self.cli(self.nodes[0].port, "--cluster", "create",
                 *(f"{HOST}:{n.port}" for n in self.nodes), "--cluster-replicas", str(self.n_replicas),
                 "--cluster-yes")
        self.wait_ok()
        self._seeds = [n.port for n in self.masters()]
        return self

    def client(self, port: int) -> "redis.Redis":  # type: ignore[name-defined]  # noqa: F821
        """A plain redis-py client of one node (bytes in, bytes out), for commands whose arguments are binary."""
        import redis

        return redis.Redis(host=HOST, port=port, socket_timeout=30)

    def random_key(self, port: int) -> bytes | None:
        with self.client(port) as node:
            return node.execute_command("RANDOMKEY")

    def cli(self, port: int, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run([self.cli_binary, "-h", HOST, "-p", str(port), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0 or done.stdout.startswith(("ERR", "(error)")):
            raise HarnessError(f"redis-cli -p {port} {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def _nodes_table(self, port: int) -> list[dict]:
        """CLUSTER NODES as seen by the node on `port`: id, port, flags, master id, slot ranges."""
        rows = []
        for line in self.cli(port, "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            rows.append({"id": parts[0], "port": int(parts[1].split("@")[0].rsplit(":", 1)[1]),
                         "flags": set(parts[2].split(",")), "master": parts[3], "slots": parts[8:]})
        return rows

    def masters(self) -> list[RedisServer]:
        """Masters that serve slots, in the order of their first slot."""
        rows = [r for r in self._nodes_table(self._any_port()) if "master" in r["flags"] and r["slots"]
                and "fail" not in r["flags"]]
        rows.sort(key=lambda r: int(r["slots"][0].split("-")[0].strip("[")))
        return [self.node(r["port"]) for r in rows]

    def replicas(self, of_port: int | None = None) -> list[RedisServer]:
        rows = self._nodes_table(self._any_port())
        ids = {r["id"]: r["port"] for r in rows}
        return [self.node(r["port"]) for r in rows if "slave" in r["flags"] and "fail" not in r["flags"]
                and (of_port is None or ids.get(r["master"]) == of_port)]

    def node_id(self, port: int) -> str:
        return self.cli(port, "CLUSTER", "MYID").strip()

    def _any_port(self) -> int:
        return next(n.port for n in self.nodes if n.running)

    def wait_ok(self, timeout: float | None = None) -> None:
        """Until every running node reports cluster_state:ok and agrees on the owner of every slot."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while True:
            try:
                states = [self.cli(n.port, "CLUSTER", "INFO") for n in self.nodes if n.running]
                views = {self.cli(n.port, "CLUSTER", "SLOTS") for n in self.nodes if n.running}
                if all("cluster_state:ok" in s for s in states) and len(views) == 1:
                    return
            except (HarnessError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"Redis Cluster not ok within {timeout or self.start_timeout} s")
            time.sleep(0.2)

    def failover(self, port: int | None = None, timeout: float = 30.0) -> RedisServer:
        """A replica of the master on `port` (default: the first master) takes over with CLUSTER FAILOVER."""
        master = port if port is not None else self.masters()[0].port
        replica = self.replicas(master)[0]
        # A manual failover that cannot finish within Redis's 5 s manual-failover timeout (a replica still
        # catching up on a loaded box) is dropped silently: ask again, and past two tries without the master's
        # handshake (FORCE: the replica still needs the masters' votes, so it stays a real failover).
        deadline = time.monotonic() + timeout
        asked, tries = 0.0, 0
        while "myself,master" not in self.cli(replica.port, "CLUSTER", "NODES"):
            if time.monotonic() > deadline:
                raise HarnessError(f"replica :{replica.port} did not take over from :{master} within {timeout} s")
            if time.monotonic() - asked > 6.0:
                self.cli(replica.port, "CLUSTER", "FAILOVER", *(["FORCE"] if tries >= 2 else []))
                asked, tries = time.monotonic(), tries + 1
            time.sleep(0.05)
        self.wait_ok(timeout)
        return replica

    def kill_master(self, port: int | None = None, timeout: float = 30.0) -> tuple[RedisServer, RedisServer]:
        """kill -9 a master (default: the first); once a replica is promoted (after cluster-node-timeout), start
        the killed node again, empty, to rejoin as a replica. Returns (killed, promoted)."""
        victim = self.node(port if port is not None else self.masters()[0].port)
        replica = self.replicas(victim.port)[0]
        victim.kill()
        deadline = time.monotonic() + timeout
        while "myself,master" not in self.cli(replica.port, "CLUSTER", "NODES"):
            if time.monotonic() > deadline:
                raise HarnessError(f"no replica took over from the killed :{victim.port} within {timeout} s")
            time.sleep(0.05)
        victim.start()
        self.wait_ok(timeout)
        return victim, replica

    def slot_owner(self, slot: int) -> int:
        """The port of the master serving `slot` (CLUSTER NODES; migration markers like [5-<-id] skipped)."""
        for row in self._nodes_table(self._any_port()):
            for item in row["slots"]:
                if item.startswith("["):
                    continue
                start, _, end = item.partition("-")
                if int(start) <= slot <= int(end or start):
                    return row["port"]
        raise HarnessError(f"slot {slot} has no owner")

    def migrate_slot(self, slot: int, to_port: int, hold_seconds: float = 0.0, batch: int = 100) -> int:
        """Move `slot` and its keys to the master on `to_port`; returns how many keys moved."""
        src = self.slot_owner(slot)
        if src == to_port:
            return 0
        src_id, dst_id = self.node_id(src), self.node_id(to_port)
        self.cli(to_port, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", src_id)
        self.cli(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", dst_id)
        moved = 0
        first = True
        with self.client(src) as source:  # keys hold NUL bytes (cairn2:{TAG}:c:NS\0ID): not for argv
            while True:
                keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                source.execute_command("MIGRATE", HOST, to_port, "", 0, 5000, "REPLACE", "KEYS", *keys)
                moved += len(keys)
                if first and hold_seconds:  # some keys moved, some not: clients now meet ASK
                    time.sleep(hold_seconds)
                first = False
        if hold_seconds and moved == 0:
            time.sleep(hold_seconds)
        for port in (to_port, src):
            self.cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", dst_id)
        for node in self.masters():
            if node.port not in (to_port, src):
                self.cli(node.port, "CLUSTER", "SETSLOT", str(slot), "NODE", dst_id)
        self.wait_ok()
        return moved

    def reshard(self, slots: int, to_port: int) -> None:
        """`redis-cli --cluster reshard`: `slots` slots, taken from every other master, to the one on `to_port`."""
        self.cli(to_port, "--cluster", "reshard", f"{HOST}:{to_port}", "--cluster-from", "all",
                 "--cluster-to", self.node_id(to_port), "--cluster-slots", str(slots), "--cluster-yes",
                 timeout=120)
        self.wait_ok()

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> "RedisCluster":
        try:
            self.start()
        except BaseException:
            for node in self.nodes:
                node._cleanup(graceful=False, failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for node in self.nodes:
            node.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<RedisCluster {self.url or [n.port for n in self.nodes]}>"


# --------------------------------------------------------------------------------------------------
# Postgres
# --------------------------------------------------------------------------------------------------


def _version_key(p: Path) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.]", p.parent.name))


def find_pg_bindir() -> Path:
    """Directory with initdb + postgres: $CAIRN_PG_BINDIR, then PATH, then the newest /usr/lib/postgresql/*/bin."""
    env = os.environ.get("CAIRN_PG_BINDIR")
    if env:
        return Path(env)
    on_path = shutil.which("postgres")
    if on_path:
        d = Path(os.path.realpath(on_path)).parent
        if (d / "initdb").exists():
            return d
    candidates = [
        Path(p).parent for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if (Path(p).parent / "initdb").exists()
    ]
    if candidates:
        return max(candidates, key=_version_key)
    raise HarnessError(
        "postgres/initdb not found (PATH, /usr/lib/postgresql/*/bin); run scripts/install_deps.sh "
        "(apt-get install postgresql) or set CAIRN_PG_BINDIR"
    )


def _pg_os_user() -> tuple[str, int, int]:
    """(name, uid, gid) of the OS user postgres runs as. Postgres refuses to run as root."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return pw.pw_name, pw.pw_uid, pw.pw_gid
    name = os.environ.get("CAIRN_TEST_PG_USER", "cairn")
    for attempt in range(2):
        try:
            pw = pwd.getpwnam(name)
            if pw.pw_uid == 0:
                raise HarnessError(f"CAIRN_TEST_PG_USER={name} is root; postgres refuses to run as root")
            return pw.pw_name, pw.pw_uid, pw.pw_gid
        except KeyError:
            if attempt == 0 and shutil.which("useradd"):
                subprocess.run(
                    ["useradd", "--system", "--user-group", "--no-create-home",
                     "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                )  # a concurrent run may have created it: look it up again either way
    pw = pwd.getpwnam("nobody")
    return pw.pw_name, pw.pw_uid, pw.pw_gid


def _world_traversable(path: str) -> bool:
    p = Path(path).resolve()
    for d in [p, *p.parents]:
        try:
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _pg_accepts(host: str, port: int, user: str, database: str = "postgres", timeout: float = 2.0) -> bool:
    """True when a session can be opened (StartupMessage -> ReadyForQuery), speaking the v3 protocol directly."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        body = struct.pack("!I", 196608) + params
        s.sendall(struct.pack("!I", len(body) + 4) + body)
        while True:
            kind = _recv_exact(s, 1)
            (length,) = struct.unpack("!I", _recv_exact(s, 4))
            payload = _recv_exact(s, length - 4)
            if kind == b"E":
                return False  # e.g. "the database system is starting up"
            if kind == b"R" and struct.unpack("!I", payload[:4])[0] != 0:
                return False  # needs a password: not our trust-auth cluster
            if kind == b"Z":
                with contextlib.suppress(OSError):
                    s.sendall(b"X\0\0\0\x04")
                return True


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dsn_with_database(dsn: str, database: str) -> str:
    u = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + urllib.parse.quote(database), u.query, u.fragment))


def _run_sql(dsn: str, sql: str, psql: str | None) -> str:
    """Run SQL against dsn with psql (tuples only, unaligned); asyncpg when no psql binary exists."""
    if psql:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        r = subprocess.run(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
            capture_output=True, text=True, env=env, timeout=60,
        )
        if r.returncode != 0:
            raise HarnessError(f"psql failed ({r.returncode}): {sql!r}: {r.stderr.strip()}")
        return r.stdout.strip()

    result: list = []
    error: list = []

    async def go() -> None:
        import asyncpg  # type: ignore

        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(sql)
            result.append("\n".join("|".join("" if v is None else str(v) for v in r.values()) for r in rows))
        finally:
            await conn.close()

    def runner() -> None:
        try:
            asyncio.run(go())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(e)

    t = threading.Thread(target=runner)  # own thread: the caller may be inside a running event loop
    t.start()
    t.join()
    if error:
        raise HarnessError(f"SQL failed: {sql!r}: {error[0]}") from error[0]
    return result[0] if result else ""


class _PostgresSQL:
    dsn: str
    _psql: str | None

    def sql(self, query: str, database: str | None = None) -> str:
        """Run one SQL statement; returns the rows as psql -At prints them ('|'-separated, one per line)."""
        dsn = self.dsn if database is None else _dsn_with_database(self.dsn, database)
        return _run_sql(dsn, query, self._psql)

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE name (a unique cairn_test_* name when None); returns its DSN."""
        name = name or f"cairn_test_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {_quote_ident(name)}")
        return _dsn_with_database(self.dsn, name)

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


class PostgresServer(_PostgresSQL, _Managed):
    """A real postgres cluster (initdb into a temp dir) on 127.0.0.1:<free port>, trust auth, tuned for speed.

    Runs as an unprivileged OS user when the tests run as root (CAIRN_TEST_PG_USER, default "cairn", created
    with useradd if missing, else "nobody"); that user is also the superuser role in the DSN.

    fsync=off, full_page_writes=off and (by default) synchronous_commit=off. NOTE: with synchronous_commit=off
    a kill() (SIGKILL) can lose the last ~0.6 s of acknowledged commits (WAL still in shared memory). Chaos tests
    that assert committed data survives kill() should pass synchronous_commit=True (costs one write() per
    commit, no fsync). stop() (fast shutdown) never loses committed data.

    durable=True keeps Postgres's own durable defaults instead (fsync=on, full_page_writes=on): what a user's
    production server runs, and what benchmarks must measure against (a commit then waits for its WAL fsync).
    """

    _name = "postgres"
    _log_name = "postgres.log"

    def __init__(
        self,
        port: int | None = None,
        *,
        synchronous_commit: bool = False,
        durable: bool = False,
        settings: Mapping[str, str | int] | None = None,
        bindir: str | os.PathLike | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.bindir = Path(bindir) if bindir else find_pg_bindir()
        self._postgres = str(self.bindir / "postgres")
        self._initdb = str(self.bindir / "initdb")
        for b in (self._postgres, self._initdb):
            if not os.access(b, os.X_OK):
                raise HarnessError(f"{b} is not executable")
        psql = self.bindir / "psql"
        self._psql = str(psql) if psql.exists() else shutil.which("psql")
        self.user, self._uid, self._gid = _pg_os_user()
        self._switch_user = os.geteuid() == 0
        self.settings: dict[str, str] = {
            "fsync": "on" if durable else "off",
            "synchronous_commit": "on" if synchronous_commit else "off",
            "full_page_writes": "on" if durable else "off",
            # The test session keeps its servers until it ends (server_factory); each holds a pool of up to
            # --postgres-pool-size connections, two of them out of the pool while busy (versions, saves).
            "max_connections": "400",
            "unix_socket_permissions": "0777",
            "log_min_messages": "warning",
        }
        self.settings.update({k: str(v) for k, v in (settings or {}).items()})
        super().__init__(port, start_timeout, "cairn-pg-")
        self.data_dir = self.tmpdir / "data"
        if self._switch_user:
            os.chown(self.tmpdir, self._uid, self._gid)
        os.chmod(self.tmpdir, 0o700)
        self._initialized = False

    def _tmp_base(self) -> str | None:
        base = tempfile.gettempdir()
        if os.geteuid() == 0 and not _world_traversable(base):
            base = "/tmp"
        return base

    @property
    def dsn(self) -> str:  # type: ignore[override]
        return f"postgresql://{urllib.parse.quote(self.user)}@{HOST}:{self.port}/postgres"

    @property
    def socket_dir(self) -> Path:
        return self.tmpdir

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        if self._switch_user:
            env["HOME"] = str(self.tmpdir)
            env["USER"] = env["LOGNAME"] = self.user
        return env

    def _popen_kwargs(self) -> dict:
        return {"env": self._env(), "cwd": str(self.tmpdir)}

    def as_pg_user(self, argv: list[str]) -> list[str]:
        """`argv` run as the unprivileged postgres OS user when the tests run as root. setpriv switches the user
        after exec: asking Popen to (user=, group=) makes Python fork instead of vfork, and a fork of a test
        process whose threads are inside gRPC calls can abort in the child before it execs."""
        if not self._switch_user:
            return argv
        return ["setpriv", f"--reuid={self._uid}", f"--regid={self._gid}", "--clear-groups", "--", *argv]

    def _before_start(self) -> None:
        if self._initialized:
            return
        with open(self.log_path, "ab") as logf:
            r = subprocess.run(
                self.as_pg_user([self._initdb, "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                                 "-E", "UTF8", "--locale=C", "--no-sync"]),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                timeout=120, **self._popen_kwargs(),
            )
        if r.returncode != 0:
            raise HarnessError(f"initdb failed ({r.returncode}); log {self.log_path}:\n{_tail(self.log_path)}")
        self._initialized = True

    def _argv(self) -> list[str]:
        argv = [self._postgres, "-D", str(self.data_dir), "-p", str(self.port),
                "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={self.tmpdir}"]
        for k, v in self.settings.items():
            argv += ["-c", f"{k}={v}"]
        return self.as_pg_user(argv)

    def _ready(self) -> bool:
        return _pg_accepts(HOST, self.port, self.user)

    def _graceful_signal(self) -> int:
        return signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit


class PostgresReplica(PostgresServer):
    """A streaming replica of a running PostgresServer: pg_basebackup -R of the primary into its own data dir,
    then a hot standby on its own free port. ``promote()`` makes it a primary (pg_ctl promote).

    Its primary_conninfo names ``application_name``, so the primary can wait for it: ``make_synchronous()``
    sets the primary's synchronous_standby_names to it (synchronous replication: a commit is acknowledged only
    once this replica has flushed it). The primary must then run with synchronous_commit=True, else commits
    wait for nobody.
    """

    _name = "postgres replica"

    def __init__(self, primary: PostgresServer, *, application_name: str = "cairn_replica", **kwargs) -> None:
        self.primary = primary
        self.application_name = application_name
        settings = dict(primary.settings)
        settings.update(kwargs.pop("settings", None) or {})
        settings.update({
            "hot_standby": "on",
            "primary_conninfo": f"host={HOST} port={primary.port} user={primary.user} "
                                f"application_name={application_name}",
        })
        settings.pop("synchronous_standby_names", None)
        super().__init__(bindir=primary.bindir, settings=settings, **kwargs)

    def _before_start(self) -> None:
        if self._initialized:
            return
        basebackup = self.bindir / "pg_basebackup"
        with open(self.log_path, "ab") as logf:
            r = subprocess.run(
                self.as_pg_user([str(basebackup), "-h", HOST, "-p", str(self.primary.port), "-U", self.primary.user,
                                 "-D", str(self.data_dir), "-X", "stream", "-R", "--no-sync", "-c", "fast"]),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, timeout=300,
                **self._popen_kwargs(),
            )
        if r.returncode != 0:
            raise HarnessError(f"pg_basebackup failed ({r.returncode}); log {self.log_path}:\n{_tail(self.log_path)}")
        self._initialized = True

    def make_synchronous(self, timeout: float = 30.0) -> None:
        """Have the primary wait for this replica on every commit, once it streams as a synchronous standby."""
        self.primary.sql(f"ALTER SYSTEM SET synchronous_standby_names = '{self.application_name}'")
        self.primary.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while self.primary.sql(
            f"SELECT sync_state FROM pg_stat_replication WHERE application_name = '{self.application_name}'"
        ) != "sync":
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.application_name} is not a synchronous standby after {timeout}s")
            time.sleep(0.05)

    def promote(self, timeout: float = 60.0) -> None:
        """pg_ctl promote: end recovery and accept writes; returns once it does."""
        r = subprocess.run(
            self.as_pg_user([str(self.bindir / "pg_ctl"), "promote", "-w", "-t", str(int(timeout)),
                             "-D", str(self.data_dir)]),
            capture_output=True, text=True, timeout=timeout + 10, **self._popen_kwargs(),
        )
        if r.returncode != 0:
            raise HarnessError(f"pg_ctl promote failed ({r.returncode}): {r.stderr.strip()}")


def find_pgbouncer() -> str:
    """The pgbouncer binary: $CAIRN_PGBOUNCER, else PATH, else Debian's /usr/sbin/pgbouncer."""
    for candidate in (os.environ.get("CAIRN_PGBOUNCER"), shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise HarnessError("pgbouncer not found (PATH, /usr/sbin); run scripts/install_deps.sh "
                       "(apt-get install pgbouncer) or set CAIRN_PGBOUNCER")


class PgBouncer(_Managed):
    """A real pgbouncer in front of a PostgresServer, on 127.0.0.1:<free port>, trust auth, every database of
    the server (``* =`` fallback), ``pool_mode`` transaction by default: each transaction may run on another
    server connection, so nothing may rely on session state (prepared statements, SET, session locks).

    ``postgres``: a PostgresServer or an ExistingPostgres (its host must be 127.0.0.1 or reachable by that
    name). Runs as the unprivileged OS user postgres runs as when the tests run as root (pgbouncer refuses
    root). ``database_dsn(dsn)`` is a DSN of the server's turned into one through the bouncer.
    """

    _name = "pgbouncer"
    _log_name = "pgbouncer.log"

    def __init__(self, postgres: PostgresServer, *, pool_mode: str = "transaction", pool_size: int = 20,
                 round_robin: bool = False, port: int | None = None, start_timeout: float = 30.0) -> None:
        self.postgres = postgres
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.round_robin = round_robin  # server_round_robin: each transaction to the next server connection
        self.binary = find_pgbouncer()
        self._os_user, self._uid, self._gid = _pg_os_user()
        self._switch_user = os.geteuid() == 0
        super().__init__(port, start_timeout, "cairn-pgbouncer-")
        if self._switch_user:
            os.chown(self.tmpdir, self._uid, self._gid)
        self.ini_path = self.tmpdir / "pgbouncer.ini"

    def _tmp_base(self) -> str | None:
        return "/tmp" if os.geteuid() == 0 else None

    @property
    def user(self) -> str:
        return self.postgres.user

    @property
    def postgres_host(self) -> str:
        return urllib.parse.urlsplit(self.postgres.dsn).hostname or HOST

    @property
    def dsn(self) -> str:
        return f"postgresql://{urllib.parse.quote(self.user)}@{HOST}:{self.port}/postgres"

    def database_dsn(self, dsn: str) -> str:
        """`dsn` (of the Postgres server behind) with this bouncer's host and port."""
        u = urllib.parse.urlsplit(dsn)
        netloc = f"{u.username}@{HOST}:{self.port}" if u.username else f"{HOST}:{self.port}"
        return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))

    def _before_start(self) -> None:
        userlist = self.tmpdir / "userlist.txt"
        userlist.write_text(f'"{self.user}" ""\n')
        self.ini_path.write_text(
            "[databases]\n"
            f"* = host={self.postgres_host} port={self.postgres.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {HOST}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {userlist}\nadmin_users = {self.user}\n"
            f"pool_mode = {self.pool_mode}\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 1000\n"
            # asyncpg and psql send these at startup; pgbouncer would refuse a client that names one it keeps
            "ignore_startup_parameters = extra_float_digits,options\n"
            "server_reset_query =\n"
            f"server_round_robin = {int(self.round_robin)}\n"
        )
        for path in (userlist, self.ini_path):
            if self._switch_user:
                os.chown(path, self._uid, self._gid)

    def _argv(self) -> list[str]:
        argv = [self.binary, str(self.ini_path)]
        if not self._switch_user:
            return argv
        return ["setpriv", f"--reuid={self._uid}", f"--regid={self._gid}", "--clear-groups", "--", *argv]

    def _ready(self) -> bool:
        return _pg_accepts(HOST, self.port, self.user)


# --------------------------------------------------------------------------------------------------
# Existing servers (CAIRN_TEST_REDIS_URL / CAIRN_TEST_POSTGRES_DSN)
# --------------------------------------------------------------------------------------------------


class _Unmanaged:
    managed = False

    def _nope(self, *a, **k):
        raise HarnessError(f"{type(self).__name__} is an existing server, not started by the harness; "
                           "chaos operations (kill/stop/start/pause) are unavailable — skip the test")

    kill = stop = start = pause = resume = _nope

    def close(self) -> None:
        pass


class ExistingRedis(_Unmanaged):
    def __init__(self, url: str) -> None:
        self.url = url
        self.port = urllib.parse.urlsplit(url).port or 6379


class ExistingPostgres(_Unmanaged, _PostgresSQL):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        u = urllib.parse.urlsplit(dsn)
        self.port = u.port or 5432
        self.user = urllib.parse.unquote(u.username or "")
        self._psql = shutil.which("psql")


@contextlib.contextmanager
def existing_or_start_redis(**kwargs) -> Iterator[RedisServer | ExistingRedis]:
    """$CAIRN_TEST_REDIS_URL as an ExistingRedis (managed=False), else a fresh RedisServer(**kwargs)."""
    url = os.environ.get("CAIRN_TEST_REDIS_URL")
    if url:
        yield ExistingRedis(url)
        return
    with RedisServer(**kwargs) as r:
        yield r


@contextlib.contextmanager
def existing_or_start_postgres(**kwargs) -> Iterator[PostgresServer | ExistingPostgres]:
    """$CAIRN_TEST_POSTGRES_DSN as an ExistingPostgres (managed=False), else a fresh PostgresServer(**kwargs)."""
    dsn = os.environ.get("CAIRN_TEST_POSTGRES_DSN")
    if dsn:
        yield ExistingPostgres(dsn)
        return
    with PostgresServer(**kwargs) as p:
        yield p


# --------------------------------------------------------------------------------------------------
# cairn serve
# --------------------------------------------------------------------------------------------------


def _cairn_command() -> list[str]:
    env = os.environ.get("CAIRN_BIN")
    if env:
        return env.split()
    exe = shutil.which("cairn")
    if exe:
        return [exe]
    if importlib.util.find_spec("cairn_server") is not None:
        return [sys.executable, "-c",
                "import sys; from cairn_server.cli import main; sys.argv[0] = 'cairn'; sys.exit(main())"]
    raise HarnessError("the `cairn` command is not installed: run `pip install -e '.[server]'` in the repo root "
                       "(or set CAIRN_TARGET to a running server)")


class CairnProcess(_Managed):
    """`cairn serve --listen 127.0.0.1:<free port> *args` as a subprocess.

    Ready = TCP connect succeeds and, when grpcio-health-checking is importable, grpc.health.v1 Check("")
    answers SERVING (UNIMPLEMENTED/UNAUTHENTICATED also count: the server is answering RPCs).
    stdout+stderr go to .log_path (kept across restarts; printed when startup fails or the `with` body raises).
    """

    _name = "cairn serve"
    _log_name = "cairn.log"

    def __init__(
        self,
        *args: str,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        token: str | None = None,
        health_check: bool = True,
        start_timeout: float = 60.0,
        listen: str | None = None,
    ) -> None:
        self.args = list(args)
        self.listen = listen  # "unix:/path": listen there instead of 127.0.0.1:<free port>
        self.command = list(command) if command else _cairn_command()
        self.extra_env = dict(env or {})
        self.token = token
        self.health_check = health_check
        super().__init__(port, start_timeout, "cairn-serve-")

    @classmethod
    def embedded(cls, *args: str, **kwargs) -> "CairnProcess":
        """The embedded default: in-process cache + a SQLite file in the server's temp dir."""
        srv = cls(*args, **kwargs)
        srv.args = ["--sqlite-path", str(srv.tmpdir / "cairn.db"), *srv.args]
        return srv

    @property
    def target(self) -> str:
        """What a client dials: host:port, or the unix: target given as `listen`."""
        return self.listen or f"{HOST}:{self.port}"

    def _argv(self) -> list[str]:
        return [*self.command, "serve", "--listen", self.target, *self.args]

    def _connects(self) -> None:
        if self.listen and self.listen.startswith("unix:"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(self.listen[len("unix:"):])
        else:
            with socket.create_connection((HOST, self.port), timeout=1.0):
                pass

    def _popen_kwargs(self) -> dict:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return {"env": env, "cwd": str(self.tmpdir)}

    def _ready(self) -> bool:
        self._connects()
        if not self.health_check:
            return True
        try:
            import grpc  # type: ignore
            from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore
        except ImportError:
            return True
        metadata = [("authorization", f"Bearer {self.token}")] if self.token else None
        with grpc.insecure_channel(self.target) as ch:
            try:
                resp = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2.0, metadata=metadata
                )
            except grpc.RpcError as e:
                code = e.code()
                return code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAUTHENTICATED)
            return resp.status == health_pb2.HealthCheckResponse.SERVING

    def terminate(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful shutdown), SIGKILL after timeout. start() brings it back on the same port."""
        self.stop(timeout=timeout)


class ConsoleProcess(_Managed):
    """`cairn console --listen 127.0.0.1:<free port> *args` as a subprocess; ready when it answers HTTP."""

    _name = "cairn console"
    _log_name = "console.log"

    def __init__(self, *args: str, start_timeout: float = 30.0) -> None:
        self.args = list(args)
        super().__init__(None, start_timeout, "cairn-console-")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def _argv(self) -> list[str]:
        return [*_cairn_command(), "console", "--listen", f"{HOST}:{self.port}", *self.args]

    def _ready(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1.0):
            pass
        with urllib.request.urlopen(self.url + "api/config", timeout=2) as resp:
            return resp.status == 200


CairnServer = CairnProcess  # the name before cairn_server.server.CairnServer made it ambiguous; one release


@contextlib.contextmanager
def stack(*server_args: str) -> Iterator[str]:
    """redis-server + postgres (or the existing ones named by CAIRN_TEST_*) + `cairn serve` on both; yields the
    server's target (host:port). Everything is torn down afterwards, whatever happens."""
    with existing_or_start_redis() as redis, existing_or_start_postgres() as pg:
        dsn = pg.create_database(f"cairn_stack_{uuid.uuid4().hex[:8]}")
        args = ("--postgres-dsn", dsn, "--redis-url", redis.url, "--log-level", "WARNING", *server_args)
        with CairnProcess(*args) as cairn:
            yield cairn.target


def _make_certificates(directory: Path) -> None:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate (ca.crt, server.crt/.key,
    client.crt/.key), made with openssl."""
    def ssl(*args: str) -> None:
        done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True)
        if done.returncode != 0:
            raise HarnessError(f"openssl {' '.join(args)} failed: {done.stderr}")

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=cairn-test-ca")
    (directory / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        ssl("req", *key, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj",
            f"/CN={'localhost' if who == 'server' else 'client'}")
        ssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{who}.crt", "-days", "2", "-extfile", f"{who}.ext")


@contextlib.contextmanager
def test_servers() -> Iterator[dict[str, str]]:
    """Every server the Go, TypeScript and Java suites use, as the environment that names them:

      CAIRN_TARGET       host:port of the shared server: Postgres + Redis, the production shape (stack()).
      CAIRN_AUTH_TARGET  unix:/path of a server with bearer-token auth (embedded store), and
      CAIRN_AUTH_TOKENS  its tokens, space-separated, each mapped to a fresh tenant of its own: a suite that
                         needs a store nobody else writes to takes a token (LangGraph.js' validation suite).
      CAIRN_TLS_TARGET   localhost:port of a TLS server (embedded store) whose certificate ca.crt signs;
      CAIRN_MTLS_TARGET  localhost:port of one that also requires a client certificate signed by ca.crt;
      CAIRN_TLS_DIR      the directory of ca.crt, client.crt and client.key.
                         (The TLS three are left out when openssl is missing; the suites then say so.)

    A test that needs server flags these lack (--max-batch-items, --max-state-bytes...) starts a server of its
    own through CairnProcess.embedded (Go's testserver.Start, the TypeScript test/helpers.ts startServer, Java's
    TestServer.start); everything else uses these."""
    with stack() as target, tempfile.TemporaryDirectory(prefix="cairn-test-servers-") as tmp:
        directory = Path(tmp)
        env = {"CAIRN_TARGET": target}
        tokens = [uuid.uuid4().hex for _ in range(3)]
        tokens_file = directory / "tokens"
        tokens_file.write_text("".join(f"{t} tenant-{t[:12]}\n" for t in tokens))
        socket_path = directory / "cairn.sock"
        with contextlib.ExitStack() as servers:
            auth = servers.enter_context(CairnProcess.embedded(
                "--auth-tokens-file", str(tokens_file), "--log-level", "WARNING", token=tokens[0],
                listen=f"unix:{socket_path}"))
            env.update(CAIRN_AUTH_TARGET=auth.target, CAIRN_AUTH_TOKENS=" ".join(tokens))
            if shutil.which("openssl"):
                _make_certificates(directory)
                pem = {name: str(directory / name) for name in ("ca.crt", "server.crt", "server.key")}
                tls = servers.enter_context(CairnProcess.embedded(
                    "--tls-cert", pem["server.crt"], "--tls-key", pem["server.key"], "--log-level", "WARNING",
                    health_check=False))
                mtls = servers.enter_context(CairnProcess.embedded(
                    "--tls-cert", pem["server.crt"], "--tls-key", pem["server.key"], "--tls-client-ca",
                    pem["ca.crt"], "--log-level", "WARNING", health_check=False))
                env.update(CAIRN_TLS_TARGET=f"localhost:{tls.port}", CAIRN_MTLS_TARGET=f"localhost:{mtls.port}",
                           CAIRN_TLS_DIR=str(directory))
            yield env


def main(argv: list[str]) -> int:
    """`python -m cairn_tools.cluster -- COMMAND [ARGS...]`: COMMAND runs with the environment of test_servers()
    (CAIRN_TARGET and the rest)."""
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: python -m cairn_tools.cluster -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with test_servers() as env:
        print("cairn_tools.cluster: " + " ".join(f"{k}={v}" for k, v in env.items() if k != "CAIRN_AUTH_TOKENS"),
              flush=True)
        # COMMAND runs in a process group of its own: a SIGTERM or SIGINT here ends all of it, then the servers.
        child = subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)

        def forward(signum: int, _frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signum)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, forward)
        return child.wait()


# --------------------------------------------------------------------------------------------------
# Watchdog (run as `python -S cluster.py --watchdog`; stdlib only)
# --------------------------------------------------------------------------------------------------


def _watchdog_main() -> None:
    """Read add/del PGID and dir/undir PATH lines until EOF (= the test process died or exited), then SIGKILL
    every registered group plus all descendants (postgres backends setsid() out of the group), and rm the dirs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    dirs: set[str] = set()
    for line in sys.stdin:
        cmd, _, arg = line.rstrip("\n").partition(" ")
        if cmd == "add":
            groups.add(int(arg))
        elif cmd == "del":
            groups.discard(int(arg))
        elif cmd == "dir":
            dirs.add(arg)
        elif cmd == "undir":
            dirs.discard(arg)
    victims: set[int] = set()
    for g in groups:
        with contextlib.suppress(OSError):
            os.killpg(g, signal.SIGSTOP)  # a stopped process cannot fork any more
    if groups:
        time.sleep(0.05)
        for g in groups:
            victims |= set(_group_members(g))
        for v in list(victims):
            victims |= _descendants(v)
    for g in groups:
        with contextlib.suppress(OSError):
            os.killpg(g, signal.SIGKILL)
    _signal_pids(victims, signal.SIGKILL)
    if groups:
        deadline = time.monotonic() + 10
        while _living(victims) and time.monotonic() < deadline:
            time.sleep(0.02)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--watchdog"]:
        _watchdog_main()
    else:
        sys.exit(main(sys.argv[1:]))
