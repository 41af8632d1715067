"""zstd dictionaries: `cairn dict train` on stored states, new saves compressed with it, every row stays readable."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import asyncpg
import pytest
from cairn_client import CheckpointClient, DataLoss
from cairn_tools.bench.states import agent_states

from tests.harness import CairnProcess

STATES = [json.loads(s) for s in agent_states(60, seed=11).states]


def dict_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cairn_server.cli", "dict", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _codecs_sqlite(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT checkpoint_id, codec FROM cairn_checkpoints"))


def test_train_then_new_saves_use_it_and_old_rows_stay_readable(tmp_path, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "cairn.db")
    with CairnProcess.embedded("--sqlite-path", path, "--log-level", "WARNING") as server:
        with CheckpointClient(server.target) as c:
            before = [c.save(thread_id, s) for s in STATES[:40]]
        trained = dict_cli("train", "--sqlite-path", path, "--samples", "100", "--json")  # server still running
        assert trained.returncode == 0, trained.stderr
        result = json.loads(trained.stdout)
        assert result["stored"] and result["ratio_with"] < result["ratio_without"]
        with CheckpointClient(server.target) as c:  # a running server keeps compressing as it started
            still_plain = c.save(thread_id, STATES[40])
        assert _codecs_sqlite(path)[still_plain.checkpoint_id] == 1
        server.stop()
        server.start()
        with CheckpointClient(server.target) as c:
            after = [c.save(thread_id, s) for s in STATES[41:]]
            codecs = _codecs_sqlite(path)
            assert {codecs[s.checkpoint_id] for s in after} == {2}
            assert {codecs[s.checkpoint_id] for s in before} == {1}
            old = sum(s.stored_size_bytes for s in before[:19]) / sum(len(json.dumps(x)) for x in STATES[:19])
            new = sum(s.stored_size_bytes for s in after) / sum(len(json.dumps(x)) for x in STATES[41:])
            assert new < old
            for saved, state in zip(before + after, STATES[:40] + STATES[41:], strict=True):
                assert c.load(thread_id, checkpoint_id=saved.checkpoint_id).json() == state
            page = c.list(thread_id, page_size=100, include_state=True)
            assert len(page.checkpoints) == 60
    listed = dict_cli("list", "--sqlite-path", path)
    assert listed.returncode == 0 and str(result["dict_id"]) in listed.stdout


def test_a_server_reads_rows_compressed_with_a_dictionary_trained_after_it_started(  # type: ignore[no-untyped-def]
    server_factory, thread_id: str
) -> None:
    old = server_factory("postgres")  # started before any dictionary exists
    with CheckpointClient(old.target) as c:
        for s in STATES[:30]:
            c.save(thread_id, s)
    trained = dict_cli("train", "--postgres-dsn", old.dsn, "--samples", "100")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "stored dictionary" in trained.stdout
    with CairnProcess("--postgres-dsn", old.dsn, "--log-level", "WARNING") as new:
        with CheckpointClient(new.target) as c:
            saved = c.save(thread_id + "-new", STATES[30])
    with CheckpointClient(old.target) as c:
        assert c.load(thread_id + "-new", checkpoint_id=saved.checkpoint_id).json() == STATES[30]
        page = c.list(thread_id + "-new", include_state=True)
        assert page.checkpoints[0].json() == STATES[30]


async def test_a_row_whose_dictionary_is_gone_is_data_loss(server_factory, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("postgres")
    with CheckpointClient(backend.target) as c:
        for s in STATES[:30]:
            c.save(thread_id, s)
    assert dict_cli("train", "--postgres-dsn", backend.dsn).returncode == 0
    with CairnProcess("--postgres-dsn", backend.dsn, "--log-level", "WARNING") as server:
        with CheckpointClient(server.target) as c:
            saved = c.save(thread_id + "-d", STATES[31])
        conn = await asyncpg.connect(backend.dsn)
        await conn.execute("DELETE FROM cairn_dictionaries")
        await conn.close()
        server.stop()
        server.start()
        with CheckpointClient(server.target) as c, pytest.raises(DataLoss, match="zstd dictionary"):
            c.load(thread_id + "-d", checkpoint_id=saved.checkpoint_id)


def test_training_refuses_what_it_cannot_do_well(tmp_path, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "few.db")
    with CairnProcess.embedded("--sqlite-path", path, "--log-level", "WARNING") as server:
        with CheckpointClient(server.target) as c:
            for s in STATES[:5]:
                c.save(thread_id, s)
    few = dict_cli("train", "--sqlite-path", path)
    assert few.returncode == 2 and "need at least 20 stored checkpoints" in few.stderr
    key = "k1:" + "A" * 43 + "="
    encrypted = dict_cli("train", "--sqlite-path", path, "--encryption-keys", key)
    assert encrypted.returncode == 2 and "not offered with --encryption-keys" in encrypted.stderr
