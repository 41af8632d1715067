"""Faults for a cluster of `cairn serve` processes sharing one Redis and one Postgres, each fault recorded.

    inj = FaultInjector(servers=[a, b], redis=redis, postgres=pg, proxies={0: proxy_a})
    inj.snapshot_redis()          # SAVE + keep a copy of the RDB, for a later rollback
    inj.kill_server(0)            # kill -9, then restart on the same port
    inj.pause_server(1, 1.5)      # SIGSTOP for 1.5 s (far longer than a near lease), SIGCONT
    inj.partition(0, 2.0)         # server 0's proxy to Redis stops forwarding for 2 s, then heals
    inj.partition_then_kill(0)    # issue 25 scenario 2: cut from Redis, changes go through it, kill -9, heal
    inj.redis_rollback()          # kill -9 Redis, restart it from the older snapshot
    inj.postgres_restart()        # fast shutdown and start
    inj.cluster_failover(rng)     # on a Redis Cluster (cluster=...): CLUSTER FAILOVER on a master's replica
    inj.cluster_reshard(rng)      # ... a slot holding keys migrated (ASK meanwhile), then redis-cli reshard
    inj.cluster_kill_master(rng)  # ... kill -9 a master until the cluster promotes its replica, restart it
    inj.run(until, kinds)         # a rotating schedule of the above until a monotonic deadline

Each fault is a ``Fault`` (kind, target, start/end monotonic times, detail) in ``inj.faults``, so a report can
line anomalies up with them. Every fault heals itself before returning: nothing stays down or cut.
"""

from __future__ import annotations

import random
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cairn_tools.cluster import HOST, CairnProcess, HarnessError, PostgresServer, RedisCluster, RedisServer
from .proxy import TcpProxy

__all__ = ["Fault", "FaultInjector", "FAULT_KINDS", "CLUSTER_FAULT_KINDS", "redis_command"]

FAULT_KINDS = ("kill", "pause", "partition", "partition_kill", "redis_rollback", "postgres_restart")
# need FaultInjector(cluster=...)
CLUSTER_FAULT_KINDS = ("cluster_failover", "cluster_reshard", "cluster_kill_master")


@dataclass
class Fault:
    kind: str
    target: str
    start: float
    end: float = 0.0
    detail: str = ""

    def describe(self) -> str:
        return f"{self.kind:<17} {self.target:<10} [{self.start:.3f}, {self.end:.3f}] {self.detail}"


def redis_command(port: int, *args: str, timeout: float = 10.0) -> bytes:
    """Send one command to 127.0.0.1:port over RESP and return the first reply line (e.g. b"+OK")."""
    cmd = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(cmd.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


class FaultInjector:
    """Injects faults into started processes; ``proxies`` maps a server's index to its proxy to Redis."""

    def __init__(
        self,
        servers: Sequence[CairnProcess],
        redis: RedisServer | None,
        postgres: PostgresServer,
        proxies: Mapping[int, TcpProxy] | None = None,
        *,
        cluster: RedisCluster | None = None,
        pause_seconds: float = 1.5,
        partition_seconds: float = 2.0,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.servers = list(servers)
        self.redis = redis
        self.cluster = cluster
        self.postgres = postgres
        self.proxies = dict(proxies or {})
        self.pause_seconds = pause_seconds
        self.partition_seconds = partition_seconds
        self.log = log
        self.faults: list[Fault] = []
        self._snapshot: Path | None = None
        self._snapshot_at = 0.0

    def _begin(self, kind: str, target: str, detail: str = "") -> Fault:
        f = Fault(kind, target, time.monotonic(), detail=detail)
        self.faults.append(f)
        return f

    def _end(self, f: Fault) -> None:
        f.end = time.monotonic()
        self.log(f"fault: {f.describe()}")

    def _restart(self, server: CairnProcess) -> None:
        # a restart can race the port's release or a Redis/Postgres that is itself restarting: retry a few times
        for attempt in range(5):
            try:
                server.start()
                return
            except HarnessError:
                if attempt == 4:
                    raise
                time.sleep(0.5)

    # ---- single faults --------------------------------------------------------------------------------
    def kill_server(self, i: int, down_seconds: float = 0.3) -> Fault:
        """kill -9 server i, keep it down a moment, start it again."""
        f = self._begin("kill", f"server{i}")
        self.servers[i].kill()
        time.sleep(down_seconds)
        self._restart(self.servers[i])
        self._end(f)
        return f

    def pause_server(self, i: int, seconds: float | None = None) -> Fault:
        """SIGSTOP server i (and its children) for `seconds`, then SIGCONT."""
        seconds = self.pause_seconds if seconds is None else seconds
        f = self._begin("pause", f"server{i}", f"{seconds:.1f}s")
        self.servers[i].pause()
        try:
            time.sleep(seconds)
        finally:
            self.servers[i].resume()
        self._end(f)
        return f

    def partition(self, i: int, seconds: float | None = None) -> Fault:
        """Cut server i from Redis (its proxy stops forwarding) for `seconds`, then heal."""
        seconds = self.partition_seconds if seconds is None else seconds
        f = self._begin("partition", f"server{i}", f"{seconds:.1f}s from redis")
        proxy = self.proxies[i]
        proxy.partition()
        try:
            time.sleep(seconds)
        finally:
            proxy.heal()
        self._end(f)
        return f

    def partition_then_kill(self, i: int, seconds: float | None = None) -> Fault:
        """Issue 25 scenario 2: cut server i from Redis, let changes go through it for `seconds`, kill -9 it
        while cut (its owed invalidations die with it), heal, restart."""
        seconds = self.partition_seconds if seconds is None else seconds
        f = self._begin("partition_kill", f"server{i}", f"{seconds:.1f}s cut, then kill -9, heal")
        proxy = self.proxies[i]
        proxy.partition()
        try:
            time.sleep(seconds)
            self.servers[i].kill()
        finally:
            proxy.reset()  # the dead server's held connections go; the heal must not deliver their bytes
            proxy.heal()
        self._restart(self.servers[i])
        self._end(f)
        return f

    def cluster_failover(self, rng: random.Random) -> Fault:
        """CLUSTER FAILOVER on a replica of a random master: the replica becomes master, the old master its
        replica, and clients of the old master get MOVED."""
        assert self.cluster is not None, "cluster faults need FaultInjector(cluster=...)"
        master = rng.choice(self.cluster.masters()).port
        f = self._begin("cluster_failover", f"redis:{master}")
        promoted = self.cluster.failover(master)
        f.detail = f"replica :{promoted.port} took over"
        self._end(f)
        return f

    def cluster_kill_master(self, rng: random.Random) -> Fault:
        """kill -9 a random master; the cluster promotes its replica after cluster-node-timeout; the killed node
        restarts empty and rejoins as a replica."""
        assert self.cluster is not None, "cluster faults need FaultInjector(cluster=...)"
        master = rng.choice(self.cluster.masters()).port
        f = self._begin("cluster_kill_master", f"redis:{master}")
        _, promoted = self.cluster.kill_master(master)
        f.detail = f"replica :{promoted.port} promoted; :{master} back as a replica"
        self._end(f)
        return f

    def cluster_reshard(self, rng: random.Random, slots: int = 64) -> Fault:
        """Migrate the slot of a random stored key (clients meet ASK while it is half moved), then
        `redis-cli --cluster reshard` of `slots` slots to another master."""
        from redis.crc import key_slot

        assert self.cluster is not None, "cluster faults need FaultInjector(cluster=...)"
        masters = [m.port for m in self.cluster.masters()]
        source = rng.choice(masters)
        key = self.cluster.random_key(source)
        slot = key_slot(key) if key else rng.randrange(16384)
        owner = self.cluster.slot_owner(slot)
        target = rng.choice([m for m in masters if m != owner])
        f = self._begin("cluster_reshard", f"slot {slot}")
        moved = self.cluster.migrate_slot(slot, target, hold_seconds=0.5, batch=20)
        receiver = rng.choice(masters)
        self.cluster.reshard(slots, receiver)
        f.detail = f":{owner} -> :{target} with {moved} keys; then {slots} slots to :{receiver}"
        self._end(f)
        return f

    def snapshot_redis(self) -> Path:
        """SAVE Redis's data set to its RDB and keep a copy: the state a later rollback returns to."""
        reply = redis_command(self.redis.port, "SAVE")
        if not reply.startswith(b"+OK"):
            raise HarnessError(f"redis SAVE answered {reply!r}")
        rdb = Path(self.redis.tmpdir) / "dump.rdb"
        self._snapshot = Path(self.redis.tmpdir) / "older.rdb"
        shutil.copyfile(rdb, self._snapshot)
        self._snapshot_at = time.monotonic()
        return self._snapshot

    def redis_rollback(self) -> Fault:
        """kill -9 Redis and restart it from the older snapshot (as after a failover to a lagging replica)."""
        if self._snapshot is None:
            self.snapshot_redis()
        assert self._snapshot is not None
        age = time.monotonic() - self._snapshot_at
        f = self._begin("redis_rollback", "redis", f"back to a snapshot {age:.1f}s old")
        self.redis.kill()
        shutil.copyfile(self._snapshot, Path(self.redis.tmpdir) / "dump.rdb")
        self.redis.start()
        self._end(f)
        return f

    def postgres_restart(self) -> Fault:
        """Fast shutdown of Postgres (open transactions roll back), then start it again."""
        f = self._begin("postgres_restart", "postgres")
        self.postgres.stop(timeout=30)
        self.postgres.start()
        self._end(f)
        return f

    # ---- schedule -------------------------------------------------------------------------------------
    def inject(self, kind: str, rng: random.Random) -> Fault:
        """One fault of `kind` on a randomly chosen target."""
        cut = sorted(self.proxies)
        if kind == "kill":
            return self.kill_server(rng.randrange(len(self.servers)))
        if kind == "pause":
            return self.pause_server(rng.randrange(len(self.servers)))
        if kind == "partition":
            return self.partition(rng.choice(cut))
        if kind == "partition_kill":
            return self.partition_then_kill(rng.choice(cut))
        if kind == "redis_rollback":
            return self.redis_rollback()
        if kind == "postgres_restart":
            return self.postgres_restart()
        if kind == "cluster_failover":
            return self.cluster_failover(rng)
        if kind == "cluster_reshard":
            return self.cluster_reshard(rng)
        if kind == "cluster_kill_master":
            return self.cluster_kill_master(rng)
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS + CLUSTER_FAULT_KINDS}")

    def run(self, until: float, kinds: Sequence[str] = FAULT_KINDS, *, seed: int = 0,
            quiet_seconds: tuple[float, float] = (1.0, 2.0)) -> list[Fault]:
        """Until the monotonic deadline `until`: quiet a moment, snapshot Redis, then the next fault of
        `kinds` in a shuffled rotation (every kind comes up once per round)."""
        rng = random.Random(seed)
        order: list[str] = []
        if not kinds:  # a baseline run without faults
            time.sleep(max(0.0, until - time.monotonic()))
            return self.faults
        while True:
            time.sleep(rng.uniform(*quiet_seconds))
            if time.monotonic() >= until:
                return self.faults
            if not order:
                order = list(kinds)
                rng.shuffle(order)
            kind = order.pop()
            if kind == "redis_rollback":
                # the snapshot is a little older than the changes the workers make meanwhile
                self.snapshot_redis()
                time.sleep(rng.uniform(*quiet_seconds))
            self.inject(kind, rng)
