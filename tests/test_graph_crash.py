"""The real crash: a 6-node cairn_client.graph run in a subprocess is SIGKILLed in the middle of a node,
and a new process resumes the same thread. The final state must equal an uninterrupted run's, and the
side-effect log must show every node finished exactly once. Also with the Cairn server itself killed and
restarted (same port, same Postgres database) between the crash and the resume.

No timing assumptions: the worker tells the test (a line on its stdout) when it is inside the node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from cairn_client import CheckpointClient

WORKER = Path(__file__).with_name("graph_crash_worker.py")
NODES = ["ingest", "score_a", "score_b", "merge", "enrich", "publish"]


def spawn(target: str, thread: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), "--target", target, "--thread", thread, "--log", str(log), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict:
    try:
        out, err = proc.communicate(timeout=100)  # a hang guard only: a healthy run takes about a second
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{out}\n{err}"
    [line] = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


def crash(proc: subprocess.Popen[str], node: str) -> None:
    """Wait for the worker to report it is inside `node`, then SIGKILL it."""
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while True:
            line = proc.stdout.readline()
            if not line:
                proc.wait()
                pytest.fail(f"worker ended before reaching {node} (rc {proc.returncode}):\n{proc.stderr.read()}")
            if line.strip() == f"CRASH-POINT {node}":
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:  # never leave a blocked worker behind
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def effects(log: Path) -> tuple[Counter[str], Counter[str]]:
    lines = log.read_text().splitlines()
    started = Counter(ln.split(" ", 1)[1] for ln in lines if ln.startswith("start "))
    done = Counter(ln.split(" ", 1)[1] for ln in lines if ln.startswith("done "))
    return started, done


@pytest.fixture(scope="module")
def reference(pg_redis_server, tmp_path_factory) -> dict:  # type: ignore[no-untyped-def]
    """The final state of an uninterrupted run."""
    log = tmp_path_factory.mktemp("ref") / "effects.log"
    result = finish(spawn(pg_redis_server.target, f"ref-{uuid.uuid4()}", log))
    started, done = effects(log)
    assert started == done == Counter(NODES)
    return result


def crash_and_resume(target: str, tmp_path: Path, crash_at: str, durability: str, restart=None) -> tuple:  # type: ignore[no-untyped-def]
    thread = f"crash-{uuid.uuid4()}"
    log = tmp_path / "effects.log"
    crash(spawn(target, thread, log, "--crash-at", crash_at, "--durability", durability), crash_at)
    with CheckpointClient(target) as client:
        head = client.load(thread)
    # The crashed run left its head "running", with the node it died in still to run.
    assert head.metadata["status"] == "running"
    assert crash_at in head.next_nodes
    if restart is not None:
        restart()
    result = finish(spawn(target, thread, log, "--resume", "--durability", durability))
    return thread, log, result


def check_history(target: str, thread: str) -> None:
    """One linear chain of checkpoints, input to completed; no fork, no step twice."""
    with CheckpointClient(target) as client:
        history = list(client.iter_checkpoints(thread))
    for newer, older in zip(history, history[1:]):
        assert newer.parent_checkpoint_id == older.checkpoint_id
    assert history[0].metadata["status"] == "completed"
    assert history[-1].metadata["source"] == "input" and history[-1].parent_checkpoint_id == ""
    steps = [c.metadata["step"] for c in history]
    assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)


@pytest.mark.parametrize(
    ("crash_at", "durability"),
    [("score_a", "sync"), ("enrich", "sync"), ("score_a", "async")],
)
def test_sigkill_mid_node_then_resume(pg_redis_server, reference, tmp_path, crash_at, durability) -> None:  # type: ignore[no-untyped-def]
    thread, log, result = crash_and_resume(pg_redis_server.target, tmp_path, crash_at, durability)
    assert result == reference
    started, done = effects(log)
    assert done == Counter(NODES), f"every node must finish exactly once: {done}"
    # The node we killed ran again; all others ran once - score_b's write was kept, not re-run.
    assert started == Counter(NODES) + Counter({crash_at: 1})
    check_history(pg_redis_server.target, thread)


@pytest.mark.chaos
@pytest.mark.parametrize("crash_at", ["score_a", "enrich"])
def test_sigkill_then_server_restart_then_resume(server_factory, reference, tmp_path, crash_at) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("redis+postgres")  # its own server: this test kills it

    def restart() -> None:
        backend.server.kill()
        backend.server.start()  # same port, same Postgres database

    thread, log, result = crash_and_resume(backend.target, tmp_path, crash_at, "sync", restart)
    assert result == reference
    started, done = effects(log)
    assert done == Counter(NODES)
    assert started == Counter(NODES) + Counter({crash_at: 1})
    check_history(backend.target, thread)
