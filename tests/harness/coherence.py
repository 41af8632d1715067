"""The coherence run (issue 25): random operations from several client processes against several
`cairn serve` processes sharing one Redis and one Postgres, while faults are injected; afterwards every
thread's history is checked for linearizability (tests/harness/history.py) and a report is written.

    python -m tests.harness.coherence --seconds 600 --report coherence-report.txt     (= make coherence)

Layout: Redis (no persistence except the RDB snapshots the faults take), Postgres (synchronous_commit on, so
an acknowledged commit survives a kill), N servers with default flags (near cache on, 50 ms leases), each
reaching Redis through its own TcpProxy so it can be cut off alone. Client processes
(tests/harness/workload.py) talk to every server. Faults (tests/harness/faults.py) rotate through kill -9,
SIGSTOP/SIGCONT, partition from Redis, partition + kill -9 (issue 25 scenario 2), Redis restarted from an
older RDB, Postgres restart. When the time is up, every thread is listed and loaded through every server.

With --redis-cluster the servers share a Redis Cluster of 3 masters and 3 replicas instead (no proxies: a
cluster client finds its nodes itself), and the faults are CLUSTER FAILOVER and slot migrations/reshards
(faults.CLUSTER_FAULT_KINDS); the report adds each server's cache hits and errors.

Bounded: the workload stops at its deadline (and after max_ops per client), each call has a deadline, each
partition's search has a step budget (a partition too large to decide is "unknown", which fails the run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .checker import CheckResult, check
from .faults import CLUSTER_FAULT_KINDS, FAULT_KINDS, Fault, FaultInjector
from .history import INFO, Op, Recorder
from cairn_tools.cluster import CairnProcess, PostgresServer, RedisCluster, RedisServer, free_port
from .proxy import TcpProxy
from .workload import DEFAULT_WEIGHTS, WorkloadSpec, final_reads, thread_groups

__all__ = ["RunConfig", "RunReport", "run", "main"]

PRINTED_ANOMALIES = 40

_REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunConfig:
    """One coherence run. Defaults are the CI size."""

    seconds: float = 30.0  # how long the clients run while faults are injected
    servers: int = 2
    client_processes: int = 3
    clients_per_process: int = 4  # client threads per process
    # groups of threads; copies stay inside a group. Fewer clients per group keep the orders of overlapping saves
    # (which only a later List tells apart) few enough to check
    groups: int = 8
    threads_per_group: int = 2
    faults: tuple[str, ...] = FAULT_KINDS
    quiet_seconds: tuple[float, float] = (1.0, 2.0)  # pause between faults, drawn uniformly
    seed: int = 1
    op_timeout_seconds: float = 2.0
    max_ops_per_client: int = 200_000
    max_steps: int = 5_000_000  # per partition
    max_configs: int = 100_000  # per partition, at any moment
    max_anomalies: int = 1000  # per partition; the report prints the first PRINTED_ANOMALIES of them
    # an indeterminate call the server may still act on (a client deadline) takes effect within this long or
    # never: above the 2 s client deadline + a 1.5 s pause + the server's 5 s cold-store timeout
    info_horizon_seconds: float = 15.0
    server_args: tuple[str, ...] = ()  # extra `cairn serve` flags for every server
    # extra redis-server flags, e.g. ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru") to run the
    # workload while Redis evicts entries all the time
    redis_args: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)  # overrides of WorkloadSpec.weights (copy=0: no copies)
    workdir: str | None = None  # histories and logs go here (a temp dir when None)
    redis_cluster: bool = False  # a Redis Cluster (3 masters + 3 replicas) instead of one Redis; faults from
    # CLUSTER_FAULT_KINDS (and the server/Postgres kinds)


@dataclass
class RunReport:
    config: RunConfig
    ops: list[Op]
    faults: list[Fault]
    result: CheckResult
    workload_seconds: float
    check_seconds: float
    total_seconds: float
    workdir: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    info_reasons: dict[str, int] = field(default_factory=dict)
    evicted_keys: int = 0  # keys Redis evicted under maxmemory during the workload, over all its restarts
    cache: list[dict[str, float]] = field(default_factory=list)  # per server: hits, misses, errors (cluster runs)

    @property
    def sent_ops(self) -> int:
        """Ops that reached a server (calls that found no connection are counted apart)."""
        return sum(1 for op in self.ops if op.result.get("sent") is not False)

    @property
    def ops_per_second(self) -> float:
        return self.sent_ops / self.workload_seconds if self.workload_seconds else 0.0

    def text(self) -> str:
        c = self.config
        lines = [
            "== cairn coherence run ==",
            f"servers {c.servers}, client processes {c.client_processes} x {c.clients_per_process} clients, "
            f"{c.groups} groups x {c.threads_per_group} threads, seed {c.seed}",
            f"workload {self.workload_seconds:.1f}s, {self.sent_ops} ops sent ({self.ops_per_second:.0f} ops/s), "
            f"{len(self.ops) - self.sent_ops} more found no server to send to; "
            f"check {self.check_seconds:.1f}s; total {self.total_seconds:.1f}s",
            f"histories: {len(self.result.partitions)} partitions; files in {self.workdir}",
            f"redis: extra flags {' '.join(c.redis_args) or 'none'}; {self.evicted_keys} keys evicted",
            "",
            "ops (kind: ok / fail / info / not sent):",
        ]
        total: Counter[str] = Counter()
        for kind, by in sorted(self.counts.items()):
            total.update(by)
            lines.append(f"  {kind:<11} {by.get('ok', 0):>7} / {by.get('fail', 0):>6} / {by.get('info', 0):>6} / "
                         f"{by.get('unsent', 0):>6}")
        lines.append(f"  {'total':<11} {total['ok']:>7} / {total['fail']:>6} / {total['info']:>6} / "
                     f"{total['unsent']:>6}")
        if self.info_reasons:
            lines.append("indeterminate outcomes by reason:")
            for reason, n in sorted(self.info_reasons.items(), key=lambda kv: -kv[1])[:10]:
                lines.append(f"  {n:>6}  {reason}")
        for i, stats in enumerate(self.cache):
            lines.append(f"server{i} cache: " + ", ".join(f"{k} {v:.0f}" for k, v in stats.items()))
        lines.append(f"faults injected ({len(self.faults)}):")
        by_kind = Counter(f.kind for f in self.faults)
        lines.append("  " + ", ".join(f"{k} x{n}" for k, n in sorted(by_kind.items())))
        lines += ["  " + f.describe() for f in self.faults]
        anomalies = self.result.anomalies
        lines.append("partitions:")
        lines += self.result.describe_partitions()
        for a in anomalies[:PRINTED_ANOMALIES]:
            lines.append(a.describe())
        if len(anomalies) > PRINTED_ANOMALIES:
            lines.append(f"... {len(anomalies) - PRINTED_ANOMALIES} more anomalies (histories in {self.workdir})")
        verdict = {True: "PASS: every history is linearizable", False: f"FAIL: {len(anomalies)} anomalies",
                   None: "UNKNOWN: a search was too large to decide"}[self.result.valid]
        lines += ["", f"anomalies: {len(anomalies)}", verdict]
        if anomalies:
            lines.append("faults from 1 s before to 3 s after each anomaly began:")
            for a in anomalies[:PRINTED_ANOMALIES]:
                near = [f for f in self.faults if f.start - 1 <= a.op.start <= f.end + 3]
                lines.append(f"  #{a.op.index}: " + ("; ".join(f"{f.kind} {f.target}" for f in near) or "none"))
        return "\n".join(lines)


def _counts(ops: Sequence[Op]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    for op in ops:
        counts.setdefault(op.kind, Counter())["unsent" if op.result.get("sent") is False else op.outcome] += 1
        if op.outcome == INFO:
            reasons[op.error.split(" ")[0] if not op.error.startswith(("client", "unexpected")) else op.error[:90]] += 1
    return {k: dict(v) for k, v in counts.items()}, dict(reasons)


def _spawn_clients(cfg: RunConfig, targets: list[str], groups: list[list[str]], deadline: float,
                   workdir: Path) -> list[tuple[subprocess.Popen, str]]:
    procs = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH", "")]))
    for p in range(cfg.client_processes):
        out = str(workdir / f"history-c{p}.jsonl")
        spec = WorkloadSpec(name=f"c{p}", targets=targets, groups=groups, clients=cfg.clients_per_process,
                            deadline=deadline, max_ops=cfg.max_ops_per_client, timeout_seconds=cfg.op_timeout_seconds,
                            seed=cfg.seed, out_path=out)
        spec.weights.update(cfg.weights)
        spec_path = workdir / f"client-c{p}.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        log = open(workdir / f"client-c{p}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "tests.harness.workload", str(spec_path)], cwd=str(_REPO),
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        procs.append((proc, out))
    return procs


def run(cfg: RunConfig, log: Callable[[str], None] = print) -> RunReport:
    """Start everything, run the workload with faults, check, and return the report."""
    t0 = time.monotonic()
    workdir = Path(cfg.workdir or tempfile.mkdtemp(prefix="cairn-coherence-"))
    workdir.mkdir(parents=True, exist_ok=True)
    groups = thread_groups(f"coh{cfg.seed}-{int(time.time())}", cfg.groups, cfg.threads_per_group)
    metrics_ports: list[int] = []
    with contextlib.ExitStack() as stack:
        redis: RedisServer | None = None
        cluster: RedisCluster | None = None
        if cfg.redis_cluster:
            cluster = stack.enter_context(RedisCluster())
        else:
            redis = stack.enter_context(RedisServer(extra_args=cfg.redis_args))
        pg = stack.enter_context(PostgresServer(synchronous_commit=True))
        dsn = pg.create_database("coherence")
        proxies = {i: stack.enter_context(TcpProxy(redis.port)) for i in range(cfg.servers)} if redis else {}
        if cluster is not None:
            metrics_ports = [free_port() for _ in range(cfg.servers)]
        servers = [
            stack.enter_context(CairnProcess(
                "--redis-url", proxies[i].url if redis else cluster.url,  # type: ignore[union-attr]
                "--postgres-dsn", dsn, "--log-level", "WARNING", *cfg.server_args,
                *(["--metrics-listen", f"127.0.0.1:{metrics_ports[i]}"] if metrics_ports else [])))
            for i in range(cfg.servers)
        ]
        targets = [s.target for s in servers]
        where = cluster.url if cluster else f"redis :{redis.port}"  # type: ignore[union-attr]
        log(f"coherence: {where}, postgres :{pg.port}, servers {targets}, workdir {workdir}")
        injector = FaultInjector(servers, redis, pg, proxies, cluster=cluster, log=log)
        started = time.monotonic()
        deadline = started + cfg.seconds
        clients = _spawn_clients(cfg, targets, groups, deadline, workdir)
        fault_error: list[BaseException] = []

        def faults() -> None:
            try:
                injector.run(deadline - 1.0, cfg.faults, seed=cfg.seed, quiet_seconds=cfg.quiet_seconds)
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                fault_error.append(e)

        fault_thread = threading.Thread(target=faults, name="faults", daemon=True)
        fault_thread.start()
        evictions = _EvictionCounter(redis.port) if redis is not None else None  # a cluster's nodes: not counted
        if evictions is not None:
            evictions.start()
        for proc, _ in clients:
            try:
                proc.wait(timeout=cfg.seconds + 4 * cfg.op_timeout_seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        fault_thread.join(timeout=120)
        if fault_error:
            raise RuntimeError(f"fault injection failed: {fault_error[0]!r}") from fault_error[0]
        workload_seconds = time.monotonic() - started
        if evictions is not None:
            evictions.stop()
        for s in servers:  # every fault heals itself; this only guards against one that failed halfway
            s.start()
        final = Recorder()
        final_reads(targets, groups, final)
        ops: list[Op] = []
        for proc, path in clients:
            if proc.returncode != 0:
                tail = (workdir / f"client-{Path(path).stem.split('-')[-1]}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"client process failed ({proc.returncode}):\n{tail}")
            ops += Recorder.load(path)
        ops += final.ops
        cache = [_cache_stats(port) for port in metrics_ports]
    for i, op in enumerate(ops):
        op.index = i
    with open(workdir / "history.jsonl", "w") as f:
        for op in ops:
            f.write(json.dumps(op.to_json()) + "\n")
    c0 = time.monotonic()
    result = check(ops, max_steps=cfg.max_steps, max_configs=cfg.max_configs, max_anomalies=cfg.max_anomalies,
                   info_horizon_seconds=cfg.info_horizon_seconds)
    check_seconds = time.monotonic() - c0
    counts, reasons = _counts(ops)
    return RunReport(cfg, ops, injector.faults, result, workload_seconds, check_seconds, time.monotonic() - t0,
                     str(workdir), counts, reasons, evictions.total if evictions else 0, cache)


class _EvictionCounter(threading.Thread):
    """Sums Redis's evicted_keys over the run, polled twice a second; the counter restarts with Redis (a fault
    restarts it), so a drop starts a new lifetime. What a Redis down at a poll evicts before it restarts is
    counted at the next poll of that lifetime."""

    def __init__(self, port: int) -> None:
        super().__init__(name="evictions", daemon=True)
        self.port = port
        self.total = 0
        self._last = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)
        while True:
            try:
                now = int(client.info("stats")["evicted_keys"])
            except (redis.RedisError, OSError):
                now = None
            if now is not None:
                self.total += now - self._last if now >= self._last else now
                self._last = now
            if self._stopped.wait(0.5):
                break
        client.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)


def _cache_stats(port: int) -> dict[str, float]:
    """A server's cache hits, misses and errors, from its /metrics (only servers that restarted lose counts)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == "cairn_cache_lookups" and sample.labels["result"] in ("hits", "misses"):
                out[sample.labels["result"]] = sample.value
            elif family.name == "cairn_backend_errors" and sample.labels["backend"] == "redis":
                out["errors"] = sample.value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run, print and write the report; exit 0 only when every history is linearizable."""
    p = argparse.ArgumentParser(prog="python -m tests.harness.coherence", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=RunConfig.seconds, help="workload duration under faults")
    p.add_argument("--servers", type=int, default=RunConfig.servers)
    p.add_argument("--client-processes", type=int, default=RunConfig.client_processes)
    p.add_argument("--clients-per-process", type=int, default=RunConfig.clients_per_process)
    p.add_argument("--groups", type=int, default=RunConfig.groups)
    p.add_argument("--threads-per-group", type=int, default=RunConfig.threads_per_group)
    p.add_argument("--faults", default=None,
                   help=f"comma-separated subset of {FAULT_KINDS}, or with --redis-cluster of "
                        f"{CLUSTER_FAULT_KINDS + ('kill', 'pause', 'postgres_restart')} (default: all of the first, "
                        "or the cluster kinds)")
    p.add_argument("--redis-cluster", action="store_true", help="a Redis Cluster of 3 masters + 3 replicas")
    p.add_argument("--seed", type=int, default=RunConfig.seed)
    p.add_argument("--max-steps", type=int, default=RunConfig.max_steps, help="search budget per partition")
    p.add_argument("--max-configs", type=int, default=RunConfig.max_configs, help="configurations per partition")
    p.add_argument("--server-arg", action="append", default=[], help="extra `cairn serve` flag (repeatable)")
    p.add_argument("--redis-arg", action="append", default=[],
                   help="extra redis-server flag (repeatable), e.g. --redis-arg=--maxmemory --redis-arg=2mb")
    p.add_argument("--weight", action="append", default=[], metavar="OP=W",
                   help=f"relative frequency of an op (repeatable; e.g. copy=0), ops: {sorted(DEFAULT_WEIGHTS)}")
    p.add_argument("--workdir", default=None, help="keep histories and logs here")
    p.add_argument("--report", default=None, help="also write the report to this file")
    a = p.parse_args(argv)
    default = CLUSTER_FAULT_KINDS if a.redis_cluster else FAULT_KINDS
    kinds = tuple(k for k in a.faults.split(",") if k) if a.faults is not None else default
    weights: dict[str, float] = {}
    for item in a.weight:
        op, _, w = item.partition("=")
        if op not in DEFAULT_WEIGHTS or not w.replace(".", "", 1).isdigit():
            p.error(f"--weight expects OP=NUMBER with OP one of {sorted(DEFAULT_WEIGHTS)}, got {item!r}")
        weights[op] = float(w)
    allowed = (CLUSTER_FAULT_KINDS + ("kill", "pause", "postgres_restart")) if a.redis_cluster else FAULT_KINDS
    unknown = set(kinds) - set(allowed)
    if unknown:
        p.error(f"unknown fault kinds {sorted(unknown)}; choose from {allowed}")
    cfg = RunConfig(seconds=a.seconds, servers=a.servers, client_processes=a.client_processes,
                    clients_per_process=a.clients_per_process, groups=a.groups, threads_per_group=a.threads_per_group,
                    faults=kinds, seed=a.seed, max_steps=a.max_steps, max_configs=a.max_configs, server_args=tuple(a.server_arg), weights=weights,
                    redis_args=tuple(a.redis_arg), workdir=a.workdir, redis_cluster=a.redis_cluster)
    report = run(cfg, log=lambda s: print(s, flush=True))
    text = report.text()
    print(text)
    if a.report:
        Path(a.report).write_text(text + "\n")
    return 0 if report.result.valid is True else 1


if __name__ == "__main__":
    sys.exit(main())
