"""Prometheus metrics, served on --metrics-listen at /metrics.

Kept out of the hot path's way: one histogram observation and one counter
increment per RPC; store-level counts (cache hits, cache errors...) are read
from the store's own counters when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _StoreCollector(Collector):
    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        stats = self.store.stats
        cache = CounterMetricFamily(
            "cairn_cache_lookups",
            "Cache lookups by result (near_hits: served from the in-process near cache; refused: a copy the cold "
            "store no longer vouches for)", labels=["result"])
        for result in ("hits", "misses", "corrupt", "near_hits", "refused"):
            cache.add_metric([result], stats.get(f"cache_{result}", 0))
        yield cache
        errors = CounterMetricFamily("cairn_backend_errors", "Backend errors by tier", labels=["backend"])
        errors.add_metric([self.store.cache.name], stats.get("cache_errors", 0))
        errors.add_metric([self.store.cold.name], stats.get("cold_errors", 0))
        yield errors
        quarantined = CounterMetricFamily(
            "cairn_quarantined", "Corrupt checkpoints moved into quarantine (kept) when deleted"
        )
        quarantined.add_metric([], stats.get("quarantined", 0))
        yield quarantined
        retention = CounterMetricFamily("cairn_retention_deleted", "Checkpoints removed by retention")
        retention.add_metric([], stats.get("retention_deleted", 0))
        yield retention
        versions = CounterMetricFamily(
            "cairn_version_reads", "Queries reading threads' versions from the cold store before reads (freshness)"
        )
        versions.add_metric([], self.store.versions.queries)
        yield versions


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cairn_rpc_requests", "RPCs handled, by method and status code", ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cairn_rpc_duration_seconds", "RPC latency by method", ["method"], buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.state_bytes = Counter(
            "cairn_state_bytes", "State bytes of saves and Loads: raw_in (saved), stored (after compression), raw_out (loaded), "
            "wire_in / wire_out (as they crossed the network: zstd frames when the client compresses states)",
            ["kind"], registry=self.registry,
        )
        # Bound once: labels() validates and locks on every call, and these are counted on every save and Load.
        self.raw_in, self.stored, self.raw_out, self.wire_in, self.wire_out = (
            self.state_bytes.labels(kind) for kind in ("raw_in", "stored", "raw_out", "wire_in", "wire_out")
        )
        self.batch_size = Histogram(
            "cairn_cold_batch_size", "Saves committed per cold-store transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry,
        )

    def watch_store(self, store: Any) -> None:
        self.registry.register(_StoreCollector(store))
        store.on_batch = self.batch_size.observe

    def rpc(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)

    def serve(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
