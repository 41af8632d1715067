"""Smoke tests of `make bench`'s pieces (bench/drivers.py, cairn_tools.bench.proc_cpu) and the harness's durable
Postgres.

Short runs that check the figures are produced and account for the right processes; the figures themselves come
from `make bench` (bench/references.py), never from assertions on speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import CairnProcess, PostgresServer

ROOT = Path(__file__).resolve().parent.parent

from cairn_tools.bench.proc_cpu import tree_memory, tree_seconds


def run_driver(*argv: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "drivers.py"), *argv], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="module")
def durable_pg():
    with PostgresServer(durable=True, synchronous_commit=True) as pg:
        yield pg


def test_durable_postgres_keeps_fsync_and_full_page_writes(durable_pg: PostgresServer) -> None:
    settings = {k: durable_pg.sql(f"SHOW {k}").strip() for k in ("fsync", "full_page_writes", "synchronous_commit")}
    assert settings == {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


def test_default_postgres_is_still_the_fast_one() -> None:
    with PostgresServer() as pg:
        assert pg.sql("SHOW fsync").strip() == "off"


def test_cairn_driver_reports_every_watched_process(durable_pg: PostgresServer) -> None:
    dsn = durable_pg.create_database()
    with CairnProcess("--postgres-dsn", dsn) as srv:
        phases = run_driver("cairn", "--target", srv.target, "--phases", "save@4,load@4", "--duration", "0.5",
                            "--warmup", "0.2", "--threads", "8", f"--watch=server={srv.pid}",
                            f"--watch=postgres={durable_pg.pid}")
    assert [p["phase"] for p in phases] == ["save@4", "load@4"]
    for p in phases:
        assert p["count"] > 0 and not p["errors"], p
        assert set(p["usPerOp"]) == {"client", "server", "postgres"}
        assert p["p99Ms"] >= p["p50Ms"] > 0


def test_durable_floor_commits_every_save_it_acknowledges(durable_pg: PostgresServer) -> None:
    """`make bench`'s durable floor row is only a floor if it really stores: every acknowledged save (unary and
    SaveBatch, which the coalescing client sends) is a committed row holding the compressed state."""
    name = "floor_test"
    dsn = durable_pg.create_database(name)
    with CairnProcess("--postgres-dsn", dsn, command=[sys.executable, str(ROOT / "bench" / "echo_server.py")],
                      health_check=False) as floor:
        phases = run_driver("cairn", "--target", floor.target, "--phases", "save@4", "--duration", "0.5",
                            "--warmup", "0.2", "--threads", "8", f"--watch=server={floor.pid}")
        for coalesce in ("0", "4"):  # unary Saves, then SaveBatch calls
            run_driver("cairn", "--target", floor.target, "--phases", "save@8", "--duration", "0.3",
                       "--warmup", "0", "--threads", "8", "--coalesce", coalesce)
    [saves] = phases
    assert saves["count"] > 0 and not saves["errors"], saves
    rows, smallest = durable_pg.sql("SELECT count(*), min(octet_length(state)) FROM bench_floor", name).split("|")
    assert int(rows) >= saves["count"]
    assert 0 < int(smallest) < 30_000  # a ~36.5 KB agent state, compressed


def test_langgraph_savers_driver_opens_a_connection_per_worker(durable_pg: PostgresServer) -> None:
    dsn = durable_pg.create_database()
    run_driver("langgraph-savers", "--dsn", dsn, "--phases", "", "--setup")
    phases = run_driver("langgraph-savers", "--dsn", dsn, "--phases", "save@3,load@3", "--duration", "0.5",
                        "--warmup", "0.2", "--threads", "6", f"--watch=postgres={durable_pg.pid}")
    assert all(p["count"] > 0 and not p["errors"] for p in phases), phases


def test_proc_cpu_reads_a_process_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\n"
                              "while time.process_time()-t<0.3: pass\ntime.sleep(5)"])
    try:
        import time

        deadline = time.monotonic() + 20
        while tree_seconds({"me": os.getpid()})["me"] <= 0 or tree_seconds({"c": child.pid})["c"] < 0.25:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # the child's CPU counts in its parent's (this process's) tree
        assert tree_seconds({"me": os.getpid()})["me"] >= tree_seconds({"c": child.pid})["c"]
        mem = tree_memory(child.pid)
        assert mem["rss"] > 0 and mem["pss"] > 0 and mem["processes"] == 1
    finally:
        child.kill()
        child.wait()
