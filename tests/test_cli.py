"""The `cairn` command itself: --version, help, global flags before the command, exit codes, and the
commands for CopyThread, Prune, DeleteRuns and clearing by prefix; `cairn bench` deleting its threads.

Everything runs the real `cairn` command against a real `cairn serve` (embedded default).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from cairn_client import CheckpointClient
from tests.test_admin_cli import assert_error_line, cairn, run_on_tty


def uid() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def target(server_factory) -> str:  # type: ignore[no-untyped-def]
    return server_factory("embedded").target


def test_version() -> None:
    res = cairn("--version")
    assert res.rc == 0 and re.fullmatch(r"cairn \d+\.\d+\.\d+\S*\n", res.out), res.out


def test_bare_cairn_prints_help() -> None:
    res = cairn()
    assert res.rc == 0 and res.out.startswith("usage: cairn") and "COMMAND" in res.out and res.err == ""
    for command in ("serve", "threads", "copy", "prune", "delete-runs", "bench"):
        assert command in res.out


def test_global_flags_before_the_command(target: str) -> None:
    tid = f"cli-g-{uid()}"
    with CheckpointClient(target) as c:
        c.save(tid, {"n": 1})
    res = cairn("--json", "--target", target, "history", tid)
    assert res.rc == 0, res.err
    assert [cp["node_name"] for cp in json.loads(res.out)["checkpoints"]] == [""]
    res = cairn("--target=" + target, "--json", "threads", "--page-size", "1")
    assert res.rc == 0 and "threads" in json.loads(res.out)
    # after the command they still work, and an unknown flag before it is still an error
    assert cairn("threads", "--json", "--target", target).rc == 0
    assert cairn("--bogus", "threads").rc == 2


@pytest.mark.parametrize("argv", [
    ["show", "nope-{u}"], ["history", "nope-{u}"], ["delete", "nope-{u}", "01890000-0000-7000-8000-000000000000"],
    ["clear", "nope-{u}", "--yes"], ["copy", "nope-{u}", "other-{u}"], ["delete-runs", "run-{u}", "--yes"],
    ["clear", "--prefix", "nope-{u}", "--yes"],
])
def test_not_found_exits_1_everywhere(target: str, argv: list[str]) -> None:
    u = uid()
    res = cairn(*[a.format(u=u) for a in argv], target=target)
    assert_error_line(res, "NOT_FOUND")


def test_copy(target: str) -> None:
    src, dst = f"cli-src-{uid()}", f"cli-dst-{uid()}"
    with CheckpointClient(target) as c:
        a = c.save(src, {"n": 1})
        c.save(src, {"n": 2}, parent_checkpoint_id=a.checkpoint_id)
    doc = json.loads(cairn("copy", src, dst, "--json", target=target).out)
    assert doc == {"source_thread_id": src, "target_thread_id": dst, "copied_count": 2}
    with CheckpointClient(target) as c:
        assert c.load(dst).json() == {"n": 2}
    taken = cairn("copy", src, dst, target=target)
    assert_error_line(taken, "ABORTED", "TARGET_NOT_EMPTY")


def test_prune(target: str) -> None:
    tid = f"cli-prune-{uid()}"
    with CheckpointClient(target) as c:
        parent = ""
        for n in range(5):
            parent = c.save(tid, {"n": n}, parent_checkpoint_id=parent).checkpoint_id
    doc = json.loads(cairn("prune", tid, "--keep", "2", "--json", target=target).out)
    assert doc == {"thread_ids": [tid], "keep_latest": 2, "deleted_count": 3}
    # --all deletes everything: off a terminal it needs --yes
    refused = cairn("prune", tid, "--all", target=target)
    assert refused.rc == 1 and "--yes" in refused.err
    assert json.loads(cairn("prune", tid, "--all", "--yes", "--json", target=target).out)["deleted_count"] == 2
    assert cairn("prune", tid, "--keep", "0", target=target).rc == 2


def test_delete_runs(target: str) -> None:
    tid, run = f"cli-runs-{uid()}", f"run-{uid()}"
    with CheckpointClient(target) as c:
        a = c.save(tid, {"n": 1}, metadata={"run_id": "other"})
        c.save(tid, {"n": 2}, parent_checkpoint_id=a.checkpoint_id, metadata={"run_id": run})
    doc = json.loads(cairn("delete-runs", run, "--json", target=target).out)
    assert doc == {"run_ids": [run], "deleted_count": 1}
    with CheckpointClient(target) as c:
        assert [cp.checkpoint_id for cp in c.iter_checkpoints(tid)] == [a.checkpoint_id]


def test_clear_prefix_asks_first(target: str) -> None:
    prefix = f"cli-pre-{uid()}-"
    keep = f"cli-keep-{uid()}"
    with CheckpointClient(target) as c:
        for i in range(3):
            c.save(f"{prefix}{i}", {"i": i})
        c.save(keep, {"k": 1})
    # off a terminal, a mass deletion needs --yes
    refused = cairn("clear", "--prefix", prefix, target=target)
    assert refused.rc == 1 and "--yes" in refused.err and "3 threads" in refused.err
    rc, text = run_on_tty([*_argv("clear", "--prefix", prefix), "--target", target], b"n\n")
    assert rc == 1 and "Delete 3 threads" in text and "not confirmed" in text
    rc, text = run_on_tty([*_argv("clear", "--prefix", prefix), "--target", target], b"y\n")
    assert rc == 0 and "cleared 3 threads" in text, text
    with CheckpointClient(target) as c:
        assert [t.thread_id for t in c.iter_threads() if t.thread_id.startswith(prefix)] == []
        assert c.load(keep).json() == {"k": 1}
    assert cairn("clear", "--prefix", "", "--yes", target=target).rc == 2


def _argv(*args: str) -> list[str]:
    from tests.test_admin_cli import cairn_command

    return [*cairn_command(), *args]


def _bench_threads(target: str) -> list[str]:
    with CheckpointClient(target) as c:
        return [t.thread_id for t in c.iter_threads() if t.thread_id.startswith("bench-")]


def test_bench_deletes_its_threads_unless_keep(server_factory) -> None:  # type: ignore[no-untyped-def]
    target = server_factory("embedded", "--near-cache-mb", "0").target
    before = set(_bench_threads(target))
    flags = ["--requests", "40", "--warmup", "0", "--concurrency", "2", "--threads", "4", "--state-size", "64",
             "--mix", "save=1,load=1", "--json"]
    res = cairn("bench", *flags, target=target)
    assert res.rc == 0, res.err
    assert json.loads(res.out)["endReason"] == "normal"
    assert set(_bench_threads(target)) == before
    res = cairn("bench", *flags, "--keep", target=target)
    assert res.rc == 0, res.err
    assert len(set(_bench_threads(target)) - before) == 4


def test_bench_json_has_ghz_histogram_details_and_end_reason(target: str) -> None:
    res = cairn("bench", "--duration", "1", "--warmup", "0", "--concurrency", "2", "--threads", "2",
                "--state-size", "64", "--mix", "save=1", "--json", "--details", target=target)
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["endReason"] == "timeout"
    hist = doc["histogram"]
    assert len(hist) == 11 and sum(b["count"] for b in hist) == doc["count"]
    assert hist[0]["mark"] * 1e9 == pytest.approx(doc["fastest"], rel=1e-6)
    assert hist[-1]["mark"] * 1e9 == pytest.approx(doc["slowest"], rel=1e-6)
    assert abs(sum(b["frequency"] for b in hist) - 1) < 1e-9
    assert len(doc["details"]) == doc["count"]
    d = doc["details"][0]
    assert set(d) == {"timestamp", "latency", "error", "status", "operation"} and d["status"] == "OK"
    assert "details" not in json.loads(cairn("bench", "--requests", "5", "--warmup", "0", "--concurrency", "1",
                                              "--threads", "1", "--state-size", "64", "--mix", "save=1",
                                              "--json", target=target).out)
