"""Prometheus metrics, served on --metrics-listen at /metrics.

Kept out of the hot path's way: one histogram observation and one counter
increment per RPC; store-level counts (cache hits, cache errors...) are read
from the store's own counters when Prometheus scrapes.

Names (counters carry prometheus_client's `_total` suffix on the wire):
  cairn_rpc_requests_total{method,code}, cairn_rpc_duration_seconds{method} (histogram),
  cairn_state_bytes_total{kind}, cairn_cold_batch_size (histogram), cairn_cache_lookups_total{result},
  cairn_backend_errors_total{backend}, cairn_retention_deleted_total, cairn_version_reads_total,
  cairn_quarantined_total, cairn_runs_total{event}, cairn_run_claim_latency_seconds,
  cairn_run_duration_seconds, cairn_run_queue_depth, cairn_metrics_scrape_errors_total,
  cairn_build_info{version,python_version,grpc_version} (always 1),
  and the standard process_* (CPU, memory, open fds, start time), python_info and python_gc_* metrics.

With `--workers N` one endpoint serves them all: the parent process listens on --metrics-listen and, on each
scrape, collects every worker's metrics from the worker's private endpoint on 127.0.0.1, adding a
`worker="0".."N-1"` label (sum them with `sum without (worker) (...)`); see WorkerAggregator.
"""

from __future__ import annotations

import platform
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
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


def _standard(registry: CollectorRegistry) -> None:
    """The default registry's process, platform and GC collectors, plus cairn_build_info."""
    import grpc

    from . import __version__

    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    info = Gauge(
        "cairn_build_info", "Always 1; the labels name the running versions",
        ["version", "python_version", "grpc_version"], registry=registry,
    )
    info.labels(__version__, platform.python_version(), grpc.__version__).set(1)


class Metrics:
    """The metrics of one server process, in a registry of its own."""

    def __init__(self, worker_index: int = 0) -> None:
        self.worker_index = worker_index
        self.registry = CollectorRegistry()
        _standard(self.registry)
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

    def serve(self, listen: str) -> int:
        """Serve /metrics on host:port (port 0 = any free one); returns the port.

        Raises:
            OSError: the address cannot be bound (in use, not this host's).
        """
        host, _, port = listen.rpartition(":")
        httpd, _thread = start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=self.registry)
        return int(httpd.server_address[1])


class WorkerAggregator(Collector):
    """One /metrics for `--workers N`: each scrape reads every worker's private endpoint and relabels it.

    Args:
        worker_ports: port of worker i's metrics endpoint on 127.0.0.1, at index i (0 while it is starting).
        timeout_seconds: per worker; a worker that does not answer in time is missing from that scrape and
            counted in cairn_metrics_scrape_errors_total.
    """

    def __init__(self, worker_ports: Sequence[int], timeout_seconds: float = 2.0) -> None:
        self.worker_ports = worker_ports
        self.timeout_seconds = timeout_seconds
        self.errors = 0

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for index, port in enumerate(list(self.worker_ports)):
            if not port:
                continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=self.timeout_seconds) as r:
                    text = r.read().decode()
            except OSError:
                self.errors += 1
                continue
            for family in text_string_to_metric_families(text):
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    into.samples.append(sample._replace(labels={**sample.labels, "worker": str(index)}))
        yield from merged.values()
        errors = CounterMetricFamily(
            "cairn_metrics_scrape_errors", "Worker metrics endpoints that did not answer a scrape of the parent"
        )
        errors.add_metric([], self.errors)
        yield errors


def serve_aggregated(listen: str, worker_ports: Sequence[int]) -> int:
    """The parent's /metrics for `--workers N` (see WorkerAggregator); returns the port.

    Raises:
        OSError: the address cannot be bound.
    """
    registry = CollectorRegistry()
    registry.register(WorkerAggregator(worker_ports))
    host, _, port = listen.rpartition(":")
    httpd, _thread = start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=registry)
    return int(httpd.server_address[1])
