"""/metrics conventions: the standard process_* metrics, cairn_build_info, and one endpoint for `--workers N`
(the parent gathers every worker's metrics and labels them worker="0".."N-1")."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cairn_client import CheckpointClient
from cairn_server import __version__
from tests.harness import free_port
from tests.test_operability import _saves, wait_for


def scrape(port: int) -> dict[str, list]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_process_and_build_info(server_factory) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    backend = server_factory("embedded", metrics_listen=f"127.0.0.1:{port}")
    with CheckpointClient(backend.target) as c:
        c.save("metrics-process", {"n": 1})
    families = scrape(port)
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds", "python_info", "python_gc_collections"):
        assert name in families, sorted(families)
    [info] = families["cairn_build_info"]
    assert info.value == 1 and info.labels["version"] == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", info.labels["python_version"]) and info.labels["grpc_version"]


def test_workers_share_one_metrics_endpoint(redis_proc, postgres_proc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import new_database

    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen(
        ["cairn", "serve", "--listen", f"127.0.0.1:{port}", "--workers", "2", "--redis-url", redis_proc.url,
         "--postgres-dsn", new_database(postgres_proc), "--metrics-listen", f"127.0.0.1:{metrics_port}"],
        stderr=open(tmp_path / "log", "wb"),
    )
    try:
        clients = [CheckpointClient(f"127.0.0.1:{port}", timeout_seconds=5) for _ in range(8)]
        for c in clients:
            wait_for(lambda c=c: _saves(c, "metrics-workers"), what="workers up")

        def both_workers_counted() -> dict[str, list] | None:
            families = scrape(metrics_port)
            starts = {s.labels.get("worker") for s in families.get("process_start_time_seconds", [])}
            return families if starts == {"0", "1"} else None

        families = wait_for(both_workers_counted, what="both workers on the one endpoint")
        # each worker's calls are counted under its own label (the kernel picks the worker per connection)
        saves = sum(s.value for s in families["cairn_rpc_requests"]
                    if s.name.endswith("_total") and s.labels["method"] == "Save")
        assert saves >= len(clients)
        assert {s.labels["worker"] for s in families["cairn_rpc_requests"]} <= {"0", "1"}
        assert {s.labels["worker"] for s in families["cairn_build_info"]} == {"0", "1"}
        assert families["cairn_metrics_scrape_errors"][0].value == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "log").read_text()[-2000:]
