"""Real crashes of real LangGraph processes: a graph a -> b -> c -> d, run by a subprocess that is SIGKILLed
inside node c, then resumed by a new process, under each of LangGraph's durability modes ("sync", "async",
"exit"). The same scenario runs on CairnSaver and on LangGraph's own SqliteSaver (the reference), and what the
new process finds, what the resumed run returns, the checkpoint history and how often each node finished must
be the same. LangGraph loses what it had not saved ("async": the checkpoint in flight at the kill, though
the writes saved before it are replayed; "exit": the whole run, which starts again): that is the framework's
rule, and Cairn follows it exactly.

The kill comes at a defined moment (see tests/langgraph_crash_worker.py): the worker says when it is inside c,
after the saver calls have settled; no sleeps.
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
from typing import Any

import pytest

WORKER = Path(__file__).with_name("langgraph_crash_worker.py")


def run_worker(phase: str, saver: str, where: str, thread: str, durability: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), phase, "--saver", saver, "--where", where, "--thread", thread,
         "--durability", durability, "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def crash_and_resume(saver: str, where: str, durability: str, tmp: Path) -> dict[str, Any]:
    thread = f"lg-crash-{durability}-{uuid.uuid4()}"
    log = tmp / f"{saver}-{durability}.log"
    proc = run_worker("crash", saver, where, thread, durability, log)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # a hang guard is the worker's own (60 s)
        assert line.strip() == "INSIDE c", f"worker said {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    resumed = run_worker("resume", saver, where, thread, durability, log)
    out, err = resumed.communicate(timeout=100)
    assert resumed.returncode == 0, err
    result = json.loads(out)
    result["finished"] = dict(Counter(log.read_text().split()))
    return result


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_crash_inside_a_node_then_resume_matches_langgraphs_sqlite_saver(
    pg_redis_server, tmp_path: Path, durability: str  # type: ignore[no-untyped-def]
) -> None:
    cairn = crash_and_resume("cairn", pg_redis_server.target, durability, tmp_path)
    sqlite = crash_and_resume("sqlite", str(tmp_path / "reference.sqlite"), durability, tmp_path)
    print(f"\n{durability}: cairn  {json.dumps(cairn)}\n{durability}: sqlite {json.dumps(sqlite)}")
    assert cairn == sqlite

    # The framework's rule, as both savers show it.
    final = ["input", "a", "b", "c", "d"]
    assert cairn["result"] == {"log": final}
    after = cairn["after_crash"]
    if durability == "sync":  # every finished step was saved: resume at c, nothing runs twice
        assert after["next"] == ["c"] and after["values"] == {"log": ["input", "a", "b"]}
        assert cairn["finished"] == {"a": 1, "b": 1, "c": 1, "d": 1}
    elif durability == "async":
        # The checkpoint after b was in flight and is lost with the process; b's writes, saved before it
        # (pending writes of the checkpoint after a), are applied on resume, so b does not run again.
        assert [h["next"] for h in after["history"]] == [["__start__"], ["a"], ["b"]]
        assert after["values"] == {"log": ["input", "a", "b"]} and after["next"] == []
        assert cairn["finished"] == {"a": 1, "b": 1, "c": 1, "d": 1}
    else:  # "exit": nothing is saved before the run ends, so the whole run is lost and starts again
        assert after == {"values": {}, "next": [], "history": []}
        assert cairn["finished"] == {"a": 2, "b": 2, "c": 1, "d": 1}
        assert [h["step"] for h in cairn["history"]] == [4]  # only the end of the run is saved
