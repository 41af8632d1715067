"""Smoke test of `cairn bench`: a few seconds against a real server, checking the JSON's shape, never its speed.

Also the pieces that need no server: the hand-built wire bytes parse as the messages they stand for, the
agent-state generator is deterministic and in its size range, histograms merge across processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn_tools.bench import wire
from cairn_tools.bench.cli import UsageError, parse_mix
from cairn_tools.bench.hist import Histogram
from cairn_tools.bench.states import AgentStateGenerator, agent_states, file_states, fixed_size_state

GHZ_FIELDS = {"count", "total", "average", "fastest", "slowest", "rps", "latencyDistribution",
              "statusCodeDistribution", "errorDistribution"}


def run_bench(target: str, *args: str, timeout: float = 90) -> tuple[int, dict, str]:
    how_long = [] if "--requests" in args else ["--duration", "2"]
    argv = [sys.executable, "-m", "cairn_server.cli", "bench", "--target", target, "--json", *how_long,
            "--warmup", "0.5", "--threads", "8", "--concurrency", "4", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout.strip(), f"no JSON on stdout (exit {proc.returncode}); stderr:\n{proc.stderr[-3000:]}"
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def check_ghz_block(block: dict) -> None:
    assert GHZ_FIELDS <= block.keys(), GHZ_FIELDS - block.keys()
    assert isinstance(block["count"], int) and block["count"] > 0
    for key in ("total", "average", "fastest", "slowest"):
        assert isinstance(block[key], int) and block[key] > 0, key
    assert block["fastest"] <= block["average"] <= block["slowest"]
    assert isinstance(block["rps"], float) and block["rps"] > 0
    dist = block["latencyDistribution"]
    assert [d["percentage"] for d in dist] == [10, 25, 50, 75, 90, 95, 99, 99.9]
    lat = [d["latency"] for d in dist]
    assert all(isinstance(v, int) for v in lat) and lat == sorted(lat)
    assert block["fastest"] <= lat[0] and lat[-1] <= block["slowest"]
    assert sum(block["statusCodeDistribution"].values()) == block["count"]
    assert block["statusCodeDistribution"].get("OK", 0) > 0
    assert isinstance(block["errorDistribution"], dict)


@pytest.fixture(scope="module")
def pg_redis(server_factory):  # type: ignore[no-untyped-def]
    return server_factory("redis+postgres")


def test_bench_mix_json_shape(pg_redis) -> None:  # type: ignore[no-untyped-def]
    code, out, stderr = run_bench(pg_redis.target, "--mix", "save=50,load=20,list=10,batch_load=10,put_writes=10")
    assert code == 0, stderr
    check_ghz_block(out)
    assert set(out["operations"]) == {"save", "load", "list", "batch_load", "put_writes"}
    for block in out["operations"].values():
        check_ghz_block(block)
    assert out["count"] == sum(b["count"] for b in out["operations"].values())
    assert out["statusCodeDistribution"] == {"OK": out["count"]}, out["errorDistribution"]
    save = out["operations"]["save"]
    assert save["stateBytes"] > 0 and save["storedBytes"] > 0 and save["compressionRatio"] > 0
    assert out["compressionRatio"] > 0 and out["bytesSent"] > 0 and out["bytesReceived"] > 0
    assert out["operations"]["batch_load"]["items"] == 10 * out["operations"]["batch_load"]["count"]
    cpu = out["clientCpu"]
    assert cpu["procs"] == 1 and cpu["userSeconds"] >= 0 and cpu["percentOfOneCore"] >= 0
    assert out["options"]["mix"] == "save=50,load=20,list=10,batch_load=10,put_writes=10"
    assert out["options"]["states"] == "agent"
    assert "\r" not in stderr  # no progress line when stderr is not a terminal


def test_bench_stream_two_procs_json_shape(pg_redis) -> None:  # type: ignore[no-untyped-def]
    code, out, stderr = run_bench(pg_redis.target, "--stream", "--stream-window", "8", "--procs", "2",
                                  "--state-size", "2000")
    assert code == 0, stderr
    check_ghz_block(out)
    assert list(out["operations"]) == ["save_stream"]
    check_ghz_block(out["operations"]["save_stream"])
    assert out["clientCpu"]["procs"] == 2
    assert out["options"]["states"] == "fixed" and out["options"]["meanStateBytes"] == 2000


def test_bench_compress_states(pg_redis) -> None:  # type: ignore[no-untyped-def]
    """--compress-states: saves carry zstd frames (fewer bytes sent than the states hold), reads ask for zstd."""
    code, out, stderr = run_bench(pg_redis.target, "--mix", "save=3,load=1,list=1", "--list-include-state",
                                  "--compress-states")
    assert code == 0, stderr
    assert out["statusCodeDistribution"] == {"OK": out["count"]}, out["errorDistribution"]
    save = out["operations"]["save"]
    assert save["bytesSent"] < save["stateBytes"] / 2
    load = out["operations"]["load"]
    assert load["bytesReceived"] / load["count"] < out["options"]["meanStateBytes"] / 2
    assert out["options"]["compressStates"] is True


def test_bench_errors_are_counted_not_fatal(pg_redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Loads of threads that were never saved: NOT_FOUND in the distributions; the run still reports."""
    code, out, stderr = run_bench(pg_redis.target, "--mix", "save=1,load=1", "--prefill", "0", "--threads", "500")
    assert code == 0, stderr
    load = out["operations"]["load"]
    assert load["statusCodeDistribution"].get("NotFound", 0) > 0
    assert any("NotFound" in k for k in load["errorDistribution"])


def test_bench_plot_and_text(pg_redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    png = tmp_path / "latency.png"
    argv = [sys.executable, "-m", "cairn_server.cli", "bench", "--target", pg_redis.target, "--duration", "1",
            "--warmup", "0", "--threads", "4", "--concurrency", "2", "--plot", str(png)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "p99.9" in proc.stdout and "client CPU" in proc.stdout

def test_late_starts_travel_from_each_process_to_the_plot(tmp_path: Path) -> None:
    """--rate --plot: each process's late starts come back with its start time, shifted onto the merged clock,
    and are drawn per window in the rate panel."""
    pytest.importorskip("matplotlib")
    from array import array

    from cairn_tools.bench import plot, report

    def result(start: float, late: list[float]) -> dict:
        samples = (array("d", [0.1, 0.2]).tobytes(), array("q", [2_000_000, 3_000_000]).tobytes(),
                   array("B", [0, 0]).tobytes())
        return {"ops": {}, "op_order": ["save"], "start": start, "end": start + 1.0, "cpu_user": 0.1,
                "cpu_sys": 0.0, "rate": 50.0, "late": len(late), "max_lag_ns": 5_000_000, "samples": samples,
                "late_t": array("d", late).tobytes()}

    merged = report.merge([result(100.0, [0.5]), result(100.25, [0.1, 0.6])])
    assert merged.late == 3 and sorted(merged.late_t) == pytest.approx([0.35, 0.5, 0.85])
    png = tmp_path / "late.png"
    plot.plot(merged, str(png), "late starts")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_rate_paces_the_operations(pg_redis) -> None:  # type: ignore[no-untyped-def]
    """--rate: open loop, split between processes; no op starts before its turn, so 60 ops at 100/s take at
    least ~0.6 s whatever the server's speed (a bound set by the schedule, not a speed check)."""
    code, out, stderr = run_bench(pg_redis.target, "--mix", "save=1,load=1", "--rate", "100", "--requests", "60",
                                  "--procs", "2")
    assert code == 0, stderr
    check_ghz_block(out)
    assert out["count"] == 60 and out["options"]["rate"] == 100
    assert out["rate"]["target"] == pytest.approx(100) and out["rate"]["lateStarts"] >= 0
    assert out["total"] >= 0.5e9
    _, closed, _ = run_bench(pg_redis.target, "--mix", "load=1", "--requests", "20")
    assert closed["rate"] is None


@pytest.mark.parametrize("args", [["--rate", "0"], ["--rate", "-5"], ["--rate", "100", "--stream"]])
def test_bench_bad_rate_is_a_usage_error(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "cairn_server.cli", "bench", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--rate" in proc.stderr


def test_bench_unreachable_target_fails_cleanly() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cairn_server.cli", "bench", "--target", "unix:/nonexistent/cairn.sock",
         "--duration", "1", "--mix", "save=1", "--json"],
        capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 1
    assert "cannot connect" in proc.stderr and not proc.stdout


@pytest.mark.parametrize("bad", ["", "save=x", "nope=1", "save=0", "save=1,save=2", "save_stream=1,load=1"])
def test_bench_bad_mix_is_a_usage_error(bad: str) -> None:
    if bad == "save_stream=1,load=1":
        proc = subprocess.run([sys.executable, "-m", "cairn_server.cli", "bench", "--mix", bad],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "save_stream" in proc.stderr
        return
    with pytest.raises(UsageError):
        parse_mix(bad)


def test_put_writes_without_checkpoints_to_write_against_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "cairn_server.cli", "bench", "--mix", "put_writes=1", "--prefill", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--prefill 1" in proc.stderr


# -- no server needed ------------------------------------------------------------------------------


def test_wire_bytes_parse_as_the_messages() -> None:
    tail = wire.checkpoint_tail(b'{"a":1}', state_type="json", metadata={"step": 3, "x": "y"},
                                node_name="agent", next_nodes=["tools", "end"])
    raw = wire.save_request(wire.field_str(1, "thread-é"), "cp-1", "cp-0", tail)
    req = pb.SaveRequest.FromString(raw)
    cp = req.checkpoint
    assert (cp.thread_id, cp.checkpoint_id, cp.parent_checkpoint_id) == ("thread-é", "cp-1", "cp-0")
    assert (cp.state, cp.state_type, cp.node_name, list(cp.next_nodes)) == (b'{"a":1}', "json", "agent", ["tools", "end"])
    assert dict(cp.metadata) == {"step": 3.0, "x": "y"}
    big = wire.save_request(wire.field_str(1, "t"), "c", "", wire.checkpoint_tail(b"x" * 300_000))
    assert pb.SaveRequest.FromString(big).checkpoint.state == b"x" * 300_000
    stream = pb.SaveStreamRequest.FromString(wire.save_stream_request(raw))
    assert stream.save == req
    loads = [wire.load_request(f"t{i}") for i in range(3)]
    batch = pb.BatchLoadRequest.FromString(wire.batch_load_request(loads))
    assert [x.thread_id for x in batch.loads] == ["t0", "t1", "t2"]
    lst = pb.ListRequest.FromString(wire.list_request("t", 10, False))
    assert lst.thread_id == "t" and lst.page_size == 10 and not lst.include_state
    writes = wire.write_field(0, "messages", "json", b'{"m":1}') + wire.write_field(-3, "__error__", "", b"")
    pw = pb.PutWritesRequest.FromString(wire.put_writes_request(wire.field_str(1, "t"), "c", "task", "~p", writes))
    assert (pw.thread_id, pw.checkpoint_id, pw.task_id, pw.task_path) == ("t", "c", "task", "~p")
    assert [(w.idx, w.channel, w.value_type, w.value) for w in pw.writes] == [
        (0, "messages", "json", b'{"m":1}'), (-3, "__error__", "", b"")]


def test_agent_states_are_deterministic_and_sized() -> None:
    a, b = agent_states(40, seed=7), agent_states(40, seed=7)
    assert a.states == b.states
    assert agent_states(5, seed=8).states != a.states[:5]
    sizes = [len(s) for s in a.states]
    assert all(9_000 <= n <= 70_000 for n in sizes), sizes
    assert 25_000 <= sum(sizes) / len(sizes) <= 50_000
    state = json.loads(a.states[0])
    kinds = {m["type"] for m in state["messages"]}
    assert {"system", "human", "ai"} <= kinds
    calls = [c for m in state["messages"] if m["type"] == "ai" for c in m["tool_calls"]]
    assert all(c["id"].startswith("call_") and c["name"] for c in calls)
    assert AgentStateGenerator(3).state_bytes(20_000) == AgentStateGenerator(3).state_bytes(20_000)
    assert len(fixed_size_state(5000)) == 5000 and json.loads(fixed_size_state(5000))


def test_state_file(tmp_path: Path) -> None:
    lines = tmp_path / "s.jsonl"
    lines.write_text('{"a": 1}\n{"b": 2}\n\n')
    assert file_states(str(lines)).states == [b'{"a": 1}', b'{"b": 2}']
    blob = tmp_path / "s.bin"
    blob.write_bytes(b"\x00\x01binary\nstate")
    assert file_states(str(blob)).states == [b"\x00\x01binary\nstate"]


@pytest.mark.parametrize("kind", ["hdr", "log"])
def test_histograms_merge_and_travel(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "hdr":
        pytest.importorskip("hdrh")
        monkeypatch.delenv("CAIRN_BENCH_HISTOGRAM", raising=False)
    else:
        monkeypatch.setenv("CAIRN_BENCH_HISTOGRAM", "log")
    a, b = Histogram(), Histogram()
    assert a.kind == kind
    for v in range(1, 1001):
        a.record(v * 1_000_000)  # 1..1000 ms
    b.record(5_000_000_000)
    merged = Histogram.decode(a.encode())
    merged.merge(Histogram.decode(b.encode()))
    assert merged.count == 1001 and merged.min == 1_000_000 and merged.max == 5_000_000_000
    assert abs(merged.percentile(50) - 501_000_000) <= 501_000_000 * 0.002
    assert abs(merged.percentile(99) - 991_000_000) <= 991_000_000 * 0.002
    assert merged.percentile(100) == 5_000_000_000


def test_bench_checks_a_returned_zstd_frame_before_decompressing_it() -> None:
    """--compress-states against any server: a frame declaring another size than state_size_bytes (zstd would
    allocate what it declares) or not decompressing is a DATA_LOSS error of the call, not a crash."""
    import zstandard

    from cairn_tools.bench.loadgen import BadFrame, decompress_state

    raw = b"x" * 5000
    frame = zstandard.ZstdCompressor().compress(raw)
    ok = pb.Checkpoint(state=frame, state_size_bytes=len(raw), state_encoding=pb.STATE_ENCODING_ZSTD)
    assert decompress_state(ok) == raw
    with pytest.raises(BadFrame, match="declares 5000 bytes, state_size_bytes 10"):
        decompress_state(pb.Checkpoint(state=frame, state_size_bytes=10, state_encoding=pb.STATE_ENCODING_ZSTD))
    with pytest.raises(BadFrame, match="does not decompress"):
        decompress_state(pb.Checkpoint(state=b"not zstd", state_size_bytes=8, state_encoding=pb.STATE_ENCODING_ZSTD))
